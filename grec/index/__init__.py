"""Stage 2, index: item text -> embeddings -> collision-free semantic IDs (sid_map.json)."""

from grec.base.config import callable_stage
from grec.base.folders import publishes
from grec.index.config import IndexConfig
from grec.index.interop import export_index, import_index
from grec.index.stage import new_index
from grec.index.update import update_index


@publishes()
def build_index(cfg: IndexConfig) -> dict:
    """Run ``grec index`` (or ``--update``, or ``--import_file``; then ``--export_format``); return the report
    written to ``report.json``."""
    if cfg.import_file:
        report = import_index(cfg)
    else:
        report = update_index(cfg) if cfg.update else new_index(cfg)
    if cfg.export_format:
        export_index(cfg)
    return report


callable_stage(__name__, IndexConfig, build_index)  # grec.index(...) runs the stage (grec.base.config)

__all__ = ["IndexConfig", "build_index"]
