"""Facts about a flag, declared on its config field (``dataclasses.field(metadata=...)``) and read by
one generic check each, instead of a list of flag names per stage.

- ``neutral``: changes neither what a stage computes nor where it writes (``--overwrite``,
  ``--keep_cpu_memory``, ``--report_to``): ignored when a folder's recorded settings are compared
  with a new run's and when ``grec run`` decides whether a stage is done.
- ``unrecorded``: says where the output goes (``--out``, ``--output_dir``) or is recorded some
  other way: left out of the settings an output folder records, still compared by ``grec run``.
- ``extendable``: may grow when a run is resumed (``--num_epochs``).
- ``only(default, flag=(values...))``: means something only when the other flags hold those
  values (``--beta`` with ``--method dpo`` or ``sdpo``); set elsewhere, it is refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, Field
from typing import Any

from grec.base.errors import GrecError


def _declared(default: Any, factory: Any, **facts: Any) -> Any:
    if factory is not MISSING:
        return dataclasses.field(default_factory=factory, metadata=facts)
    return dataclasses.field(default=default, metadata=facts)


def neutral(default: Any = MISSING, *, factory: Any = MISSING) -> Any:
    """A flag that changes neither what a stage computes nor where it writes."""
    return _declared(default, factory, neutral=True)


def unrecorded(default: Any = MISSING, *, factory: Any = MISSING) -> Any:
    """A flag left out of the settings an output folder records: where the output goes."""
    return _declared(default, factory, unrecorded=True)


def extendable(default: Any = MISSING) -> Any:
    """A flag that may grow when a run is resumed."""
    return _declared(default, MISSING, extendable=True)


def only(default: Any = MISSING, *, factory: Any = MISSING, **when: tuple) -> Any:
    """A flag that applies only while each named flag holds one of the given values."""
    return _declared(default, factory, only=when)


def flagged(cfg_or_cls: Any, fact: str) -> set[str]:
    """Names of the fields declared with ``fact`` (neutral, unrecorded, extendable, only)."""
    return {f.name for f in dataclasses.fields(cfg_or_cls) if f.metadata.get(fact)}


def recorded_settings(cfg: Any) -> dict:
    """The flags that determine a stage's output: neither neutral nor unrecorded."""
    skip = flagged(cfg, "neutral") | flagged(cfg, "unrecorded")
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in skip}


def _default(f: Field) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def check_applicable(cfg: Any) -> None:
    """Refuse a flag given a value other than its default where it does not apply (``only``)."""
    for f in dataclasses.fields(cfg):
        when = f.metadata.get("only")
        if not when or getattr(cfg, f.name) == _default(f):
            continue
        wrong = [name for name, allowed in when.items() if getattr(cfg, name) not in allowed]
        if wrong:
            where = " ".join(f"--{name} {' or '.join(map(_shown, allowed))}" for name, allowed in when.items())
            raise GrecError(
                f"--{f.name}: applies only with {where} (this run is --{wrong[0]} {_shown(getattr(cfg, wrong[0]))}); "
                f"drop it"
            )
