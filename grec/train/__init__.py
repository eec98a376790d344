"""Stage 3, train: fine-tune a causal or seq2seq LM on records to generate the next item."""

from grec.base.config import callable_stage
from grec.train.config import TrainConfig
from grec.train.run import train

callable_stage(__name__, TrainConfig, train)  # grec.train(...) runs the stage (grec.base.config)

__all__ = ["TrainConfig", "train"]
