"""Small helpers shared by the tests."""

import os
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file, or of a JSON list (a result file named .json is written as one)."""
    from grec.base.io import read_records

    return [record for _, record in read_records(path)]


def leftovers(parent: Path) -> list[str]:
    """Staging folders or temp files a stage left behind in ``parent``."""
    return sorted(p.name for p in Path(parent).iterdir() if p.name.endswith(".tmp"))


def free_port() -> int:
    """A TCP port nobody listens on now, for a test's torch.distributed rendezvous."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def two_process_launcher(script: Path) -> list[str]:
    """``accelerate launch`` of ``script`` on two CPU processes (configs/accelerate/cpu_2proc.yaml), a free port."""
    config = ROOT / "configs" / "accelerate" / "cpu_2proc.yaml"
    port = str(free_port())
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(config),
        "--main_process_port",
        port,
        str(script),
    ]


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """``<run folder>/name``, made by ``build`` once per test run: under pytest-xdist the workers share
    it (the first one builds it, the others wait on a lock) instead of each building its own copy."""
    shared = os.environ.get("PYTEST_XDIST_WORKER") is not None  # the workers' folders share one parent per run
    root = tmp_path_factory.getbasetemp().parent if shared else tmp_path_factory.getbasetemp()
    folder, stamp = root / name, root / name.replace("/", "-")
    from filelock import FileLock

    with FileLock(f"{stamp}.lock"):
        if not Path(f"{stamp}.done").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            build(folder)
            Path(f"{stamp}.done").touch()
    return folder
