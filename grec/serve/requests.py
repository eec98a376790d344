"""Checks of a ``POST /recommend`` body (its fields by ``grec.base.queries``, as the Python API checks its
arguments): each refusal names the field at fault."""

from __future__ import annotations

import json

from grec.base.queries import RequestError, item_ids, true_or_false, whole_number
from grec.serve.batcher import Query

FIELDS = ("history", "k", "exclude", "exclude_history", "user_id")


async def read_body(request, limit: int) -> bytes:
    """The request body, or a 413 as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    too_big = RequestError("body", f"request body over {limit} bytes (the server's --max_body_bytes)", 413)
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def json_object(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestError("body", f"malformed JSON: {err}") from None
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
