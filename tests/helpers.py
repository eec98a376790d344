"""Small helpers shared by the tests."""

import json
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def leftovers(parent: Path) -> list[str]:
    """Staging folders or temp files a stage left behind in ``parent``."""
    return sorted(p.name for p in Path(parent).iterdir() if p.name.endswith(".tmp"))


def free_port() -> int:
    """A TCP port nobody listens on now, for a test's torch.distributed rendezvous."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
