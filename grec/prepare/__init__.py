"""Stage 1, prepare: interaction logs -> items.jsonl and time-ordered leave-one-out splits."""

from grec.prepare.config import PrepareConfig
from grec.prepare.stage import prepare
from grec.prepare.summary import format_summary

__all__ = ["PrepareConfig", "format_summary", "prepare"]
