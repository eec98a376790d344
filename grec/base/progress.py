"""Progress bars that name their stage: lively on a terminal, a line every 30 s in a log file."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tqdm.auto import tqdm


def progress(iterable: Iterable | None = None, desc: str = "", **kwargs) -> tqdm:
    """``tqdm`` with ``desc`` (e.g. "index: embed items"); quieter when stderr is not a terminal."""
    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", 30.0)
    return tqdm(iterable, desc=desc, dynamic_ncols=True, **kwargs)
