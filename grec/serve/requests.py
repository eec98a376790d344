"""Checks of a ``POST /recommend`` body (its fields by ``grec.base.queries``, as the Python API checks its
arguments): each refusal names the field at fault."""

from __future__ import annotations

import asyncio
import json

from grec.base.queries import RequestError, item_ids, true_or_false, whole_number
from grec.serve.batcher import Query

FIELDS = ("history", "k", "exclude", "exclude_history", "user_id")


async def read_body(request, limit: int, timeout: float) -> bytes:
    """The request body; a 413 as soon as it passes ``limit`` bytes (declared or streamed), a 408 when it has
    not all arrived within ``timeout`` seconds, and a 499 (not counted as a server error) when the client
    went away part-way."""
    from starlette.requests import ClientDisconnect

    declared = request.headers.get("content-length", "")
    too_big = RequestError("body", f"request body over {limit} bytes (the server's --max_body_bytes)", 413)
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_big
    size, chunks = 0, []

    async def receive() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)

    try:
        await asyncio.wait_for(receive(), timeout)
    except asyncio.TimeoutError:
        raise RequestError("body", f"request body not received within {timeout:g} s (--body_timeout_s)", 408) from None
    except ClientDisconnect:
        raise RequestError("body", "the client disconnected before sending the whole body", 499) from None
    return b"".join(chunks)


def json_object(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestError("body", f"malformed JSON: {err}") from None
    except RecursionError:
        raise RequestError("body", "JSON nested too deeply; a request is one flat object") from None
    if not isinstance(data, dict):
        raise RequestError("body", f"expected a JSON object, got {type(data).__name__}")
    return data


def parse_recommend(body: bytes, max_k: int, max_history: int) -> tuple[Query, object]:
    """The ranking job and the echoed ``user_id`` of a ``POST /recommend`` body."""
    data = json_object(body)
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise RequestError(unknown[0], f"unknown field {unknown[0]!r}; a request has {', '.join(FIELDS)}")
    if "history" not in data:
        raise RequestError("history", "history: required (the user's item ids, oldest first)")
    history = item_ids(data["history"], "history", max_history, required=True)
    k = whole_number(data.get("k", 10), "k", max_k)
    exclude = item_ids(data.get("exclude", []), "exclude", max_history)
    exclude_history = true_or_false(data.get("exclude_history", True), "exclude_history")
    user_id = data.get("user_id")
    if user_id is not None and (
        isinstance(user_id, bool) or not isinstance(user_id, (str, int)) or len(str(user_id)) > 256
    ):
        raise RequestError("user_id", "user_id: expected text or a number of at most 256 characters")
    return Query(history=history, k=k, exclude=exclude, exclude_history=exclude_history), user_id
