"""Quantizers that turn item embeddings into codes, registered in ``grec.base.registry.QUANTIZERS``.

Each has ``from_config(cfg)``, ``fit(x)`` and ``encode(x)`` (codes and final residuals, or None),
``state()`` / ``load_state()`` (saved as quantizer.npz), ``quality(x, residual)`` (reconstruction
figures for the report) and ``uses_embeddings``; residual quantizers also have
``last_level_costs`` for the Sinkhorn de-duplication. ``grec index --method NAME`` picks one.
"""

from grec.quantizers.rqkmeans import RQKMeans
from grec.quantizers.rqvae import RQVAE
from grec.quantizers.simple import RandomCodes, SequentialCodes

__all__ = ["RQKMeans", "RQVAE", "RandomCodes", "SequentialCodes"]
