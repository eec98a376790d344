"""Task ``image_cls``: classify images with a small CNN or a ViT built from config.

``--data digits`` (default) is scikit-learn's 8x8 handwritten digits (1,797 real images);
any other ``--data`` is an image folder with one sub-folder per class (the ImageFolder layout).
Images that cannot be decoded are skipped and counted, or are an error with ``strict: true``.
The test split's confusion matrix is saved as ``confusion_matrix.png``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from grec.base.errors import GrecError
from grec.base.registry import TASKS
from grec.tasks.base import Task, parse_args
from grec.tasks.classify import classification_metrics, plot_confusion, split_indices

logger = logging.getLogger("grec")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class ImageData:
    """data_args of image_cls: image_size (pixels per side; 0: 8 for digits, 32 for folders), channels (1 grey or 3 RGB), strict (an undecodable image is an error instead of skipped), split."""

    image_size: int = 0
    channels: int = 1
    strict: bool = False
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])


def load_digits_images() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32)[:, None], digits.target, [str(k) for k in range(10)]


def load_folder(root: Path, size: int, channels: int, strict: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images of ``root/<class>/*`` resized to ``size`` x ``size``, scaled to [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    if not root.is_dir():
        raise GrecError(f"{root}: image folder not found (given as --data); or use --data digits")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise GrecError(f"{root}: expected one sub-folder per class (at least two), found {classes}")
    images, labels, skipped = [], [], []
    for label, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(path) as image:
                    pixels = image.convert("L" if channels == 1 else "RGB").resize((size, size))
                    array = np.asarray(pixels, dtype=np.float32) / 255.0
            except (UnidentifiedImageError, OSError) as err:
                if strict:
                    raise GrecError(f"{path}: cannot decode the image ({err}); remove it or drop strict") from None
                skipped.append(path)
                continue
            images.append(array[None] if channels == 1 else array.transpose(2, 0, 1))
            labels.append(label)
    if skipped:
        logger.warning("image_cls: skipped %d image(s) that could not be decoded, e.g. %s", len(skipped), skipped[0])
    if not images:
        raise GrecError(f"{root}: no decodable images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the class folders")
    return np.stack(images), np.array(labels), classes


@TASKS.register("image_cls")
class ImageClsTask(Task):
    default_model = "cnn"
    metric = "accuracy"
    higher_is_better = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.args = parse_args(ImageData, cfg.data_args, "--data_args")
        if self.args.channels not in (1, 3):
            raise GrecError(f"--data_args channels: 1 or 3, got {self.args.channels}")
        if cfg.data in (None, "digits"):
            images, labels, self.classes = load_digits_images()
            if self.args.image_size not in (0, 8):
                images = torch.nn.functional.interpolate(torch.from_numpy(images), size=self.args.image_size).numpy()
            if self.args.channels == 3:
                images = np.repeat(images, 3, axis=1)
        else:
            images, labels, self.classes = load_folder(
                Path(cfg.data), self.args.image_size or 32, self.args.channels, self.args.strict
            )
        mean, std = images.mean(), images.std() or 1.0
        self.images = torch.from_numpy((images - mean) / std)
        self.labels = torch.from_numpy(labels).long()
        self.parts = split_indices(len(labels), self.args.split, cfg.seed)
        self.train_set = self.parts["train"].tolist()
        self.valid_set = self.parts["valid"].tolist()
        self.normalise = (float(mean), float(std))

    def shapes(self) -> dict:
        return {
            "channels": int(self.images.shape[1]),
            "image_size": int(self.images.shape[-1]),
            "num_classes": len(self.classes),
        }

    def extra(self) -> dict:
        return {"classes": self.classes, "normalise": self.normalise}

    def collate(self, rows: list[int]) -> dict:
        index = torch.tensor(rows)
        return {"pixel_values": self.images[index], "labels": self.labels[index]}

    @torch.no_grad()
    def evaluate(self, model, split: str) -> dict[str, float]:
        rows = self.parts[split]
        device = next(model.parameters()).device
        probs = []
        for start in range(0, len(rows), self.cfg.eval_batch_size):
            batch = self.images[torch.from_numpy(rows[start : start + self.cfg.eval_batch_size])].to(device)
            probs.append(model(pixel_values=batch)["logits"].float().softmax(-1).cpu())
        probs = torch.cat(probs).numpy()
        labels = self.labels[torch.from_numpy(rows)].numpy()
        metrics = classification_metrics(labels, probs)
        if split == "test":
            plot_confusion(labels, probs.argmax(1), self.classes, Path(self.cfg.output_dir) / "confusion_matrix.png")
        return metrics
