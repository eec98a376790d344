"""Models of the non-LLM tasks, registered in ``grec.registry.MODELS`` on import."""

from grec.models import ctr, sasrec, text, vision  # noqa: F401
