"""The align stage: preference post-training of an SFT checkpoint (``grec align``, ``align.py``)."""

from grec.align.config import AlignConfig
from grec.align.run import align
from grec.base.config import callable_stage

callable_stage(__name__, AlignConfig, align)  # grec.align(...) runs the stage (grec.base.config)

__all__ = ["AlignConfig", "align"]
