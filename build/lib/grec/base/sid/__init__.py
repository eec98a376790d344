"""Semantic-ID lookups and tokens, shared by the index, train and infer stages."""

from grec.base.sid.sidmap import SidMap, level_name, token
from grec.base.sid.tokens import SidTokens, add_sid_tokens

__all__ = ["SidMap", "SidTokens", "add_sid_tokens", "level_name", "token"]
