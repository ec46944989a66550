"""Where the macropixels and the reference border sit on the SLM, from ``bench.layout``.

The SLM image is divided into square cells of ``macropixel_px`` pixels. A centred block
of ``(ny + 2b) x (nx + 2b)`` cells is illuminated: the inner ``ny x nx`` cells are the
controlled macropixels (row-major, the order of a PhysicalLayer input), the ring of
``b = reference_border`` cells around them is the static reference used by phase
stepping (Popoff et al. 2010), and the pixels outside the beam are shown at phase 0.

Layout keys: ``macropixels`` ([ny, nx] or n), ``reference_border`` (cells; default a
quarter of the larger side), ``macropixel_px`` (default: the largest that fits).
The simulated world derives the same geometry from the same keys (its own copy, since
mocks and benches must not import each other); a test checks that they agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from labpnn.errors import ConfigError


@dataclass(frozen=True)
class MacropixelLayout:
    shape: tuple[int, int]  # SLM image (rows, cols) px
    macropixels: tuple[int, int]  # (ny, nx)
    macropixel_px: int
    reference_border: int

    @classmethod
    def from_layout(cls, layout: Mapping[str, Any], shape: tuple[int, int]) -> MacropixelLayout:
        raw = layout.get("macropixels", 16)
        ny, nx = (int(raw), int(raw)) if isinstance(raw, int) else (int(v) for v in raw)
        border = layout.get("reference_border")
        border = max(1, round(max(ny, nx) / 4)) if border is None else int(border)
        cy, cx = ny + 2 * border, nx + 2 * border
        px = layout.get("macropixel_px") or min(shape[0] // cy, shape[1] // cx)
        if px < 1 or cy * px > shape[0] or cx * px > shape[1]:
            raise ConfigError(
                f"layout: {ny}x{nx} macropixels with a {border}-macropixel reference border "
                f"do not fit on the {shape[1]}x{shape[0]} px SLM at {px} px per macropixel"
            )
        return cls((int(shape[0]), int(shape[1])), (ny, nx), int(px), border)

    @property
    def n_macropixels(self) -> int:
        return self.macropixels[0] * self.macropixels[1]

    @property
    def cells(self) -> tuple[int, int]:
        b = self.reference_border
        return self.macropixels[0] + 2 * b, self.macropixels[1] + 2 * b

    @property
    def origin(self) -> tuple[int, int]:
        """Top-left SLM pixel (row, col) of the illuminated block."""
        p = self.macropixel_px
        return (self.shape[0] - self.cells[0] * p) // 2, (self.shape[1] - self.cells[1] * p) // 2

    @property
    def active_mask(self) -> np.ndarray:
        """bool [cells]: True on the macropixels."""
        mask = np.zeros(self.cells, dtype=bool)
        b = self.reference_border
        mask[b : b + self.macropixels[0], b : b + self.macropixels[1]] = True
        return mask

    @property
    def reference_mask(self) -> np.ndarray:
        """bool [cells]: True on the reference border."""
        return ~self.active_mask

    def cell_values(self, macropixels: np.ndarray, reference: Any) -> np.ndarray:
        """[..., cells_y, cells_x]: macropixel values [..., ny, nx] framed by the reference."""
        values = np.asarray(macropixels)
        ref = np.asarray(reference, dtype=values.dtype)
        lead = values.shape[:-2]
        out = np.empty((*lead, *self.cells), dtype=values.dtype)
        out[...] = ref.reshape(ref.shape + (1, 1)) if ref.ndim else ref
        b = self.reference_border
        out[..., b : b + self.macropixels[0], b : b + self.macropixels[1]] = values
        return out

    def macropixel_values(self, cells: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`cell_values`: [..., ny, nx] from [..., cells_y, cells_x]."""
        b = self.reference_border
        return np.asarray(cells)[..., b : b + self.macropixels[0], b : b + self.macropixels[1]]

    def slm_image(self, cells: np.ndarray, outside: Any = 0) -> np.ndarray:
        """Full-resolution SLM image [rows, cols] from one value per cell."""
        cells = np.asarray(cells)
        p, (oy, ox) = self.macropixel_px, self.origin
        image = np.full(self.shape, outside, dtype=cells.dtype)
        block = np.repeat(np.repeat(cells, p, axis=0), p, axis=1)
        image[oy : oy + block.shape[0], ox : ox + block.shape[1]] = block
        return image
