"""The one exception type users see: a message that says what went wrong and what to do."""


class GrecError(Exception):
    """Bad input or a bad setting. The CLI prints the message (no traceback) and exits 1.

    Messages name the file, line or field at fault and say how to fix it.
    """


def where(path: object, line: int | None = None) -> str:
    """Format a location as ``path`` or ``path:line`` for error messages."""
    return f"{path}:{line}" if line is not None else str(path)
