"""Stage 4, infer: ranked catalog items per user from a trained checkpoint, by constrained beam search."""

from grec.infer.config import InferConfig
from grec.infer.run import infer

__all__ = ["InferConfig", "infer"]
