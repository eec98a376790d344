"""Models of the shared-trainer tasks, registered in ``grec.base.registry.MODELS`` on import."""

from grec.models import ctr, hstu, lm, sasrec, text, vision  # noqa: F401
