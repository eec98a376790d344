"""Publishing an output folder: one writer at a time, all or nothing, the previous output kept on a kill.

Three files may sit beside a folder ``out`` (hidden, in its parent):

- ``.out.lock``: the writer lock (``claim``), there while a writer runs. A second grec process
  writing the same folder is refused at once, naming the process that holds it, so two runs with different settings can no
  longer both pass the settings check and the last one win.
- ``.out.commit.json``: the journal of a commit in progress (``StagedDir``). Before a staged file
  replaces its namesake, the old one is moved to a backup folder; the journal is removed only when
  every file is in place. A journal that is still there means the commit was cut short: the next
  writer, or the next reader of a file in ``out``, rolls the folder back to the previous output.
- ``.out.PID.*.tmp`` / ``.out.PID.*.old``: staging and backup folders; those of dead processes are
  removed by the next writer.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from grec.base.errors import GrecError

try:
    import fcntl
except ImportError:  # not on Windows: one writer at a time is then the user's to ensure
    fcntl = None

_held: dict[Path, int] = {}  # folders this process holds the lock of, with the depth of nested claims


def beside(final: Path, suffix: str) -> Path:
    """The hidden file ``.NAME.SUFFIX`` in ``final``'s parent."""
    return final.parent / f".{final.name}.{suffix}"


@contextlib.contextmanager
def claim(final: str | os.PathLike, flag: str = "--out") -> Iterator[None]:
    """Hold the writer lock of ``final`` for the ``with`` block (nested claims of one process are free).

    Another process holding it is a GrecError at once. A commit left half-done by a killed writer
    is rolled back first, so the block starts from the previous whole output."""
    final = Path(final).absolute()
    if final in _held:
        _held[final] += 1
        try:
            yield
        finally:
            _held[final] -= 1
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    path = beside(final, "lock")
    fd = _lock(path, final, flag)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _held[final] = 1
        recover(final)
        yield
    finally:
        _held.pop(final, None)
        path.unlink(missing_ok=True)  # before the lock is released: a waiting writer then retries on a new file
        os.close(fd)


def _lock(path: Path, final: Path, flag: str) -> int:
    """Open and lock ``path``; retried when the file was removed by the writer that held it meanwhile."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise GrecError(
                f"{final}: another grec run (process {holder}) is writing this folder; wait for it to "
                f"finish, or choose another {flag}"
            ) from None
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def check_published(folder: str | os.PathLike) -> None:
    """Before reading a file of ``folder``: if a writer was killed while committing it, roll it back to
    the previous output (a GrecError while that writer still runs)."""
    folder = Path(folder)
    if beside(folder, "commit.json").is_file():
        with claim(folder, "output folder"):
            pass


def recover(final: Path) -> bool:
    """Undo a commit of ``final`` that was cut short (its journal is still there); True if one was."""
    journal = beside(final, "commit.json")
    if not journal.is_file():
        return False
    try:
        entry = json.loads(journal.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        entry = None
    if not isinstance(entry, dict) or "backup" not in entry:
        raise GrecError(f"{journal}: unreadable commit journal; inspect {final} by hand, then delete this file")
    backup = final.parent / entry["backup"]
    if entry.get("whole"):
        if (backup / final.name).exists():
            _remove(final)
            os.replace(backup / final.name, final)
    else:
        existed = set(entry["existed"])
        for name in entry["names"]:
            if (backup / name).exists():
                _remove(final / name)
                os.replace(backup / name, final / name)
            elif name not in existed:
                _remove(final / name)
    journal.unlink()
    shutil.rmtree(backup, ignore_errors=True)
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def remove_stale_staging(final: Path) -> None:
    """Remove staging and backup folders of ``final`` left by killed runs (``.NAME.PID.*.tmp`` or
    ``.old`` whose process is gone)."""
    for suffix in ("tmp", "old"):
        for folder in final.parent.glob(f".{glob.escape(final.name)}.*.{suffix}"):
            pid = folder.name[len(final.name) + 2 :].split(".", 1)[0]
            if folder.is_dir() and pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _hidden_folder(final: Path, suffix: str) -> Path:
    """A new private-named folder ``.NAME.PID.xxxx.SUFFIX`` beside ``final``, with the usual permissions."""
    path = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=f".{suffix}", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o777 & ~umask)  # mkdtemp makes it private; the final folder should not be
    return path


def _write_journal(final: Path, entry: dict) -> None:
    journal = beside(final, "commit.json")
    with open(journal, "w", encoding="utf-8") as handle:
        json.dump(entry, handle)
        handle.flush()
        os.fsync(handle.fileno())


class StagedDir:
    """Build an output folder's files in a hidden folder beside it, then publish them all or nothing.

    ``merge`` (the stages' way): each staged file replaces its namesake in ``final``; other files
    already there (say, a later stage's sub-folder) are left alone, and ``marker`` moves in last.
    Otherwise the staged folder replaces ``final`` whole (``grec export``). A run killed at any point
    leaves the previous output, or the new one, never a mix (see ``recover``). The writer lock is held
    from entry to the end of the commit; on error the staging folder is removed and ``final`` is untouched.
    """

    def __init__(self, final: str | os.PathLike, marker: str, merge: bool = True, flag: str = "--out"):
        self.final = Path(final)
        self.marker = marker
        self.merge = merge
        self.flag = flag
        self.path: Path | None = None
        self._claim: contextlib.AbstractContextManager | None = None

    def __enter__(self) -> Path:
        self._claim = claim(self.final, self.flag)
        self._claim.__enter__()
        remove_stale_staging(self.final)
        self.path = _hidden_folder(self.final, "tmp")
        return self.path

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.path is not None and self._claim is not None
        try:
            if exc_type is None:
                self._commit(self.path)
        finally:
            shutil.rmtree(self.path, ignore_errors=True)
            self._claim.__exit__(exc_type, exc, tb)

    def _commit(self, staged: Path) -> None:
        final = self.final
        if not final.exists():
            os.replace(staged, final)
            return
        backup = _hidden_folder(final, "old")
        if self.merge:
            names = sorted(p.name for p in staged.iterdir() if p.name != self.marker)
            names = [*names, self.marker] if (staged / self.marker).exists() else names
            existed = [n for n in names if (final / n).exists() or (final / n).is_symlink()]
            _write_journal(final, {"backup": backup.name, "names": names, "existed": existed})
            for name in names:
                if name in existed:
                    os.replace(final / name, backup / name)
                os.replace(staged / name, final / name)
        else:
            _write_journal(final, {"backup": backup.name, "whole": True})
            os.replace(final, backup / final.name)
            os.replace(staged, final)
        beside(final, "commit.json").unlink()  # the commit point
        shutil.rmtree(backup, ignore_errors=True)


def publishes(flag: str = "out"):
    """Decorate a stage function ``fn(cfg)`` that writes the folder ``cfg.<flag>``: it runs holding that
    folder's writer lock, from the settings check to the commit."""

    def decorate(fn):
        @functools.wraps(fn)
        def run(cfg, *args, **kwargs):
            with claim(getattr(cfg, flag), f"--{flag}"):
                return fn(cfg, *args, **kwargs)

        return run

    return decorate
