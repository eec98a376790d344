"""Progress bars that name their stage: lively on a terminal, a few plain lines in a log file.

When stderr is not a terminal (CI, ``nohup``, ``make demo > log``) a bar becomes ``LineProgress``:
one line at every tenth of the work and one at the end, with no carriage-return redraws.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator


def interactive() -> bool:
    """Whether progress goes to a terminal (then bars redraw in place)."""
    return sys.stderr.isatty()


class LineProgress:
    """The part of tqdm's interface grec uses, printed as plain lines at 10%, 20%, ... and at the end."""

    def __init__(self, iterable: Iterable | None = None, desc: str = "", total: int | None = None, **kwargs):
        self.iterable, self.desc = iterable, desc
        self.total = total if total is not None else _length(iterable)
        self.unit = str(kwargs.get("unit", "it")).strip()
        self.disable = bool(kwargs.get("disable", False))
        self.n, self.postfix, self.started, self.printed = 0, "", time.time(), 0
        self.closed = False

    def __iter__(self) -> Iterator:
        for value in self.iterable:
            yield value
            self.update()
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.total:
            tenth = min(10, self.n * 10 // self.total)
            if tenth > self.printed and tenth < 10:
                self._line()
                self.printed = tenth

    def set_postfix(self, values: dict | None = None, **kwargs) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in {**(values or {}), **kwargs}.items())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._line()

    def _line(self) -> None:
        if self.disable:
            return
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        share = f" ({100 * self.n // self.total}%)" if self.total else ""
        extra = f", {self.postfix}" if self.postfix else ""
        seconds = time.time() - self.started
        print(f"{self.desc}: {done} {self.unit}{share}, {seconds:.0f}s{extra}", file=sys.stderr, flush=True)


def _length(iterable) -> int | None:
    try:
        return len(iterable)
    except TypeError:
        return None


def progress(iterable: Iterable | None = None, desc: str = "", **kwargs):
    """A progress bar named ``desc`` (e.g. "index: embed items"): tqdm on a terminal, else ``LineProgress``."""
    if not interactive():
        return LineProgress(iterable, desc, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, dynamic_ncols=True, **kwargs)
