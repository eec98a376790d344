"""Dynamic micro-batching: requests that arrive together are ranked in one constrained beam search.

One worker thread owns the model (the event loop never runs it). It takes the first waiting
request, waits at most ``max_wait_ms`` for up to ``max_batch - 1`` more, and ranks them together:
``Recommender.recommend`` with one history per request. Each request holds a
``concurrent.futures.Future`` the HTTP handler awaits. A batch reads the current model once, so
a reload (``swap``) takes effect between batches: no request sees a mix of two checkpoints. An
error while ranking fails that batch's requests and no others.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from grec.base.queries import RequestError, known_items
from grec.base.threads import thread_report
from grec.serve.model import LoadedModel

logger = logging.getLogger("grec")


@dataclass
class Query:
    """One request's ranking job, ids as strings."""

    history: list[str]
    k: int
    exclude: list[str] = field(default_factory=list)
    exclude_history: bool = True
    future: Future = field(default_factory=Future)

    @property
    def skip(self) -> list[str]:
        """The items it must not get back."""
        return [*self.history, *self.exclude] if self.exclude_history else list(self.exclude)


class Batcher:
    """The model worker: ``submit(query)`` returns a Future of ``(recommendations, model_version)``."""

    def __init__(self, model: LoadedModel, max_batch: int, max_wait_ms: float, metrics=None, threads: int = 0):
        self.model, self.max_batch, self.max_wait = model, max_batch, max_wait_ms / 1000
        self.metrics, self.threads = metrics, threads
        self.queue: queue.Queue[Query | None] = queue.Queue()
        self.worker = threading.Thread(target=self._loop, name="grec-model", daemon=True)
        self.worker.start()

    def submit(self, query: Query) -> Future:
        self.queue.put(query)
        return query.future

    def swap(self, model: LoadedModel) -> LoadedModel:
        """Serve ``model`` from the next batch on; return the one it replaces (its batch in flight finishes)."""
        old, self.model = self.model, model
        return old

    def close(self, timeout: float = 60) -> None:
        """Finish every request already queued, then stop the worker."""
        self.queue.put(None)
        self.worker.join(timeout)

    def _loop(self) -> None:
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        logger.info("serve: model worker threads: %s", thread_report())
        stopping = False
        while not stopping:
            first = self.queue.get()
            if first is None:
                return
            batch, deadline = [first], time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    more = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            self._run(batch)

    def _run(self, batch: list[Query]) -> None:
        model = self.model  # read once: the whole batch is ranked by one checkpoint
        if self.metrics is not None:
            self.metrics.batch_size.observe(len(batch))
        ready = []
        for query in batch:  # ids are checked against the checkpoint that will rank them
            try:
                known_items(query.history, "history", model.catalog)
                known_items(query.exclude, "exclude", model.catalog)
            except RequestError as err:
                query.future.set_exception(err)
            else:
                ready.append(query)
        if not ready:
            return
        beams = model.recommender.num_beams
        widths: dict[int, list[Query]] = {}
        for query in ready:  # requests with k above --num_beams need a wider beam: ranked apart
            widths.setdefault(max(beams, query.k), []).append(query)
        for group in widths.values():
            try:
                ranked = model.recommender.recommend(
                    [q.history for q in group],
                    k=max(q.k for q in group),
                    exclude_history=False,
                    exclude=[q.skip for q in group],
                )
            except Exception as err:  # noqa: BLE001 - reported to this batch's requests, the server goes on
                logger.exception("serve: ranking a batch of %d failed", len(group))
                if self.metrics is not None:
                    self.metrics.errors.inc(kind="model")
                for query in group:
                    query.future.set_exception(err)
                continue
            for query, items in zip(group, ranked):
                query.future.set_result((items[: query.k], model.version))
