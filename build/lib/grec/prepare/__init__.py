"""Stage 1, prepare: interaction logs -> items.jsonl and time-ordered leave-one-out splits."""

from grec.base.config import callable_stage
from grec.prepare.config import PrepareConfig
from grec.prepare.stage import prepare
from grec.prepare.summary import format_summary

callable_stage(__name__, PrepareConfig, prepare)  # grec.prepare(...) runs the stage (grec.base.config)

__all__ = ["PrepareConfig", "format_summary", "prepare"]
