"""``serve(cfg)``: bind the socket, print where the server listens, run uvicorn until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
import socket

from grec.base.errors import GrecError
from grec.serve.app import create_app
from grec.serve.config import ServeConfig

logger = logging.getLogger("grec")


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port`` (port 0: a free one), or an error that says what to do."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise GrecError(f"--host {host} --port {port}: cannot listen there ({err}); pick another port") from None
    return sock


def serve(cfg: ServeConfig) -> None:
    """Serve until stopped; a stop (SIGINT, SIGTERM) lets requests in flight finish first."""
    import uvicorn

    # until the server can reload (its lifespan takes SIGHUP over), a reload signal must not end the process
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sock = bind(cfg.host, cfg.port)
    host, port = sock.getsockname()[:2]
    print(f"grec serve: http://{host}:{port}/ ({cfg.checkpoint}; GET /health says when the model is ready)", flush=True)
    config = uvicorn.Config(
        create_app(cfg), log_level=cfg.log_level, timeout_graceful_shutdown=60, access_log=cfg.log_level == "debug"
    )
    uvicorn.Server(config).run(sockets=[sock])
