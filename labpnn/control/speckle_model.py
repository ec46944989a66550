"""The model network: SLM phase pattern → camera image, learned from measured pairs only.

Its form is that of the physics, so it can be learned from a few times as many pairs as
macropixels: a complex linear layer (the unknown transmission matrix, plus a static field
for light the SLM does not modulate) followed by square-law detection, a per-pixel dark
offset, and a small learned SLM phase response (grey level to phase is never perfectly
linear)::

    image = scale · (|W · exp(i·lut(φ)) + b|² + offset)

The camera measures intensity only, so learning ``W`` is a phase-retrieval problem. A
generic network trained by gradient descent from random weights needs far more pairs
and time; instead :meth:`SpeckleModel.fit` starts from the spectral estimate (the leading
eigenvector of the intensity-weighted input covariance, per camera pixel), alternates
between the measured amplitudes and a least-squares solve (Gerchberg–Saxton on ``W``),
and finishes with a few Adam epochs that also fit the offset and the phase response.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["PHASE_LEVELS", "phase_codes", "code_phases", "SpeckleModel"]

PHASE_LEVELS = 256  # grey levels of the SLM, one 2π phase wrap

Progress = Callable[[str, float, float], None]


def phase_codes(phases: np.ndarray) -> np.ndarray:
    """Phases (rad) rounded to the SLM's grey levels, as uint8 codes."""
    scaled = np.round(np.mod(phases, 2 * np.pi) * (PHASE_LEVELS / (2 * np.pi)))
    return (scaled.astype(np.int64) % PHASE_LEVELS).astype(np.uint8)


def code_phases(codes: np.ndarray) -> np.ndarray:
    """The nominal phase (rad) of each grey-level code."""
    return np.asarray(codes, dtype=np.float64) * (2 * np.pi / PHASE_LEVELS)


class SpeckleModel(nn.Module):
    """Camera image predicted from SLM phases; see the module docstring for its form."""

    def __init__(self, n_macropixels: int, n_pixels: int, harmonics: int = 2, anchor: float = 0.01):
        super().__init__()
        self.anchor = float(anchor)  # ridge towards the previous model in warm refits
        self.n_macropixels, self.n_pixels = int(n_macropixels), int(n_pixels)
        self.weight = nn.Parameter(torch.zeros(n_pixels, n_macropixels, dtype=torch.complex64))
        self.bias = nn.Parameter(torch.zeros(n_pixels, dtype=torch.complex64))
        self.offset = nn.Parameter(torch.zeros(n_pixels))
        self.lut = nn.Parameter(torch.zeros(2 * harmonics))  # cos/sin amplitudes (rad)
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    # -- forward -----------------------------------------------------------------------
    def slm_phase(self, phases: Tensor) -> Tensor:
        """Nominal phase → the phase the SLM really writes (a learned Fourier series)."""
        out = phases
        for h in range(len(self.lut) // 2):
            out = out + self.lut[2 * h] * torch.cos((h + 1) * phases)
            out = out + self.lut[2 * h + 1] * torch.sin((h + 1) * phases)
        return out

    def field(self, phases: Tensor) -> Tensor:
        """``[B, N]`` phases → the complex camera field ``[B, P]`` (model units)."""
        phi = self.slm_phase(phases)
        return torch.polar(torch.ones_like(phi), phi) @ self.weight.T + self.bias

    def forward(self, phases: Tensor) -> Tensor:
        field = self.field(phases)
        return (field.real**2 + field.imag**2 + self.offset) * self.scale

    def predict(self, phases: np.ndarray, batch: int = 2048) -> np.ndarray:
        with torch.no_grad():
            out = [
                self(torch.as_tensor(phases[i : i + batch], dtype=torch.float32))
                for i in range(0, len(phases), batch)
            ]
        return torch.cat(out).numpy()

    # -- fitting -----------------------------------------------------------------------
    def _features(self, codes: np.ndarray) -> Tensor:
        """exp(i·lut(φ)) per grey level, looked up: ``[M, N+1]`` with a constant last column."""
        levels = torch.as_tensor(code_phases(np.arange(PHASE_LEVELS)), dtype=torch.float32)
        with torch.no_grad():
            table = torch.polar(torch.ones(PHASE_LEVELS), self.slm_phase(levels))
        x = table[torch.as_tensor(codes, dtype=torch.long)]
        return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)

    def fit(
        self,
        codes: np.ndarray,
        images: np.ndarray,
        iterations: int = 60,
        epochs: int = 5,
        generator: torch.Generator | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        progress: Progress | None = None,
        tol: float = 1e-4,
    ) -> dict[str, float]:
        """Fit to measured pairs (SLM codes ``[M, N]`` uint8, images ``[M, P]``); warm-starts.

        Returns the final relative amplitude residual and the Pearson of the predictions.
        """
        images = np.asarray(images, dtype=np.float32)
        if not bool(self.fitted):
            self.scale.fill_(float(max(images.mean(), 1e-12)))
        x = self._features(codes)
        amplitude = torch.as_tensor(images / float(self.scale), dtype=torch.float32)
        amplitude = (amplitude - self.offset.detach()).clamp_min(0).sqrt()
        v = self._spectral_init(x, amplitude**2, progress) if not bool(self.fitted) else None
        v = self._alternate(x, amplitude, v, iterations, progress, tol)
        with torch.no_grad():
            self.weight.copy_(v[:-1].T)
            self.bias.copy_(v[-1])
            self.fitted.fill_(True)
        if epochs > 0:
            self._polish(codes, images, epochs, generator, optimizer, progress)
        return self.quality(codes, images)

    def quality(self, codes: np.ndarray, images: np.ndarray) -> dict[str, float]:
        from labpnn.control.metrics import pearson_fidelity

        pred = self.predict(code_phases(codes))
        amp_err = np.linalg.norm(np.sqrt(np.maximum(pred, 0)) - np.sqrt(np.maximum(images, 0)))
        amp_err /= max(np.linalg.norm(np.sqrt(np.maximum(images, 0))), 1e-12)
        varying = np.ptp(images, axis=1) > 0
        r = pearson_fidelity(pred[varying], np.asarray(images)[varying], flat=True)
        return {"model_residual": float(amp_err), "model_pearson": float(np.mean(r))}

    def _spectral_init(self, x: Tensor, intensity: Tensor, progress: Progress | None) -> Tensor:
        """Per pixel, the leading eigenvector of Σ_m w_m x_m x_mᴴ (power iteration)."""
        # Subtracting the mean intensity removes the isotropic part of the covariance,
        # E[(I - <I>) x xᴴ] ≈ w wᴴ, so the leading eigenvector points along w.
        weight = (intensity - intensity.mean(0)) / intensity.std(0).clamp_min(1e-12)
        weight = weight.to(x.dtype)
        gen = torch.Generator().manual_seed(0)
        v = torch.randn(x.shape[1], self.n_pixels, dtype=x.dtype, generator=gen)
        xh = x.conj().T
        n_iter = 25  # enough at 6 pairs per unknown; fewer leaves some pixels unconverged
        for i in range(n_iter):
            v = xh @ (weight * (x @ v))
            v = v / torch.linalg.vector_norm(v, dim=0, keepdim=True)
            if progress:
                progress("model: spectral start", i + 1, n_iter)
        # Scale each column to the measured mean intensity.
        power = (x @ v).abs().pow(2).mean(0)
        return v * (intensity.mean(0) / power.clamp_min(1e-12)).sqrt()

    def _alternate(
        self,
        x: Tensor,
        amplitude: Tensor,
        v: Tensor | None,
        iterations: int,
        progress: Progress | None,
        tol: float,
    ) -> Tensor:
        warm = v is None
        if warm:
            v = torch.cat([self.weight.detach().T, self.bias.detach()[None]])
        xh = x.conj().T
        gram = (xh @ x).to(torch.complex128)
        # A warm start anchors the solve to the previous model: directions the data barely
        # excite (an actor's patterns span few of them) stay where they were instead of
        # being set by noise. A fresh fit needs only a tiny ridge for numerical safety.
        anchor = (self.anchor if warm else 1e-6) * gram.diagonal().real.mean()
        chol = torch.linalg.cholesky(gram + anchor * torch.eye(len(gram), dtype=gram.dtype))
        prior = (anchor * v.to(torch.complex128)) if warm else 0.0
        norm_a = torch.linalg.vector_norm(amplitude).clamp_min(1e-12)
        previous, last = None, None
        for i in range(iterations):
            out = x @ v
            residual = float(torch.linalg.vector_norm(out.abs() - amplitude) / norm_a)
            if previous is not None and previous - residual < tol * previous:
                break
            previous = residual
            rhs = (xh @ (amplitude * torch.sgn(out))).to(torch.complex128) + prior
            solved = torch.cholesky_solve(rhs, chol).to(x.dtype)
            # Over-relaxation (momentum 0.5) halves the iterations alternating projections need.
            v = solved if last is None else solved + 0.5 * (solved - last)
            last = solved
            if progress:
                progress("model: phase retrieval", i + 1, iterations)
        return v if last is None else last

    def make_optimizer(self) -> torch.optim.Optimizer:
        """Adam for fine-tuning; the few phase-response terms need a larger step than W."""
        return torch.optim.Adam(
            [
                {"params": [self.weight, self.bias], "lr": 1e-4},
                {"params": [self.offset], "lr": 1e-3},
                {"params": [self.lut], "lr": 3e-3},
            ]
        )

    def _polish(self, codes, images, epochs, generator, optimizer, progress) -> None:
        phases = torch.as_tensor(code_phases(codes), dtype=torch.float32)
        target = torch.as_tensor(np.asarray(images) / float(self.scale), dtype=torch.float32)
        target_amp = target.clamp_min(0).sqrt()
        opt = optimizer or self.make_optimizer()
        batch = 512
        for epoch in range(epochs):
            order = torch.randperm(len(phases), generator=generator)
            for start in range(0, len(order), batch):
                idx = order[start : start + batch]
                field = self.field(phases[idx])
                pred = (field.real**2 + field.imag**2 + self.offset).clamp_min(1e-12).sqrt()
                loss = (pred - target_amp[idx]).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            if progress:
                progress("model: fine-tuning", epoch + 1, epochs)
