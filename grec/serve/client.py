"""A small HTTP client of ``grec serve`` (standard library only), and a server started as a child process.

``Client`` spreads requests over one or more replicas in turn and moves on to the next one when
a replica does not answer, which is all a client needs in front of stateless replicas::

    client = Client(["http://127.0.0.1:8000", "http://127.0.0.1:8001"])
    client.recommend(["50", "172", "181"], k=10)["items"]
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from grec.base.errors import GrecError


class Client:
    """Round-robin over ``urls``; ``call`` returns ``(status, body)`` (JSON decoded when it is JSON)."""

    def __init__(self, urls: str | list[str], timeout: float = 120):
        self.hosts = [urlsplit(u if "//" in u else f"http://{u}") for u in ([urls] if isinstance(urls, str) else urls)]
        self.timeout, self._turn, self._lock = timeout, itertools.count(), threading.Lock()
        self._local = threading.local()  # one keep-alive connection per thread and replica

    def _connection(self, host) -> http.client.HTTPConnection:
        pool = self._local.__dict__.setdefault("pool", {})
        if host.netloc not in pool:
            pool[host.netloc] = http.client.HTTPConnection(host.hostname, host.port or 80, timeout=self.timeout)
        return pool[host.netloc]

    def call(self, method: str, path: str, body=None, headers: dict | None = None, raw: bytes | None = None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        with self._lock:
            first = next(self._turn)
        errors = []
        for k in range(len(self.hosts)):
            host = self.hosts[(first + k) % len(self.hosts)]
            for attempt in range(2):  # a kept-alive connection the server closed is opened again once
                connection = self._connection(host)
                try:
                    connection.request(
                        method, path, body=data, headers={"content-type": "application/json", **(headers or {})}
                    )
                    response = connection.getresponse()
                    text = response.read()
                except (ConnectionError, http.client.HTTPException, OSError) as err:
                    connection.close()
                    self._local.pool.pop(host.netloc, None)
                    errors.append(f"{host.netloc}: {err}")
                    if isinstance(err, ConnectionRefusedError):
                        break
                    continue
                kind = response.getheader("content-type", "")
                return response.status, json.loads(text) if kind.startswith("application/json") else text.decode()
        raise ConnectionError(f"no replica answered {method} {path}: {'; '.join(errors)}")

    def recommend(self, history: list[str], k: int = 10, **fields) -> dict:
        status, body = self.call("POST", "/recommend", {"history": list(map(str, history)), "k": k, **fields})
        if status != 200:
            raise GrecError(f"grec serve answered {status}: {body}")
        return body


class ServerProcess:
    """``grec serve --checkpoint ... --port 0 FLAGS`` in a child process, ready when the constructor returns."""

    def __init__(self, checkpoint: str | Path, *flags: str, log: str | Path | None = None, env: dict | None = None,
                 ready_timeout: float = 300):  # fmt: skip
        command = [sys.executable, "-m", "grec", "serve", "--checkpoint", str(checkpoint), "--port", "0", *flags]
        self.log = Path(log) if log else None
        stderr = open(self.log, "w") if self.log else subprocess.DEVNULL  # noqa: SIM115 - the child writes it
        environment = {**os.environ, **(env or {})}
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=environment)
        first = self.process.stdout.readline()  # "grec serve: http://HOST:PORT/ (...)"
        if not first.startswith("grec serve: http://"):
            raise GrecError(f"grec serve did not start: {first}{self.log.read_text() if self.log else ''}")
        self.url = first.split()[2].rstrip("/")
        self.port = int(self.url.rsplit(":", 1)[1])
        self.client = Client(self.url)
        deadline = time.time() + ready_timeout
        while self._status() != 200:
            if self.process.poll() is not None or time.time() > deadline:
                raise GrecError(f"grec serve never became ready: {self.log.read_text() if self.log else ''}")
            time.sleep(0.3)

    def _status(self) -> int:
        try:
            return self.client.call("GET", "/health")[0]
        except ConnectionError:
            return 0

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (requests in flight finish first); the exit status (-15: uvicorn re-raises the signal)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)
