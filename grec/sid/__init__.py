"""Semantic-ID lookups and tokens, shared by the index, train and infer stages."""

from grec.sid.sidmap import SidMap, level_name, token

__all__ = ["SidMap", "level_name", "token"]
