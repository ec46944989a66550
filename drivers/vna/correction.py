"""Applying a scikit-rf calibration to raw VNA traces.

The driver keeps raw data raw and corrects them here, so a bench that gets raw data another
way (a simulator's direct path) applies exactly the same correction. The calibration must
have been taken on the sweep's frequency grid; anything else is refused, since correcting
with error terms from other frequencies silently gives wrong data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labpnn.errors import BadInput

S_PARAMETERS = ("S11", "S21", "S12", "S22")


def calibration_ports(calibration: Any) -> int:
    """1 for a one-port scikit-rf calibration, 2 for SOLT/TwelveTerm/..., 0 if unknown.

    Read from the error terms, so it also works for calibrations rebuilt from stored
    coefficients (``Calibration.from_coefs``), which have no measured standards.
    """
    try:
        keys = set(calibration.coefs)
    except Exception:  # not a scikit-rf calibration, or one that cannot be solved
        return 0
    if "forward directivity" in keys:
        return 2
    return 1 if "directivity" in keys else 0


class CalibrationCorrection:
    """Mixin: ``apply_calibration`` and ``correct``; the host provides ``label``,
    ``frequencies_hz()`` and ``_traces``."""

    label: str
    _calibration: Any = None
    _calibration_port: int = 1

    def apply_calibration(self, calibration: Any, port: int = 1) -> None:
        """Correct later sweeps with a scikit-rf calibration (``None`` switches it off).

        A one-port calibration (``skrf.calibration.OnePort``) corrects ``S<port><port>``; a
        two-port one (``SOLT``, ``TwelveTerm``...) corrects all four, which must be traces.
        """
        if calibration is not None and calibration_ports(calibration) not in (1, 2):
            raise BadInput(f"{self.label}: not a 1- or 2-port scikit-rf calibration")
        self._calibration, self._calibration_port = calibration, int(port)

    @property
    def calibration(self) -> Any:
        return self._calibration

    def correct(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Apply the calibration set with :meth:`apply_calibration` to raw trace arrays
        (``{"S21": complex[points], ...}`` on the current sweep grid); used by sweeps and by
        benches that obtain raw data another way (a simulator's direct path)."""
        cal = self._calibration
        if cal is None:
            return data
        import skrf

        f = self.frequencies_hz()
        cal_f = np.asarray(cal.frequency.f, dtype=float)
        if len(cal_f) != len(f) or not np.allclose(cal_f, f, rtol=1e-9, atol=0.0):
            raise BadInput(
                f"{self.label}: the calibration was taken on {len(cal_f)} points "
                f"{cal_f[0]:g}..{cal_f[-1]:g} Hz, the sweep has {len(f)} points "
                f"{f[0]:g}..{f[-1]:g} Hz; recalibrate or restore the sweep"
            )
        freq = skrf.Frequency.from_f(f, unit="Hz")
        if calibration_ports(cal) == 1:
            param = f"S{self._calibration_port}{self._calibration_port}"
            if param not in data:
                raise BadInput(f"{self.label}: a one-port calibration needs the {param} trace")
            raw = skrf.Network(frequency=freq, s=data[param][:, None, None])
            return {**data, param: cal.apply_cal(raw).s[:, 0, 0]}
        missing = [p for p in S_PARAMETERS if p not in data]
        if missing:
            raise BadInput(
                f"{self.label}: a two-port calibration needs all four S-parameter traces; "
                f"missing {', '.join(missing)}"
            )
        s = np.empty((len(f), 2, 2), dtype=complex)
        for p in S_PARAMETERS:
            s[:, int(p[1]) - 1, int(p[2]) - 1] = data[p]
        corrected = cal.apply_cal(skrf.Network(frequency=freq, s=s)).s
        return {p: corrected[:, int(p[1]) - 1, int(p[2]) - 1] for p in self._traces}
