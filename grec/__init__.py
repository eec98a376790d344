"""grec: generative recommendation with large language models.

The package is layered (docs/architecture.md): ``grec.base`` (formats, IO, config, errors,
registry, SID map, prompts) -> shared machinery (``grec.lm``, ``grec.decoding``,
``grec.quantizers``, ``grec.training``, ``grec.models``) -> the stages (``grec.prepare``,
``grec.index``, ``grec.records``, ``grec.train``, ``grec.infer``, ``grec.evaluate``), which talk
only through files -> tasks, recipes and the CLI on top.
"""

from grec.base.errors import GrecError
from grec.base.version import __version__

__all__ = ["GrecError", "__version__"]
