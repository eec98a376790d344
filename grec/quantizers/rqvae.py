"""RQ-VAE (TIGER, LC-Rec): an MLP autoencoder whose latent is quantised by residual codebooks.

Loss = reconstruction MSE + per level ||sg(r) - e||^2 + beta ||r - sg(e)||^2, straight-through
gradients to the encoder. Codebooks start from residual k-means on the initial latents, and codes
unused during an epoch are re-seeded with latents of the last batch (no dead codes).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from grec.base.progress import progress
from grec.base.registry import QUANTIZERS
from grec.quantizers.kmeans import kmeans, mean_sq_norm, nearest, sq_distances


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if k < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class RQVAEModel(nn.Module):
    def __init__(self, in_dim: int, hidden: list[int], dim: int, levels: int, codebook_size: int, beta: float):
        super().__init__()
        self.encoder = mlp([in_dim, *hidden, dim])
        self.decoder = mlp([dim, *reversed(hidden), in_dim])
        self.codebooks = nn.Parameter(torch.randn(levels, codebook_size, dim) * 0.1)
        self.beta = beta

    def quantise(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(codes ``n x levels``, quantised latent, commitment loss, final residual)."""
        residual, total = z, torch.zeros_like(z)
        codes, loss = [], z.new_zeros(())
        for book in self.codebooks:
            idx = torch.cdist(residual.detach(), book.detach()).argmin(1)
            chosen = book[idx]
            loss = loss + ((residual.detach() - chosen) ** 2).sum(1).mean()
            loss = loss + self.beta * ((residual - chosen.detach()) ** 2).sum(1).mean()
            total = total + chosen
            residual = residual - chosen.detach()
            codes.append(idx)
        return torch.stack(codes, 1), total, loss, residual

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        codes, quantised, commit, residual = self.quantise(z)
        z_q = z + (quantised - z).detach()
        recon = self.decoder(z_q)
        return codes, recon, commit, residual


@QUANTIZERS.register("rqvae")
class RQVAE:
    """Trainer and encoder around :class:`RQVAEModel` with the same interface as ``RQKMeans``.

    Args:
        levels: code levels.
        codebook_size: codes per level.
        hidden: encoder widths (e.g. [512, 256, 128]); the decoder mirrors them.
        dim: latent dimension.
        epochs: training epochs over the items.
        lr: AdamW learning rate.
        batch_size: items per step.
        beta: commitment weight.
        seed: seeds init, shuffling and re-seeding of dead codes.
        device: torch device.
    """

    def __init__(
        self,
        levels: int,
        codebook_size: int,
        hidden: list[int],
        dim: int = 32,
        epochs: int = 200,
        lr: float = 1e-3,
        batch_size: int = 1024,
        beta: float = 0.25,
        seed: int = 0,
        device: str = "cpu",
    ):
        self.levels, self.codebook_size, self.hidden, self.dim = levels, codebook_size, list(hidden), dim
        self.epochs, self.lr, self.batch_size, self.beta = epochs, lr, batch_size, beta
        self.seed, self.device = seed, device
        self.model: RQVAEModel | None = None
        self.history: list[float] = []

    uses_embeddings = True

    @classmethod
    def from_config(cls, cfg) -> RQVAE:
        """From ``grec index``'s settings (``levels``, ``codebook_size`` and the ``rqvae_*`` flags)."""
        return cls(
            cfg.levels,
            cfg.codebook_size,
            cfg.rqvae_hidden,
            cfg.rqvae_dim,
            cfg.rqvae_epochs,
            cfg.rqvae_lr,
            cfg.rqvae_batch_size,
            cfg.rqvae_beta,
            cfg.seed,
            cfg.device,
        )

    def quality(self, x: np.ndarray, residual: np.ndarray) -> dict[str, float]:
        """Reconstruction error of the decoder's output, and the last training epoch's loss."""
        mse = self.reconstruction_mse(x)
        return {
            "reconstruction_mse": mse,
            "relative_reconstruction_error": mse / mean_sq_norm(x),
            "rqvae_final_loss": self.history[-1],
        }

    def _build(self, in_dim: int) -> RQVAEModel:
        torch.manual_seed(self.seed)
        return RQVAEModel(in_dim, self.hidden, self.dim, self.levels, self.codebook_size, self.beta).to(self.device)

    @torch.no_grad()
    def _kmeans_init(self, x: torch.Tensor) -> None:
        residual = self.model.encoder(x).cpu().numpy()
        for level in range(self.levels):
            centroids = kmeans(residual, self.codebook_size, self.seed + level, iters=10)
            self.model.codebooks.data[level] = torch.from_numpy(centroids).to(self.device)
            residual = residual - centroids[nearest(residual, centroids)[0]]

    def fit(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Train on the rows of ``x``; return (codes, final latent residuals)."""
        data = torch.from_numpy(np.asarray(x, dtype=np.float32)).to(self.device)
        self.model = self._build(data.shape[1])
        self._kmeans_init(data)
        optimiser = torch.optim.AdamW(self.model.parameters(), lr=self.lr)
        generator = torch.Generator().manual_seed(self.seed)
        bar = progress(range(self.epochs), desc="index: rq-vae", unit="epoch")
        for _ in bar:
            used = torch.zeros(self.levels, self.codebook_size, dtype=torch.bool, device=self.device)
            order = torch.randperm(len(data), generator=generator).to(self.device)
            epoch_loss = 0.0
            for start in range(0, len(data), self.batch_size):
                batch = data[order[start : start + self.batch_size]]
                codes, recon, commit, _ = self.model(batch)
                loss = ((recon - batch) ** 2).sum(1).mean() + commit
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                epoch_loss += float(loss.detach()) * len(batch)
                for level in range(self.levels):
                    used[level, codes[:, level]] = True
            self.history.append(epoch_loss / len(data))
            self._reseed_dead(used, batch, generator)
            bar.set_postfix(loss=f"{self.history[-1]:.4f}")
        return self.encode(x)

    @torch.no_grad()
    def _reseed_dead(self, used: torch.Tensor, batch: torch.Tensor, generator: torch.Generator) -> None:
        residual = self.model.encoder(batch)
        for level, book in enumerate(self.model.codebooks.data):
            dead = (~used[level]).nonzero().flatten()
            if len(dead):
                pick = torch.randint(len(residual), (len(dead),), generator=generator).to(self.device)
                book[dead] = residual[pick]
            residual = residual - book[torch.cdist(residual, book).argmin(1)]

    @torch.no_grad()
    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes and final latent residuals of rows of ``x`` with the trained model."""
        self.model.eval()
        data = torch.from_numpy(np.asarray(x, dtype=np.float32)).to(self.device)
        codes, _, _, residual = self.model.quantise(self.model.encoder(data))
        self.model.train()
        return codes.cpu().numpy().astype(np.int64), residual.cpu().numpy()

    @torch.no_grad()
    def reconstruction_mse(self, x: np.ndarray) -> float:
        """Mean squared error per item between ``x`` and its decoded quantised latent."""
        data = torch.from_numpy(np.asarray(x, dtype=np.float32)).to(self.device)
        _, recon, _, _ = self.model(data)
        return float(((recon - data) ** 2).sum(1).mean())

    def last_level_costs(self, residual: np.ndarray, last_codes: np.ndarray) -> np.ndarray:
        last = self.model.codebooks.data[-1].cpu().numpy()
        return sq_distances(residual + last[last_codes], last)

    def state(self) -> dict[str, np.ndarray]:
        return {f"rqvae.{k}": v.detach().cpu().numpy() for k, v in self.model.state_dict().items()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        weights = {
            k.removeprefix("rqvae."): torch.from_numpy(np.asarray(v))
            for k, v in state.items()
            if k.startswith("rqvae.")
        }
        self.model = self._build(weights["encoder.0.weight"].shape[1])
        self.model.load_state_dict(weights)
