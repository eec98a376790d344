"""Stage configs: one dataclass per stage whose fields are the CLI flags.

``load_config(cls, config_file, **flags)`` builds a config from an optional YAML file with the
same field names, flags overriding it, and coerces each value to the field's type (fire turns
``--out 123`` into an int, YAML may give a string for a float). ``command(cls, run)`` turns a
config class and a stage function into a fire command whose ``--help`` lists the fields with the
help text from the dataclass docstring's ``Args:`` section.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from grec.base.errors import GrecError

C = TypeVar("C")
COMMAND_LINE = "the command line"

_CONFIG_HELP = "config: a YAML file whose keys are these flags; flags given on the command line override it."


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert ``value`` to ``annotation`` (str, int, float, bool, list[...], Optional/Union)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(name, value, option)
            except GrecError as err:
                errors.append(str(err))
        raise GrecError(errors[0] if errors else f"--{name}: invalid value {value!r}")
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(annotation) or (str,)
        if isinstance(value, str):
            # "[a.json, b.json]" or '["a.json"]' (BIGRec's scripts quote the names inside the brackets)
            value = [part.strip().strip("'\"") for part in value.strip().strip("[]").split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            value = [value]
        return [_coerce(name, item, inner) for item in value]
    if annotation is dict or origin is dict:
        if isinstance(value, str):
            import yaml

            try:
                value = yaml.safe_load(value) if value.strip() else {}
            except yaml.YAMLError as err:
                problem = getattr(err, "problem", None) or str(err).splitlines()[0]
                raise GrecError(
                    f"--{name}: not valid YAML ({problem}); write a mapping such as '{{embed_dim: 16}}'"
                ) from None
        if not isinstance(value, dict):
            raise GrecError(f"--{name}: expected a mapping such as '{{embed_dim: 16}}', got {value!r}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "y", "on"):
            return True
        if text in ("0", "false", "no", "n", "off"):
            return False
        raise GrecError(f"--{name}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise GrecError(f"--{name}: expected a whole number, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise GrecError(f"--{name}: expected a whole number, got {value!r}") from None
    if annotation is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise GrecError(f"--{name}: expected a number, got {value!r}") from None
    if annotation is str:
        if value is None:
            raise GrecError(f"--{name}: expected a value, got null (an empty YAML value); give it one")
        if isinstance(value, (dict, list, tuple)):
            raise GrecError(f"--{name}: expected a single value, got {value!r}")
        return str(value)
    return value


def read_yaml(path: str | os.PathLike) -> dict:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise GrecError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise GrecError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise GrecError(f"{path}: expected a mapping of flag names to values at the top level")
    return data


def load_config(cls: type[C], config_file: str | os.PathLike | None = None, **flags: Any) -> C:
    """Build ``cls`` from a YAML file (optional) and flags; flags win. Unknown names are errors."""
    sources = []
    if config_file is not None:
        sources.append((str(config_file), read_yaml(config_file)))
    sources.append((COMMAND_LINE, flags))
    return from_mappings(cls, sources)


def checked_values(cls: type, sources: list[tuple[str, dict]]) -> dict[str, Any]:
    """The field values that ``(origin, mapping)`` pairs give ``cls``, later ones winning, each name
    checked and each value coerced to its field's type; ``origin`` names errors. Builds nothing, so
    a chain of stages can be checked before the first one runs."""
    fields = {f.name for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for origin, mapping in sources:
        for key, value in mapping.items():
            name = str(key).replace("-", "_")
            if name not in fields:
                raise GrecError(f"{origin}: unknown setting {key!r}; known settings are: {', '.join(sorted(fields))}")
            try:
                values[name] = _coerce(name, value, hints[name])
            except GrecError as err:
                if origin == COMMAND_LINE:
                    raise
                raise GrecError(f"{origin}: {err}") from None
    return values


def from_mappings(cls: type[C], sources: list[tuple[str, dict]]) -> C:
    """Build ``cls`` from ``(origin, mapping)`` pairs, later ones winning; ``origin`` names errors."""
    return cls(**checked_values(cls, sources))


def check_sample(flag: str, value: int) -> None:
    """A ``--sample``-like count: a positive number of records, or -1 for all (0 and other negatives refused)."""
    if value == 0 or value < -1:
        raise GrecError(f"--{flag}: give a positive number of records, or -1 for all")


def _args_of(doc: str) -> dict[str, str]:
    """``name: help`` lines of one docstring's ``Args:`` section, in its order."""
    lines: dict[str, str] = {}
    for line in (doc.split("Args:", 1)[1] if "Args:" in doc else "").splitlines():
        name, sep, text = line.strip().partition(":")
        if sep and name.isidentifier():
            lines[name] = text.strip()
    return lines


def flag_order(cls: type) -> list[str]:
    """``cls``'s field names, those it declares itself first (in its own order), then inherited ones."""
    own = [name for name in cls.__dict__.get("__annotations__", {}) if not name.startswith("_")]
    names = [f.name for f in dataclasses.fields(cls)]
    return [n for n in own if n in names] + [n for n in names if n not in own]


def _help_without_config(cls: type) -> str:
    """``cls``'s docstring with ``--config`` first among the flags and the ``Args:`` of the classes it
    inherits fields from (``grec.training.flags.RunFlags``) merged in: its own entries first, in its order."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    own = _args_of(doc)
    helps: dict[str, str] = {}
    for klass in reversed(cls.__mro__[1:]):
        helps.update(_args_of(inspect.cleandoc(klass.__dict__.get("__doc__") or "")))
    helps.update(own)
    names = [*own, *(name for name in flag_order(cls) if name in helps and name not in own)]
    args = [f"    {_CONFIG_HELP}"] + [f"    {name}: {helps[name]}" for name in names]
    return doc.split("Args:", 1)[0].rstrip() + "\n\nArgs:\n" + "\n".join(args)


def command(cls: type[C], run: Callable[[C], Any]) -> Callable[..., Any]:
    """A fire-ready function with ``cls``'s fields (plus ``--config``) as its flags.

    fire reads the returned function's signature and docstring for ``--help``; calling it builds
    the config with :func:`load_config` and passes it to ``run``.
    """

    def main(config: str | None = None, **flags: Any) -> Any:
        return run(load_config(cls, config, **flags))

    params = [inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=str | None)]
    hints = typing.get_type_hints(cls)
    signature = inspect.signature(cls).parameters
    for name in flag_order(cls):
        params.append(signature[name].replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints[name]))
    main.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    main.__doc__ = _help_without_config(cls)
    main.__name__ = run.__name__
    return main


def callable_stage(module_name: str, cls: type, function: Callable) -> None:
    """Make the stage package ``module_name`` callable as its stage function, the Python API of a stage:
    ``grec.prepare(PrepareConfig(...))``, or ``grec.prepare(dataset="ml-100k", out="data/ml-100k")``
    (keyword arguments are the CLI flags, checked and coerced as the CLI does; ``config=`` names a
    YAML file of them). The package's modules and names stay reachable as before.
    """
    import sys

    module = sys.modules[module_name]

    class StagePackage(type(module)):
        def __call__(self, cfg=None, /, config: str | None = None, **flags: Any) -> Any:
            if cfg is not None and (flags or config is not None):
                raise GrecError(
                    f"grec.{module_name.rsplit('.', 1)[-1]}: give a {cls.__name__} or keyword settings, not both"
                )
            return function(cfg if cfg is not None else load_config(cls, config, **flags))

    StagePackage.__call__.__doc__ = function.__doc__
    module.__class__ = StagePackage
