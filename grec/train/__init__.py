"""Stage 3, train: fine-tune a causal or seq2seq LM on records to generate the next item."""

from grec.train.config import TrainConfig
from grec.train.run import train

__all__ = ["TrainConfig", "train"]
