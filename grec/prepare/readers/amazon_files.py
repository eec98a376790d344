"""Amazon Reviews categories by name: which files each release publishes, and ``--download``.

``grec prepare --dataset amazon --category Beauty --amazon_version 2014 --download`` fetches the
category's reviews and metadata from the release's public pages (McAuley lab, UCSD; 2014 and 2018
take the 5-core review files, 2023 the raw ones, k-cored by grec), once, into grec's cache. The
lab publishes no checksums, so each file is checked by reading it whole through gzip, whose
CRC-32 and length trailer catch a damaged or cut-short download; a bad file is deleted and named.
``GREC_AMAZON_URL`` points at a mirror holding the same paths.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import urllib.request
import zlib
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.io import cache_dir

# short name -> the release's own category name (None: that release has no such category)
CATEGORIES = {
    "Beauty": {"2014": "Beauty", "2018": "All_Beauty", "2023": "All_Beauty"},
    "Sports": {"2014": "Sports_and_Outdoors", "2018": "Sports_and_Outdoors", "2023": "Sports_and_Outdoors"},
    "Toys": {"2014": "Toys_and_Games", "2018": "Toys_and_Games", "2023": "Toys_and_Games"},
    "Office": {"2014": "Office_Products", "2018": "Office_Products", "2023": "Office_Products"},
    "Industrial": {"2014": None, "2018": "Industrial_and_Scientific", "2023": "Industrial_and_Scientific"},
    "Instruments": {"2014": "Musical_Instruments", "2018": "Musical_Instruments", "2023": "Musical_Instruments"},
}
VERSIONS = ("2014", "2018", "2023")
# release -> (base address, reviews path, metadata path), {name} the release's category name
LAYOUT = {
    "2014": (
        "http://snap.stanford.edu/data/amazon/productGraph/",
        "categoryFiles/reviews_{name}_5.json.gz",
        "categoryFiles/meta_{name}.json.gz",
    ),
    "2018": (
        "https://jmcauley.ucsd.edu/data/amazon_v2/",
        "categoryFilesSmall/{name}_5.json.gz",
        "metaFiles2/meta_{name}.json.gz",
    ),
    "2023": (
        "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023/",
        "raw/review_categories/{name}.jsonl.gz",
        "raw/meta_categories/meta_{name}.jsonl.gz",
    ),
}


def category_name(category: str, version: str) -> str:
    """The release's own name of a short category name (``Beauty`` -> ``All_Beauty`` in 2018)."""
    names = CATEGORIES.get(category)
    if names is None:
        raise GrecError(f"--category: unknown Amazon category {category!r}; choose one of {', '.join(CATEGORIES)}")
    if version not in VERSIONS:
        raise GrecError(f"--amazon_version: expected one of {', '.join(VERSIONS)}, got {version!r}")
    if names[version] is None:
        have = [v for v in VERSIONS if names[v]]
        raise GrecError(f"--category {category}: not in the Amazon {version} release; use --amazon_version {have[0]}")
    return names[version]


def download_amazon(category: str, version: str) -> tuple[Path, Path]:
    """(reviews, metadata) of a category, downloaded once into grec's cache and checked (module docstring)."""
    name = category_name(category, version)
    base, reviews, meta = LAYOUT[version]
    base = os.environ.get("GREC_AMAZON_URL", base).rstrip("/") + "/"
    folder = cache_dir() / "amazon" / version
    folder.mkdir(parents=True, exist_ok=True)
    return tuple(_fetch(base + path.format(name=name), folder) for path in (reviews, meta))  # type: ignore[return-value]


def _fetch(url: str, folder: Path) -> Path:
    target = folder / url.rsplit("/", 1)[1]
    if target.is_file():
        return target
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".part", delete=False) as handle:
        part = Path(handle.name)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, handle)
        except OSError as err:
            part.unlink(missing_ok=True)
            raise GrecError(
                f"cannot download {url} ({err}); download it elsewhere and pass the files as --reviews and --meta"
            ) from None
    problem = _gzip_problem(part)
    if problem:
        part.unlink(missing_ok=True)
        raise GrecError(
            f"{url}: the download is damaged ({problem}); try again, or pass the files as --reviews and --meta"
        )
    os.replace(part, target)
    return target


def _gzip_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole gzip file (its CRC-32 and length checked by reading it to the end), or None."""
    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as err:
        return str(err) or type(err).__name__
    return None
