"""The align stage: preference post-training of an SFT checkpoint (``grec align``, ``align.py``)."""

from grec.align.config import AlignConfig
from grec.align.run import align

__all__ = ["AlignConfig", "align"]
