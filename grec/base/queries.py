"""The one check of a recommendation request, shared by the Python API (``Recommender.recommend``) and
``grec serve`` (``POST /recommend``): the same bad request gets the same one-line error from both.

Each refusal is a ``RequestError`` naming the field at fault (``history``, ``history[2]``, ``k``,
``exclude[0]``, ``exclude_history``); the server sends its ``status`` and ``field`` to the client.
"""

from __future__ import annotations

from collections.abc import Collection

from grec.base.errors import GrecError


class RequestError(GrecError):
    """A request refused: ``status`` (4xx for the server) and the ``field`` at fault."""

    def __init__(self, field: str | None, message: str, status: int = 400):
        super().__init__(message)
        self.field, self.status = field, status


def item_ids(value: object, field: str, most: int | None = None, required: bool = False) -> list[str]:
    """A list of item ids (text, or integers) as strings; at least one if ``required``, at most ``most``."""
    if not isinstance(value, (list, tuple)):
        raise RequestError(field, f"{field}: expected a list of item ids, got {type(value).__name__} {value!r:.40}")
    if required and not value:
        raise RequestError(field, f"{field}: give at least one item id")
    if most is not None and len(value) > most:
        raise RequestError(field, f"{field}: {len(value)} items, at most {most} (the server's --max_history)")
    out = []
    for index, item in enumerate(value):
        if not is_item_id(item) or item == "":
            raise RequestError(f"{field}[{index}]", f"{field}[{index}]: expected an item id (text), got {item!r:.40}")
        out.append(str(item))
    return out


def is_item_id(value: object) -> bool:
    """An item id as files and requests carry it: text, or an integer (a boolean is not one)."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def known_items(items: list[str], field: str, catalog: Collection[str]) -> None:
    """Every id of ``items`` is in ``catalog``, or a RequestError naming ``field[index]``."""
    for index, item in enumerate(items):
        if item not in catalog:
            raise RequestError(
                f"{field}[{index}]", f"{field}[{index}]: unknown item id {item!r:.60}; ids are the checkpoint's catalog"
            )


def whole_number(value: object, field: str, most: int | None = None) -> int:
    """An integer from 1 to ``most`` (the server's --max_k; no bound when None); booleans, floats and text
    are refused."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RequestError(field, f"{field}: expected a whole number of at least 1, got {value!r:.40}")
    if most is not None and value > most:
        raise RequestError(field, f"{field}: at most {most} (the server's --max_k), got {value}")
    return value


def true_or_false(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise RequestError(field, f"{field}: expected true or false, got {value!r:.40}")
    return value
