"""Named registries of models, datasets and tasks, filled with a decorator and open to user code.

    from grec.base.registry import MODELS

    @MODELS.register("my_fm")
    class MyFM(torch.nn.Module): ...

A user file or module passed as ``--plugin my_module.py`` is imported before the config is
resolved, so whatever it registers can be named in a config like the built-in entries. The
registry imports none of the things it holds: grec's own register when the layer that uses them
imports their modules (``grec.tasks`` imports its tasks and models).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grec.base.errors import GrecError


class Registry:
    """A name -> object table for one kind of thing (``model``, ``task dataset``, ``task``); ``table`` is
    the name users decorate with (default the kind in capitals, plural)."""

    def __init__(self, kind: str, table: str | None = None):
        self.kind, self.table = kind, table or f"{kind.upper()}S"
        self._entries: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[Any], Any]:
        def add(obj: Any) -> Any:
            known = self._entries.get(name)
            if known is not None and known is not obj and _qualname(known) != _qualname(obj):
                raise GrecError(
                    f"{self.kind} {name!r} is registered twice ({_qualname(known)} and {_qualname(obj)}); "
                    f"rename one of them"
                )
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> Any:
        if name not in self._entries:
            raise GrecError(
                f"unknown {self.kind} {name!r}; registered {self.kind}s: {', '.join(self.names())}. "
                f"A {self.kind} of your own needs --plugin FILE.py with @{self.table}.register"
            )
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


MODELS = Registry("model")
TASK_DATASETS = Registry("task dataset", "TASK_DATASETS")  # not prepare's data sets (grec.prepare.datasets)
TASKS = Registry("task")
QUANTIZERS = Registry("quantizer")


def load_plugins(plugins: list[str]) -> None:
    """Import each ``--plugin``: a ``.py`` file path or an importable module name."""
    for plugin in plugins:
        path = Path(plugin)
        try:
            if plugin.endswith(".py"):
                if not path.is_file():
                    raise GrecError(f"{plugin}: plugin file not found (given as --plugin)")
                name = f"grec_plugin_{path.stem}"
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
            else:
                importlib.import_module(plugin)
        except GrecError:
            raise
        except ImportError as err:
            raise GrecError(
                f"--plugin {plugin}: cannot import it ({err}); give a .py file or a module on PYTHONPATH"
            ) from None
        except Exception as err:  # the user's code failed while importing: say where
            raise GrecError(f"--plugin {plugin}: importing it failed: {type(err).__name__}: {err}") from err
