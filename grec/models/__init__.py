"""Models of the non-LLM tasks, registered in ``grec.registry.MODELS`` on import."""

from grec.models import sasrec  # noqa: F401
