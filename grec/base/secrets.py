"""Secrets never reach disk or logs: what a run records of its settings has them masked.

A hub token may be passed the documented way (``--trainer_args '{hub_token: ...}'``); every file
that records settings (training_state.json, a recipe's ``.recipe/`` marks, an export) goes through
``recorded``, and the token itself reaches the hub library through the environment (``HF_TOKEN``),
never through a ``TrainingArguments`` that the trainer pickles into each checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

MASK = "<redacted>"
SECRET_KEYS = {"token", "hub_token", "hf_token", "api_key", "secret", "password", "access_token", "auth_token"}


def is_secret(key: str) -> bool:
    """A setting's name that holds a credential (``hub_token``, ``wandb_api_key``, ...); ``pad_token`` is not one."""
    key = key.lower()
    return key in SECRET_KEYS or key.endswith(("_api_key", "_secret", "_password", "_access_token", "_auth_token"))


def masked(value: Any) -> Any:
    """``value`` with every secret-named mapping entry, at any depth, replaced by ``MASK``."""
    if isinstance(value, dict):
        return {k: MASK if is_secret(str(k)) and v is not None else masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(v) for v in value]
    return value


def recorded(cfg: Any) -> dict:
    """A config dataclass as plain JSON values (paths and other objects as strings), secrets masked."""
    return masked(json.loads(json.dumps(dataclasses.asdict(cfg), default=str)))


def without_secrets(values: dict) -> tuple[dict, dict]:
    """Split a mapping into (its entries without secrets, the secrets)."""
    secrets = {k: v for k, v in values.items() if is_secret(k)}
    return {k: v for k, v in values.items() if k not in secrets}, secrets
