"""Stage 4, infer: ranked catalog items per user from a trained checkpoint, by constrained beam search."""

from grec.base.config import callable_stage
from grec.infer.config import InferConfig
from grec.infer.run import infer

callable_stage(__name__, InferConfig, infer)  # grec.infer(...) runs the stage (grec.base.config)

__all__ = ["InferConfig", "infer"]
