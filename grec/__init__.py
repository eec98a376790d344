"""grec: generative recommendation with large language models.

The pipeline stages are the sub-packages: ``grec.prepare`` turns interaction logs into
time-ordered leave-one-out splits; later stages read the files it writes (docs/formats.md).
"""

from grec.errors import GrecError

__version__ = "0.1.0"

__all__ = ["GrecError", "__version__"]
