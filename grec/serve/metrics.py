"""The server's counters and histograms, rendered in Prometheus' text format (``GET /metrics``).

Written here rather than with ``prometheus_client``: five series do not need a dependency.
"""

from __future__ import annotations

import threading
from collections import Counter as _Counts

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def _labels(pairs: dict[str, str]) -> str:
    if not pairs:
        return ""
    escaped = (
        f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in pairs.items()
    )
    return "{" + ",".join(escaped) + "}"


class Counter:
    """A counter with labels: ``inc(**labels)``."""

    def __init__(self, name: str, help_text: str, lock: threading.Lock):
        self.name, self.help, self.lock, self.values = name, help_text, lock, _Counts()

    def inc(self, amount: float = 1, **labels: str) -> None:
        with self.lock:
            self.values[tuple(sorted(labels.items()))] += amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self.lock:
            lines += [f"{self.name}{_labels(dict(key))} {value:g}" for key, value in sorted(self.values.items())]
        return lines


class Histogram:
    """A histogram without labels: ``observe(value)``; cumulative buckets, sum and count."""

    def __init__(self, name: str, help_text: str, buckets: tuple, lock: threading.Lock):
        self.name, self.help, self.buckets, self.lock = name, help_text, buckets, lock
        self.counts, self.sum, self.count = [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        with self.lock:
            for k, bound in enumerate(self.buckets):
                if value <= bound:
                    self.counts[k] += 1
            self.sum += value
            self.count += 1

    def render(self) -> list[str]:
        with self.lock:
            lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
            lines += [f'{self.name}_bucket{{le="{b:g}"}} {n}' for b, n in zip(self.buckets, self.counts)]
            lines += [f'{self.name}_bucket{{le="+Inf"}} {self.count}', f"{self.name}_sum {self.sum:.6f}"]
            return [*lines, f"{self.name}_count {self.count}"]


class Metrics:
    """Everything ``/metrics`` shows; ``queue_depth`` and ``model_version`` are read when it is scraped."""

    def __init__(self):
        lock = threading.Lock()
        self.requests = Counter("grec_requests_total", "HTTP requests by route and status.", lock)
        self.errors = Counter("grec_errors_total", "Failed requests by kind (bad_request, model, reload, ...).", lock)
        self.reloads = Counter("grec_reloads_total", "Checkpoint reloads by outcome.", lock)
        self.latency = Histogram(
            "grec_request_latency_seconds", "POST /recommend latency, queueing included.", LATENCY_BUCKETS, lock
        )
        self.batch_size = Histogram("grec_batch_size", "Requests ranked together per beam search.", BATCH_BUCKETS, lock)

    def render(self, queue_depth: int, model_version: str | None) -> str:
        lines = [*self.requests.render(), *self.errors.render(), *self.reloads.render()]
        lines += [*self.latency.render(), *self.batch_size.render()]
        lines += ["# HELP grec_queue_depth Requests waiting for the model worker.", "# TYPE grec_queue_depth gauge"]
        lines += [f"grec_queue_depth {queue_depth}"]
        lines += ["# HELP grec_model_info The checkpoint being served.", "# TYPE grec_model_info gauge"]
        lines += [f"grec_model_info{_labels({'version': model_version})} 1"] if model_version else []
        return "\n".join(lines) + "\n"
