"""Constrained decoding: every generated semantic ID is a catalog item."""

from grec.decoding.beam import BeamResult, sid_beam_search, sid_sample
from grec.decoding.sid_index import SidIndex

__all__ = ["BeamResult", "SidIndex", "sid_beam_search", "sid_sample"]
