"""The HTTP API on Starlette: routes, the model's lifespan, reloads and the page at ``/``.

Starlette on uvicorn (docs/serve.md says why): the handlers only check requests and await the
model worker's futures (``grec.serve.batcher``), so the event loop never runs the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import os
import signal
import time
import uuid
from importlib import resources
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.queries import RequestError
from grec.serve.batcher import Batcher
from grec.serve.config import TOKEN_VARIABLE, ServeConfig
from grec.serve.metrics import Metrics
from grec.serve.model import LoadedModel
from grec.serve.requests import json_object, parse_recommend, read_body

logger = logging.getLogger("grec")


class ServerState:
    """What the routes share: the config, the metrics, and the model worker once the model is loaded."""

    def __init__(self, cfg: ServeConfig):
        self.cfg, self.metrics = cfg, Metrics()
        self.batcher: Batcher | None = None
        self.load_error: str | None = None
        self.reload_lock = asyncio.Lock()

    def load(self) -> None:
        """Load the checkpoint and start the worker (in a thread: /health answers 'loading' meanwhile)."""
        try:
            started = time.perf_counter()
            model = LoadedModel(self.cfg.checkpoint, self.cfg.num_beams, self.cfg.device)
            self.batcher = Batcher(model, self.cfg.max_batch, self.cfg.max_wait_ms, self.metrics, self.cfg.threads)
            logger.info("serve: %s loaded in %.1f s", model.version, time.perf_counter() - started)
        except Exception as err:  # noqa: BLE001 - reported by /health, the process stays up to say so
            self.load_error = f"{type(err).__name__}: {err}"
            logger.error("serve: could not load %s: %s", self.cfg.checkpoint, self.load_error)

    def ready(self) -> Batcher:
        if self.batcher is None:
            status = "failed to load: " + self.load_error if self.load_error else "still loading"
            raise RequestError(None, f"the model is {status}; GET /health says when it is ready", 503)
        return self.batcher

    async def reload(self, checkpoint: str | None) -> dict:
        """Load ``checkpoint`` (default: the folder being served, read again) beside the current model, then swap
        it in between two batches. A checkpoint that does not load leaves the current one serving."""
        batcher = self.ready()
        root = Path(self.cfg.reload_root)
        if checkpoint is not None and root not in Path(checkpoint).resolve().parents:
            # the same answer whether the path exists or not: the endpoint tells nothing about other folders
            raise RequestError("checkpoint", f"checkpoint: must be a folder under {root} (--reload_root)", 403)
        async with self.reload_lock:
            path = checkpoint or str(batcher.model.path)
            try:
                model = await asyncio.to_thread(LoadedModel, path, self.cfg.num_beams, self.cfg.device)
            except Exception as err:  # noqa: BLE001 - the old model keeps serving
                self.metrics.reloads.inc(outcome="failed")
                raise RequestError("checkpoint", f"could not load {path}: {err}; still serving the previous one")
            old = batcher.swap(model)
            self.metrics.reloads.inc(outcome="ok")
            logger.info("serve: reloaded %s -> %s", old.version, model.version)
            return {"model_version": model.version, "previous_version": old.version, "checkpoint": str(model.path)}


def endpoint(route: str):
    """Counts the route's requests by status, and turns refusals into JSON errors that name the field."""

    def wrap(handler):
        @functools.wraps(handler)
        async def run(request):
            from starlette.responses import JSONResponse

            state: ServerState = request.app.state.grec
            request_id = request.state.request_id = _request_id(request)
            try:
                response = await handler(request, state)
            except RequestError as err:
                kind = {401: "unauthorized", 403: "forbidden", 404: "not_found", 408: "timeout", 413: "too_large"}
                kind |= {499: "client_closed", 503: "unavailable"}
                state.metrics.errors.inc(kind=kind.get(err.status, "bad_request"))
                body = {"error": str(err), "field": err.field, "request_id": request_id}
                response = JSONResponse(body, status_code=err.status)
            except Exception as err:  # noqa: BLE001 - one failed request, not a failed server
                logger.exception("serve: %s failed", route)
                state.metrics.errors.inc(kind="internal")
                body = {
                    "error": f"internal error: {type(err).__name__}: {err}",
                    "field": None,
                    "request_id": request_id,
                }
                response = JSONResponse(body, status_code=500)
            response.headers["x-request-id"] = request_id
            state.metrics.requests.inc(route=route, status=str(response.status_code))
            return response

        return run

    return wrap


@endpoint("/recommend")
async def recommend(request, state: ServerState):
    from starlette.responses import JSONResponse

    started = time.perf_counter()
    batcher = state.ready()
    body = await read_body(request, state.cfg.max_body_bytes, state.cfg.body_timeout_s)
    query, user_id = parse_recommend(body, state.cfg.max_k, state.cfg.max_history)
    items, version = await asyncio.wrap_future(batcher.submit(query))
    state.metrics.latency.observe(time.perf_counter() - started)
    logger.debug("serve: %s user %s k %d -> %d items", request.state.request_id, user_id, query.k, len(items))
    return JSONResponse(
        {
            "request_id": request.state.request_id,
            "model_version": version,
            "user_id": user_id,
            "items": [
                {"rank": rank, "item_id": r.item_id, "title": r.title, "score": r.score}
                for rank, r in enumerate(items, 1)
            ],
        }
    )


@endpoint("/items/{item_id}")
async def item(request, state: ServerState):
    from starlette.responses import JSONResponse

    return JSONResponse(state.ready().model.item(request.path_params["item_id"]))


@endpoint("/items")
async def search(request, state: ServerState):
    from starlette.responses import JSONResponse

    limit = request.query_params.get("limit", "20")
    if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= 200:
        raise RequestError("limit", f"limit: expected a whole number from 1 to 200, got {limit!r}")
    query = request.query_params.get("q", "")
    return JSONResponse({"items": state.ready().model.search(query, int(limit))})


@endpoint("/health")
async def health(request, state: ServerState):
    from starlette.responses import JSONResponse

    if state.batcher is None:
        status = "failed" if state.load_error else "loading"
        return JSONResponse({"status": status, "error": state.load_error}, status_code=503)
    model = state.batcher.model
    return JSONResponse({"status": "ready", "model_version": model.version, "style": model.style})


@endpoint("/metrics")
async def metrics(request, state: ServerState):
    from starlette.responses import PlainTextResponse

    depth = state.batcher.queue.qsize() if state.batcher else 0
    version = state.batcher.model.version if state.batcher else None
    return PlainTextResponse(state.metrics.render(depth, version), media_type="text/plain; version=0.0.4")


@endpoint("/admin/reload")
async def reload(request, state: ServerState):
    from starlette.responses import JSONResponse

    token = os.environ.get(TOKEN_VARIABLE, "")
    if not token:
        raise RequestError(None, f"reload is disabled: start grec serve with {TOKEN_VARIABLE} set", 403)
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise RequestError("authorization", "wrong or missing admin token: send Authorization: Bearer <token>", 401)
    body = await read_body(request, state.cfg.max_body_bytes, state.cfg.body_timeout_s)
    data = json_object(body) if body.strip() else {}
    checkpoint = data.get("checkpoint")
    if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint):
        raise RequestError("checkpoint", "checkpoint: expected a folder path")
    return JSONResponse(await state.reload(checkpoint))


@endpoint("/")
async def page(request, state: ServerState):
    from starlette.responses import HTMLResponse

    return HTMLResponse(resources.files("grec.serve").joinpath("page.html").read_text(encoding="utf-8"))


def create_app(cfg: ServeConfig):
    """The Starlette application of ``grec serve`` (the model loads when the server starts)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.routing import Route

    state = ServerState(cfg)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        loop = asyncio.get_running_loop()
        loading = loop.run_in_executor(None, state.load)
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload_on_signal(state)))
        yield
        await loading
        if state.batcher is not None:  # the requests already queued are answered first
            await asyncio.to_thread(state.batcher.close)

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/recommend", recommend, methods=["POST"]),
        Route("/items", search, methods=["GET"]),
        Route("/items/{item_id:path}", item, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/admin/reload", reload, methods=["POST"]),
    ]
    middleware = (
        [
            Middleware(
                CORSMiddleware, allow_origins=[cfg.cors_origin], allow_methods=["GET", "POST"], allow_headers=["*"]
            )
        ]
        if cfg.cors_origin
        else []
    )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={404: _http_error, 405: _http_error},
    )
    app.state.grec = state
    return app


def _request_id(request) -> str:
    """The client's X-Request-ID (printable ASCII, at most 64 characters), else a new one."""
    given = request.headers.get("x-request-id", "")[:64]
    return given if given.isascii() and given.isprintable() and given else uuid.uuid4().hex[:16]


async def _http_error(request, exc):
    from starlette.responses import JSONResponse

    text = {404: "no such route; the API has /recommend, /items, /health, /metrics, /admin/reload"}
    message = text.get(exc.status_code, f"{request.method} is not allowed on {request.url.path}")
    request_id = _request_id(request)
    headers = {**(exc.headers or {}), "x-request-id": request_id}  # 405: Allow names the methods
    body = {"error": message, "field": None, "request_id": request_id}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


async def _reload_on_signal(state: ServerState) -> None:
    try:
        await state.reload(None)
    except GrecError as err:
        logger.error("serve: SIGHUP reload failed: %s", err)
