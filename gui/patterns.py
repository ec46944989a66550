"""SLM test patterns for alignment: flat, blazed grating, spot and checkerboard.

All return a phase image in radians, in [0, 2π). Alignment needs patterns whose
effect on the camera is obvious: a grating shifts the beam by a known angle, a spot
(a lens-like phase ring) shows where the SLM's centre is, a checkerboard scatters
light out of the zero order and reveals dead or misaddressed regions.
"""

from __future__ import annotations

import numpy as np

TWO_PI = 2 * np.pi
PATTERNS = ("flat", "grating", "spot", "checkerboard")


def flat(shape: tuple[int, int], level: float = 0.0) -> np.ndarray:
    return np.full(shape, level % TWO_PI)


def grating(shape: tuple[int, int], period_px: float = 8.0, angle_deg: float = 0.0) -> np.ndarray:
    """A blazed grating: the phase ramps 0..2π over ``period_px`` along ``angle_deg``."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    a = np.deg2rad(angle_deg)
    ramp = (x * np.cos(a) + y * np.sin(a)) / max(period_px, 1e-6)
    return (TWO_PI * ramp) % TWO_PI


def spot(shape: tuple[int, int], radius_px: float = 16.0, level: float = np.pi) -> np.ndarray:
    """A disc of phase ``level`` centred on the SLM, the rest at 0."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    disc = (x - (w - 1) / 2) ** 2 + (y - (h - 1) / 2) ** 2 <= radius_px**2
    return np.where(disc, level % TWO_PI, 0.0)


def checkerboard(shape: tuple[int, int], square_px: int = 8, level: float = np.pi) -> np.ndarray:
    h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    board = ((x // max(1, square_px)) + (y // max(1, square_px))) % 2
    return board * (level % TWO_PI)


def make(name: str, shape: tuple[int, int], size: float, level: float, angle_deg: float = 0.0):
    """One pattern by name; ``size`` is the period, radius or square side in pixels."""
    if name == "flat":
        return flat(shape, level)
    if name == "grating":
        return grating(shape, size, angle_deg)
    if name == "spot":
        return spot(shape, size, level)
    if name == "checkerboard":
        return checkerboard(shape, int(size), level)
    raise ValueError(f"unknown test pattern '{name}' (known: {', '.join(PATTERNS)})")


def to_grey(phase: np.ndarray, levels: int = 256) -> np.ndarray:
    """Phase in radians to grey levels 0..levels-1 with a linear LUT (2π -> levels)."""
    grey = np.floor(np.mod(phase, TWO_PI) / TWO_PI * levels).astype(np.int64) % levels
    return grey.astype(np.uint8 if levels <= 256 else np.uint16)
