"""Stage 2, index: item text -> embeddings -> collision-free semantic IDs (sid_map.json)."""

from grec.index.config import IndexConfig
from grec.index.stage import build_index

__all__ = ["IndexConfig", "build_index"]
