"""Instruction records (alpaca style) from prepared splits, and the prompt templates train and infer share."""

from grec.base.config import callable_stage
from grec.base.templates import bos_prefix, prompt
from grec.records.config import RecordsConfig
from grec.records.stage import build_records

callable_stage(__name__, RecordsConfig, build_records)  # grec.records(...) runs the stage (grec.base.config)

__all__ = ["RecordsConfig", "bos_prefix", "build_records", "prompt"]
