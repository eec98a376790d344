"""Quantizers that turn item embeddings into codes: residual k-means, RQ-VAE, random and sequential."""
