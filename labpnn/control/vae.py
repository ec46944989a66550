"""The variational framework: a VAE over the SLM patterns whose latent also predicts the camera.

Rahmani, Psaltis and Moser (2021). The forward model is a variational auto-encoder over the
*input* — encoder ``q(z|x) = N(μ(x), σ²)``, decoder ``p(x|z)`` — plus a generator that
predicts the camera image from the latent. Trained on measured pairs, the objective is

    β · prediction + reconstruction + KL

per pattern, with ``prediction`` the mean squared error of predicted against measured
camera amplitudes (images scaled to a mean of 1), ``reconstruction`` the mean ``1 - cos``
between decoded and true SLM phases, and ``KL`` the divergence from ``N(0, I)`` averaged
over latent dimensions. ``β`` (default 1e5, as published) therefore weighs how much latent
noise the prediction tolerates. The latent σ starts at e⁻⁴ ≈ 0.02 of a field whose mean
intensity is 1; at β = 1e5 the prediction term keeps it there (a larger σ would cost more
in prediction than it saves in KL), while a small β lets it grow and blur the model.
The actor maps a target to SLM phases and is trained through the mean path
``generator(μ(x))``, with the same outer loop as the actor/model networks.

Two choices make it learnable from a few thousand intensity-only pairs, and both are ours:

* the generator ends in square-law detection (it outputs a camera *field*, real and
  imaginary parts, whose squared modulus is the image), as the physics does;
* the encoder and generator start from the phase-retrieval estimate of
  :class:`~labpnn.control.speckle_model.SpeckleModel` on the round-0 probes. With a
  latent of at least twice the number of camera pixels this start is exact; a smaller
  latent keeps the leading singular directions (a low-rank medium). Trained by Adam from
  random weights instead, the same network did not learn the speckle at all (held-out
  Pearson 0.01–0.02 after 15 epochs on 6 144 pairs): intensity-only data make it a
  phase-retrieval problem, and gradient descent from scratch does not solve it here.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from labpnn.control.actor_model import ActorControlLoop
from labpnn.control.loop import LoopConfig, Progress, cosine_lr
from labpnn.control.speckle_model import SpeckleModel, code_phases

__all__ = ["VariationalForwardModel", "VAEControl"]


class VariationalForwardModel(nn.Module):
    """Encoder μ(x), σ; decoder; generator with square-law detection (see module doc)."""

    def __init__(self, n_macropixels: int, n_pixels: int, latent_size: int):
        super().__init__()
        self.n_macropixels, self.n_pixels, self.latent_size = n_macropixels, n_pixels, latent_size
        self.encoder = nn.Linear(2 * n_macropixels, latent_size)
        self.log_var = nn.Parameter(torch.full((latent_size,), -8.0))
        self.decoder = nn.Linear(latent_size, 2 * n_macropixels)
        self.generator = nn.Linear(latent_size, 2 * n_pixels)
        self.offset = nn.Parameter(torch.zeros(n_pixels))
        self.register_buffer("scale", torch.ones(()))

    @staticmethod
    def features(phases: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.cos(phases), torch.sin(phases)], dim=1)

    def encode(self, phases: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.features(phases))

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        field = self.generator(z)
        re, im = field[:, : self.n_pixels], field[:, self.n_pixels :]
        return (re * re + im * im + self.offset) * self.scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(z)
        return torch.atan2(out[:, self.n_macropixels :], out[:, : self.n_macropixels])

    def forward(self, phases: torch.Tensor) -> torch.Tensor:
        """The mean path the actor trains through: image from μ(x)."""
        return self.generate(self.encode(phases))

    def predict(self, phases: np.ndarray, batch: int = 2048) -> np.ndarray:
        with torch.no_grad():
            parts = [
                self(torch.as_tensor(phases[i : i + batch], dtype=torch.float32))
                for i in range(0, len(phases), batch)
            ]
        return torch.cat(parts).numpy()

    # -- the start from phase retrieval -------------------------------------------------
    def init_from(self, speckle: SpeckleModel, phases: np.ndarray) -> None:
        """Encoder and generator from a fitted speckle model; decoder by ridge regression."""
        w = speckle.weight.detach().to(torch.complex128)  # [P, N]
        b = speckle.bias.detach().to(torch.complex128)
        p, n, latent = self.n_pixels, self.n_macropixels, self.latent_size
        rank = min(latent // 2, p)
        if rank >= p:
            k, g = w, torch.eye(p, dtype=torch.complex128)  # encoder = the field itself
        else:
            u, s, vh = torch.linalg.svd(w, full_matrices=False)
            root = s[:rank].sqrt().to(torch.complex128)
            k = root[:, None] * vh[:rank]  # [r, N]
            g = u[:, :rank] * root[None, :]  # [P, r]
        with torch.no_grad():
            enc = torch.zeros(latent, 2 * n, dtype=torch.float64)
            enc[:rank, :n], enc[:rank, n:] = k.real, -k.imag
            enc[rank : 2 * rank, :n], enc[rank : 2 * rank, n:] = k.imag, k.real
            self.encoder.weight.copy_(enc)
            self.encoder.bias.zero_()
            gen = torch.zeros(2 * p, latent, dtype=torch.float64)
            gen[:p, :rank], gen[:p, rank : 2 * rank] = g.real, -g.imag
            gen[p:, :rank], gen[p:, rank : 2 * rank] = g.imag, g.real
            self.generator.weight.copy_(gen)
            self.generator.bias.copy_(torch.cat([b.real, b.imag]))
            self.offset.copy_(speckle.offset.detach())
            self.scale.copy_(speckle.scale)
            self._fit_decoder(phases)

    def _fit_decoder(self, phases: np.ndarray, ridge: float = 1e-3) -> None:
        x = self.features(torch.as_tensor(phases, dtype=torch.float32)).double()
        z = self.encoder(x.float()).double()
        z1 = torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype)], dim=1)
        gram = z1.T @ z1
        gram += ridge * gram.diagonal().mean() * torch.eye(len(gram), dtype=gram.dtype)
        coef = torch.linalg.solve(gram, z1.T @ x)  # [L+1, 2N]
        self.decoder.weight.copy_(coef[:-1].T)
        self.decoder.bias.copy_(coef[-1])

    # -- the variational objective ------------------------------------------------------
    def objective(
        self, phases: torch.Tensor, images: torch.Tensor, beta: float, noise: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """β·prediction + reconstruction + KL for a batch (images in camera units)."""
        mu = self.encode(phases)
        z = mu + torch.exp(0.5 * self.log_var) * noise
        predicted = self.generate(z) / self.scale
        amp_pred = predicted.clamp_min(1e-12).sqrt()
        amp_meas = (images / self.scale).clamp_min(0).sqrt()
        prediction = (amp_pred - amp_meas).pow(2).mean()
        decoded = self.decoder(z)
        n = self.n_macropixels
        norm = (decoded[:, :n] ** 2 + decoded[:, n:] ** 2).clamp_min(1e-12).sqrt()
        cos_err = (decoded[:, :n] * torch.cos(phases) + decoded[:, n:] * torch.sin(phases)) / norm
        reconstruction = (1.0 - cos_err).mean()
        kl = 0.5 * (mu.pow(2) + self.log_var.exp() - 1.0 - self.log_var).mean()
        loss = beta * prediction + reconstruction + kl
        return loss, {
            "prediction": float(prediction.detach()),
            "reconstruction": float(reconstruction.detach()),
            "kl": float(kl.detach()),
        }


class VAEControl(ActorControlLoop):
    """The variational controller; the outer loop and actor are :class:`ActorControlLoop`'s."""

    method = "vae"
    state_name = "vae"
    stages = ("model: spectral start", "model: phase retrieval", "VAE: training", "actor: training")

    def __init__(
        self,
        n_macropixels: int,
        target_shape: tuple[int, int],
        train_targets: np.ndarray,
        config: LoopConfig | None = None,
        latent_size: int = 512,
        beta: float = 1e5,
        vae_epochs: int = 5,
        vae_lr: float = 1e-4,
    ):
        self.latent_size, self.beta = int(latent_size), float(beta)
        self.vae_epochs, self.vae_lr = int(vae_epochs), float(vae_lr)
        super().__init__(n_macropixels, target_shape, train_targets, config)

    def build(self) -> None:
        self.speckle = SpeckleModel(self.n_macropixels, self.n_pixels)
        self.model = VariationalForwardModel(self.n_macropixels, self.n_pixels, self.latent_size)
        self.model_optimizer = torch.optim.Adam(self.model.parameters(), lr=self.vae_lr)
        self.build_actor()

    def fit_model(self, first: bool, progress: Progress | None = None) -> dict[str, float]:
        phases = code_phases(self.codes)
        info: dict[str, float] = {}
        if first:
            cfg = self.config
            info.update(self.speckle.fit(self.codes, self.images, cfg.model_iterations, 0,
                                         progress=progress))  # fmt: skip
            self.model.init_from(self.speckle, phases)
        info.update(self._train_vae(phases, progress))
        from labpnn.control.metrics import pearson_fidelity

        varying = np.ptp(self.images, axis=1) > 0
        predicted = self.model.predict(phases[varying])
        info["model_pearson"] = float(
            np.mean(pearson_fidelity(predicted, self.images[varying], flat=True))
        )
        info["latent_sigma"] = float(torch.exp(0.5 * self.model.log_var.detach()).mean())
        return info

    def _train_vae(self, phases: np.ndarray, progress: Progress | None) -> dict[str, float]:
        x = torch.as_tensor(phases, dtype=torch.float32)
        y = torch.as_tensor(self.images, dtype=torch.float32)
        terms: dict[str, float] = {}
        batch = 256
        for epoch in range(self.vae_epochs):
            for group in self.model_optimizer.param_groups:
                group["lr"] = cosine_lr(self.vae_lr, epoch, self.vae_epochs)
            order = torch.randperm(len(x), generator=self.generator)
            for start in range(0, len(order), batch):
                idx = order[start : start + batch]
                noise = torch.randn(len(idx), self.latent_size, generator=self.generator)
                loss, terms = self.model.objective(x[idx], y[idx], self.beta, noise)
                self.model_optimizer.zero_grad()
                loss.backward()
                self.model_optimizer.step()
            if progress:
                progress("VAE: training", epoch + 1, self.vae_epochs)
        return {f"vae_{k}": v for k, v in terms.items()}
