"""Image classifiers: a small CNN, and a ViT built from a transformers ViTConfig (no pretrained weights)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from grec.base.registry import MODELS


@MODELS.register("cnn")
class SmallCNN(nn.Module):
    """Two conv-BN-ReLU stages and a linear head. Args: channels, image_size, num_classes (from the data), width, dropout."""

    def __init__(self, channels: int, image_size: int, num_classes: int, width: int = 32, dropout: float = 0.2):
        super().__init__()

        def stage(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
            )

        self.features = nn.Sequential(
            stage(channels, width), nn.MaxPool2d(2), stage(width, 2 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * width, num_classes))

    def forward(self, pixel_values, labels=None) -> dict:
        logits = self.head(self.features(pixel_values))
        if labels is None:
            return {"logits": logits}
        return {"loss": F.cross_entropy(logits, labels), "logits": logits}


@MODELS.register("vit")
class ViT(nn.Module):
    """A Vision Transformer from ``transformers.ViTConfig``, trained from scratch.
    Args: channels, image_size, num_classes (from the data), patch_size, dim, layers, heads, dropout."""

    def __init__(
        self,
        channels: int,
        image_size: int,
        num_classes: int,
        patch_size: int = 2,
        dim: int = 64,
        layers: int = 4,
        heads: int = 4,
        dropout: float = 0.1,
    ):
        super().__init__()
        from transformers import ViTConfig, ViTForImageClassification

        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        config = ViTConfig(
            image_size=image_size,
            patch_size=patch_size,
            num_channels=channels,
            hidden_size=dim,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=4 * dim,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
            num_labels=num_classes,
        )
        self.vit = ViTForImageClassification(config)

    def forward(self, pixel_values, labels=None) -> dict:
        logits = self.vit(pixel_values=pixel_values).logits
        if labels is None:
            return {"logits": logits}
        return {"loss": F.cross_entropy(logits, labels), "logits": logits}
