"""A camera sensor: mean electrons in, digital numbers out.

Per pixel: signal + dark electrons -> shot noise -> read noise -> clip at the full well
-> gain -> black level -> round to an integer ADU -> clip at ``2**bits - 1``.

* At gain 0 dB the full well maps to full scale, so 8-, 12- and 16-bit formats differ only
  in quantisation step; gain multiplies by ``10**(gain_db / 20)`` and saturates earlier.
* Shot noise is Poisson on electrons. Below 100 e it is sampled exactly; above, by its
  normal limit (same mean and variance; skewness < 0.1), which is ~4x cheaper and keeps
  long simulated studies dominated by the optics, not by the random number generator.
* The noise of frame ``i`` comes from ``default_rng([seed, 5, i])``, so a frame is the same
  whether it was computed alone (the driver path) or in a batch (the ``direct`` path).
  Arrays are [frames, ...]; the arithmetic is vectorised over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labpnn.mock_instruments.physics import parallel
from labpnn.mock_instruments.physics.optics import STREAM_NOISE

POISSON_EXACT_BELOW_E = 100.0


@dataclass
class SensorModel:
    seed: int = 0
    full_well_e: float = 10_000.0
    read_e: float = 5.0
    shot: bool = True
    dark_e_per_s: float = 0.0
    black_level_adu: float = 0.0

    def adu_per_electron(self, bits: int, gain_db: float) -> float:
        return (2**bits - 1) / self.full_well_e * 10 ** (gain_db / 20)

    @property
    def noiseless(self) -> bool:
        return not self.shot and self.read_e == 0

    def electrons(self, mean_e: np.ndarray, first_index: int) -> np.ndarray:
        """Detected electrons (noisy, clipped at the full well) for frames [B, ...].

        Frame ``b`` draws its noise from its own generator, seeded by ``first_index + b``,
        and every operation is elementwise, so a frame's values do not depend on the
        batch it was computed in. Large batches are split over threads (numpy releases
        the GIL while it fills random arrays and runs ufuncs), which gives the same
        numbers as one thread.
        """
        e = np.maximum(np.asarray(mean_e, dtype=np.float64), 0.0)
        if self.noiseless:
            return np.minimum(e, self.full_well_e, out=e)
        if len(e) < 8:
            return self._noisy(e, first_index)
        bounds = np.linspace(0, len(e), parallel.workers() + 1).astype(int)
        jobs = [
            lambda a=a, b=b: self._noisy(e[a:b], first_index + a)
            for a, b in zip(bounds[:-1], bounds[1:])
            if b > a
        ]
        return np.concatenate(parallel.run(jobs))

    def _noisy(self, e: np.ndarray, first_index: int) -> np.ndarray:
        z = np.empty_like(e)
        exact: list[tuple[int, np.ndarray, np.ndarray]] = []
        for b in range(len(e)):
            rng = np.random.default_rng([self.seed, STREAM_NOISE, first_index + b])
            rng.standard_normal(out=z[b])
            if self.shot:
                low = e[b] < POISSON_EXACT_BELOW_E
                if low.any():
                    exact.append((b, low, rng.poisson(e[b][low])))
        if self.shot:
            noisy = e + self.read_e**2
            np.sqrt(noisy, out=noisy)
            noisy *= z
            noisy += e
            for b, low, counts in exact:
                noisy[b][low] = counts + self.read_e * z[b][low]
        else:
            noisy = z
            noisy *= self.read_e
            noisy += e
        return np.clip(noisy, 0.0, self.full_well_e, out=noisy)

    def digitize(
        self,
        mean_e: np.ndarray,
        first_index: int,
        exposure_s: float,
        bits: int,
        gain_db: float,
    ) -> np.ndarray:
        """float [B, ...] of integer ADU values for frames ``first_index ...``."""
        if self.dark_e_per_s:
            mean_e = np.asarray(mean_e) + self.dark_e_per_s * exposure_s
        adu = self.electrons(mean_e, first_index)
        adu *= self.adu_per_electron(bits, gain_db)
        adu += self.black_level_adu + 0.5
        np.floor(adu, out=adu)
        return np.clip(adu, 0.0, 2**bits - 1, out=adu)
