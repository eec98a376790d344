"""grec: generative recommendation with large language models.

The package is layered (docs/architecture.md): ``grec.base`` (formats, IO, config, errors,
registry, SID map, prompts) -> shared machinery (``grec.lm``, ``grec.decoding``,
``grec.quantizers``, ``grec.training``, ``grec.models``) -> the stages (``grec.prepare``,
``grec.index``, ``grec.records``, ``grec.train``, ``grec.infer``, ``grec.evaluate``), which talk
only through files -> tasks, recipes and the CLI on top.

The Python API mirrors the CLI: each stage package is callable with the stage's config dataclass
or its flags as keyword arguments, and ``Recommender`` recommends with a trained checkpoint::

    import grec
    grec.prepare(dataset="ml-100k", out="data/ml-100k")
    grec.index(data="data/ml-100k", out="data/ml-100k/sid")
    rec = grec.Recommender.from_pretrained("outputs/sidlm/best")
    rec.recommend(["50", "172", "181"], k=10)
"""

import importlib

from grec.base.errors import GrecError
from grec.base.version import __version__
from grec.stages import STAGES as _TABLE

# the stages whose package is the stage (grec.prepare, grec.align, ...): callable, they run it;
# train-task and popularity live inside other packages and are reached through them
STAGES = tuple(name for name, stage in _TABLE.items() if stage.module == f"grec.{name}")


def __getattr__(name: str):
    """``grec.prepare`` etc.: the stage package, imported on first use (it is callable: it runs the stage);
    ``grec.Recommender``: imported on first use too, so that ``import grec`` (and ``grec --help``) stays light."""
    if name in STAGES:
        return importlib.import_module(f"grec.{name}")
    if name in ("Recommender", "Recommendation"):
        return getattr(importlib.import_module("grec.recommender"), name)
    raise AttributeError(f"module 'grec' has no attribute {name!r}")


__all__ = ["GrecError", "Recommendation", "Recommender", "__version__", *STAGES]
