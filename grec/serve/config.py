"""``ServeConfig``: every flag of ``grec serve``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grec.base.errors import GrecError

TOKEN_VARIABLE = "GREC_ADMIN_TOKEN"


@dataclass
class ServeConfig:
    """grec serve: recommendations over HTTP from a trained checkpoint, micro-batched, with metrics and hot reload.

    POST /recommend {"history": [item ids], "k": 10} answers the k best next items (ids, titles,
    scores), the model version and a request id; GET /items/{id}, GET /items?q=title, GET /health,
    GET /metrics (Prometheus), POST /admin/reload (needs the token in $GREC_ADMIN_TOKEN; SIGHUP
    reloads too) and a page at / to try it in a browser. Concurrent requests are ranked together in
    one constrained beam search (docs/serve.md). Example:
    grec serve --checkpoint outputs/sidlm/train/best --port 8000

    Args:
        checkpoint: a best/, last/ or exported folder that grec train or grec align wrote (SID or title style).
        host: interface to listen on; 127.0.0.1 serves this machine only, 0.0.0.0 every interface.
        port: TCP port; 0 picks a free one (printed at start).
        max_batch: most requests ranked together in one beam search; 1 turns micro-batching off.
        max_wait_ms: how long the first request of a batch waits for others to join it.
        threads: torch threads of the model worker; on a 2-core machine 2 (the event loop needs little); 0 keeps torch's default. The log's first lines say how many threads each library uses and how idle OpenMP threads wait (passive unless OMP_WAIT_POLICY is set).
        num_beams: beams of the constrained search (at least the request's k are used).
        max_k: largest k a request may ask for.
        max_history: most items a request's history may list (the prompt keeps the last ones, as in training).
        max_body_bytes: largest request body accepted.
        body_timeout_s: seconds a request body may take to arrive; a slower or half-sent one gets 408 and its connection is closed.
        reload_root: the folder POST /admin/reload may load checkpoints from (at any depth); default: the folder that holds --checkpoint.
        cors_origin: one origin allowed to call the API from a browser (e.g. http://localhost:3000); empty: CORS off.
        device: cpu, cuda, ...
        log_level: uvicorn's log level (info logs every request).
    """

    checkpoint: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch: int = 32
    max_wait_ms: float = 5.0
    threads: int = 0
    num_beams: int = 20
    max_k: int = 100
    max_history: int = 1000
    max_body_bytes: int = 65536
    body_timeout_s: float = 30.0
    reload_root: str = ""
    cors_origin: str = ""
    device: str = "cpu"
    log_level: str = "info"

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise GrecError("--checkpoint: required (a best/ or last/ folder that grec train or grec align wrote)")
        if not Path(self.checkpoint).is_dir():
            raise GrecError(f"--checkpoint {self.checkpoint}: no such folder")
        for name in ("max_batch", "num_beams", "max_k", "max_history", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise GrecError(f"--{name}: must be at least 1, got {getattr(self, name)}")
        if self.body_timeout_s <= 0:
            raise GrecError(f"--body_timeout_s: must be positive, got {self.body_timeout_s}")
        self.reload_root = str(Path(self.reload_root or Path(self.checkpoint).resolve().parent).resolve())
        if not Path(self.reload_root).is_dir():
            raise GrecError(f"--reload_root {self.reload_root}: no such folder")
        if self.max_wait_ms < 0 or self.threads < 0:
            raise GrecError("--max_wait_ms and --threads: must be 0 or more")
        if not 0 <= self.port < 65536:
            raise GrecError(f"--port: expected 0..65535, got {self.port}")
