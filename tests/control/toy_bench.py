"""A plain numpy stand-in for the optical bench, for unit tests of the control library.

Phase-only SLM field on N macropixels → i.i.d. complex Gaussian TM (CN(0, 1/N)) → camera
intensity on the target pixels, with an optional static reference field, a slightly
nonlinear SLM phase response, shot and read noise, a 12-bit ADC and saturation, and an
AR(1) drift of the TM that tests switch on.
"""

from __future__ import annotations

import numpy as np


class ToySpeckleBench:
    def __init__(
        self,
        n_macropixels: int = 1024,
        shape: tuple[int, int] = (16, 16),
        seed: int = 0,
        reference_power: float = 0.0,
        mean_e: float = 1500.0,
        read_e: float = 5.0,
        full_well_e: float = 10_000.0,
        bits: int = 12,
        lut_nonlinearity_rad: float = 0.0,
        noise: bool = True,
    ):
        self.rng = np.random.default_rng(seed)
        self.n_in, self.shape = n_macropixels, tuple(shape)
        self.n_out = shape[0] * shape[1]
        self.tm = self._draw()
        self.reference = np.sqrt(reference_power) * self._draw()[:, 0] * np.sqrt(n_macropixels)
        self.mean_e, self.read_e, self.full_well_e, self.bits = mean_e, read_e, full_well_e, bits
        self.lut_nonlinearity_rad = lut_nonlinearity_rad
        self.noise = noise
        self.queries = 0

    def _draw(self) -> np.ndarray:
        z = self.rng.standard_normal((self.n_out, self.n_in, 2)) @ [1, 1j]
        return z / np.sqrt(2 * self.n_in)

    def slm_phase(self, phases: np.ndarray) -> np.ndarray:
        codes = np.round(np.mod(phases, 2 * np.pi) / (2 * np.pi) * 256) % 256
        phi = codes * 2 * np.pi / 256
        return phi + self.lut_nonlinearity_rad * np.sin(phi + 0.3)

    def intensity(self, phases: np.ndarray) -> np.ndarray:
        """Noiseless intensity in units of the mean speckle (what the physics gives)."""
        field = np.exp(1j * self.slm_phase(np.atleast_2d(phases))) @ self.tm.T + self.reference
        return np.abs(field) ** 2

    def measure(self, phases: np.ndarray) -> np.ndarray:
        """Camera frames in ADU, ``[B, pixels]``."""
        e = self.intensity(phases) * self.mean_e
        if self.noise:
            e = e + np.sqrt(e + self.read_e**2) * self.rng.standard_normal(e.shape)
        e = np.clip(e, 0.0, self.full_well_e)
        self.queries += len(e)
        return np.floor(e * (2**self.bits - 1) / self.full_well_e + 0.5)

    __call__ = measure

    def drift(self, correlation: float) -> None:
        """AR(1) step: the new TM correlates with the old one by ``correlation``."""
        c = float(correlation)
        self.tm = c * self.tm + np.sqrt(1 - c * c) * self._draw()
