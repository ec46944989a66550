"""The light path of a wavefront-shaping bench: SLM grey levels -> input field -> medium -> camera field.

Everything here is a pure, seeded function of (seed, drift step); no clock, no driver.

**SLM side.** The SLM image is divided into square *cells* of ``macropixel_px`` pixels.
A flat-top beam illuminates a centred block of ``(ny + 2b) x (nx + 2b)`` cells: the inner
``ny x nx`` are the controlled *macropixels*, the ring of width ``b`` around them is the
static *reference* (Popoff et al. 2010), and everything outside the beam is not seen.
Grey level ``g`` becomes the phase ``lut[g]`` (linear 0..2π plus a small seeded smooth
nonlinearity, as a real LC panel's response), and each cell's field is the mean of
``exp(i·lut[g])`` over its pixels - what a lens imaging the SLM onto the medium averages.
A cell whose pixels all carry one grey level gets exactly ``exp(i·lut[g])``, so the
batched ``direct`` path (which starts from grey levels per cell) and the pixel path
(which starts from the displayed image) give bit-identical fields.

**Media.** ``E_out = T · E_in`` with ``T`` of shape [camera pixels, cells], normalised so
that a unit-amplitude input with any phases gives a mean speckle intensity of 1:

* :class:`IIDMedium`: a thick scattering layer, ``T ~ CN(0, 1/N)`` (optionally
  restricted to the input spatial frequencies inside a circular NA); drift is AR(1),
  ``T_{k+1} = ρ T_k + sqrt(1-ρ²) G_k``;
* :class:`FiberMedium`: ``T = B_out · diag(exp(iβ_m L)) · U · B_inᴴ`` over ``M`` guided
  modes, with random orthonormal mode bases restricted by the NA on both facets, a Haar
  unitary mode coupling ``U`` and random propagation phases; drift is a random walk of the
  modal phases. It is applied in factored form, which is cheaper than ``T`` itself.

Both drift models are parameterised by one rate: the TM correlation after ``t`` simulated
seconds is ``exp(-drift_per_s · t)``. Drift advances on a fixed grid of steps of
``drift_step_s`` with innovations seeded by the step index, so the medium at a given time
does not depend on how often, or by which path, it was looked at.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from labpnn.errors import ConfigError
from labpnn.mock_instruments.physics import parallel

# Independent random streams, each seeded by [seed, STREAM, index...].
STREAM_MEDIUM, STREAM_LUT, STREAM_DRIFT, STREAM_GLOBAL_PHASE, STREAM_NOISE = 1, 2, 3, 4, 5
# Innovations of a jump over idle time (a night between runs, ``jump_to``), keyed by the jump's
# start and end steps so that they never reuse a step's own innovation.
STREAM_JUMP = 6
# Beyond this many innovations, the AR(1) state has forgotten its past to 1e-9.
_AR1_FORGET = 1e-9


def _pair(value: Any, what: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"layout: {what} must be an integer or [ny, nx], got {value!r}") from None
    return a, b


@dataclass(frozen=True)
class SLMGeometry:
    """Which SLM pixels are macropixels, reference or dark (see the module docstring)."""

    shape: tuple[int, int]  # SLM image (rows, cols) in px
    macropixels: tuple[int, int]  # controlled (ny, nx)
    macropixel_px: int
    reference_border: int  # in cells

    @classmethod
    def from_layout(cls, layout: Mapping[str, Any], shape: tuple[int, int]) -> SLMGeometry:
        ny, nx = _pair(layout.get("macropixels", 16), "macropixels")
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
    def cells(self) -> tuple[int, int]:
        b = self.reference_border
        return self.macropixels[0] + 2 * b, self.macropixels[1] + 2 * b

    @property
    def n_cells(self) -> int:
        return self.cells[0] * self.cells[1]

    @property
    def origin(self) -> tuple[int, int]:
        """Top-left SLM pixel (row, col) of the illuminated block."""
        cy, cx = self.cells
        p = self.macropixel_px
        return (self.shape[0] - cy * p) // 2, (self.shape[1] - cx * p) // 2

    @property
    def active_mask(self) -> np.ndarray:
        """bool [cells_y, cells_x]: True on the controlled macropixels."""
        mask = np.zeros(self.cells, dtype=bool)
        b = self.reference_border
        mask[b : b + self.macropixels[0], b : b + self.macropixels[1]] = True
        return mask

    def input_field(self, grey: np.ndarray, phasor: np.ndarray) -> np.ndarray:
        """complex [n_cells]: the field each cell sends into the medium.

        A cell whose pixels share one grey level gets exactly ``phasor[g]`` (checked with
        one comparison against the block-expanded first pixels, the common case);
        otherwise the mean of its pixels' phasors.
        """
        (oy, ox), (cy, cx), p = self.origin, self.cells, self.macropixel_px
        crop = np.asarray(grey)[oy : oy + cy * p, ox : ox + cx * p]
        first = crop[::p, ::p]
        if np.array_equal(np.repeat(np.repeat(first, p, axis=0), p, axis=1), crop):
            return phasor[first].reshape(-1)
        blocks = crop.reshape(cy, p, cx, p)
        uniform = (blocks == first[:, None, :, None]).all(axis=(1, 3))
        mean = phasor[blocks].mean(axis=(1, 3))
        return np.where(uniform, phasor[first], mean).reshape(-1)


def slm_phase_lut(seed: int, nonlinearity_rad: float) -> np.ndarray:
    """float [256]: the phase (rad) each grey level really produces.

    Linear 0..2π(1 - 1/256) plus two seeded harmonics of total amplitude up to
    ``nonlinearity_rad``; monotonic for amplitudes below 1/3 rad.
    """
    g = np.arange(256) / 256.0
    rng = np.random.default_rng([seed, STREAM_LUT])
    a1, a2 = rng.uniform(-1.0, 1.0, 2) * nonlinearity_rad / 2
    t1, t2 = rng.uniform(0.0, 2 * np.pi, 2)
    return 2 * np.pi * g + a1 * np.sin(2 * np.pi * g + t1) + a2 * np.sin(4 * np.pi * g + t2)


def _complex_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """CN(0, 1) samples, filled in one contiguous pass."""
    z = rng.standard_normal((*shape, 2)).view(np.complex128)[..., 0]
    z *= math.sqrt(0.5)
    return z


def pupil_modes(grid: tuple[int, int], radius: float) -> np.ndarray:
    """complex [n_pix, n_k]: the orthonormal plane waves inside a circular pupil.

    ``radius`` is in units of the grid's Nyquist frequency (1.0 touches the edges).
    """
    gy, gx = grid
    ky, kx = np.fft.fftfreq(gy), np.fft.fftfreq(gx)
    kyy, kxx = np.meshgrid(ky, kx, indexing="ij")
    inside = (kyy / 0.5) ** 2 + (kxx / 0.5) ** 2 <= radius**2 + 1e-12
    yy, xx = np.meshgrid(np.arange(gy), np.arange(gx), indexing="ij")
    phase = np.outer(yy.ravel(), kyy[inside]) + np.outer(xx.ravel(), kxx[inside])
    return np.exp(2j * np.pi * phase) / math.sqrt(gy * gx)


def radius_for_modes(grid: tuple[int, int], n_modes: int) -> float:
    """The smallest pupil radius (Nyquist units) holding at least ``n_modes`` plane waves."""
    gy, gx = grid
    ky, kx = np.meshgrid(np.fft.fftfreq(gy) / 0.5, np.fft.fftfreq(gx) / 0.5, indexing="ij")
    radii = np.sort(np.sqrt(ky**2 + kx**2).ravel())
    if n_modes > radii.size:
        raise ConfigError(f"simulation: {n_modes} modes exceed the {gy}x{gx} grid's {radii.size}")
    return float(radii[n_modes - 1])


def _random_isometry(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    q, r = np.linalg.qr(_complex_normal(rng, (rows, cols)))
    return q * (np.diagonal(r) / np.abs(np.diagonal(r)))  # Haar-distributed


class _SplitInput:
    """Input-side bookkeeping shared by both media.

    The input is split into the macropixels (``act``, [K, n_act]) and the reference
    (``ref``). A reference given as [K, 1] means "every reference cell carries this
    field", the usual static border: it then enters as one extra input whose matrix row
    is the reference rows' sum, so a frame costs one [K, n_act + 1] product and a single
    frame streams only the macropixel part of the matrix from memory.
    """

    def _split(self, full_rows: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(macropixel rows + reference sum row [n_act + 1, n], reference rows [n_ref, n])."""
        ref = np.ascontiguousarray(full_rows[~active])
        act_ext = np.concatenate([full_rows[active], ref.sum(axis=0, keepdims=True)])
        return act_ext, ref

    @staticmethod
    def _mix(act_in: np.ndarray, ref_in: np.ndarray, act_ext: np.ndarray, ref_rows) -> np.ndarray:
        if ref_in.shape[1] == 1:
            return np.concatenate([act_in, ref_in], axis=1) @ act_ext
        return act_in @ act_ext[:-1] + ref_in @ ref_rows

    def _join(self, act_ext: np.ndarray, ref_rows: np.ndarray) -> np.ndarray:
        full = np.empty((self.active.size, act_ext.shape[1]), dtype=act_ext.dtype)
        full[self.active], full[~self.active] = act_ext[:-1], ref_rows
        return full


class IIDMedium(_SplitInput):
    """A thick scattering layer: i.i.d. complex Gaussian TM with AR(1) drift.

    Draws come in fixed row blocks, each from its own stream, so they can be filled by
    parallel threads and still give the same matrix on any machine.
    """

    kind = "iid"
    BLOCKS = 4

    def __init__(self, n_pix: int, cells: tuple[int, int], seed: int, active: np.ndarray, na=1.0):
        self.seed, self.step, self.n_pix = int(seed), 0, int(n_pix)
        self.active = np.asarray(active, dtype=bool).reshape(-1)
        n_cells = cells[0] * cells[1]
        self._project = None
        self._scale = 1.0 / math.sqrt(n_cells)
        if na < 1.0:
            modes = pupil_modes(cells, na)
            self._project = modes @ modes.conj().T  # hermitian projector on the NA
            self._scale = 1.0 / math.sqrt(modes.shape[1])
        self._set(self._draw([self.seed, STREAM_MEDIUM]))

    def _blocks(self, n_rows: int) -> list[slice]:
        bounds = np.linspace(0, n_rows, self.BLOCKS + 1).astype(int)
        return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]

    def _update(self, rows: np.ndarray, key: list[int], rho: float, c: float) -> None:
        """``rows = rho·rows + c·G`` in place, G ~ CN(0, scale²) from ``default_rng(key)``."""
        g = _complex_normal(np.random.default_rng(key), rows.shape)
        g *= c * self._scale
        if rho:
            rows *= rho
            rows += g
        else:
            rows[...] = g

    def _draw(self, key: list[int]) -> np.ndarray:
        """[n_cells, n_pix]: rows are the cells' speckle patterns, E|T|² = 1/N."""
        rows = np.empty((self.active.size, self.n_pix), dtype=np.complex128)
        parallel.run(
            [
                lambda i=i, sl=sl: self._update(rows[sl], [*key, i], 0.0, 1.0)
                for i, sl in enumerate(self._blocks(len(rows)))
            ]
        )
        return self._project.T @ rows if self._project is not None else rows

    def _set(self, rows: np.ndarray) -> None:
        self._act, self._ref = self._split(rows, self.active)

    def _innovate(self, key: list[int], rho: float, c: float) -> None:
        """One AR(1) step, in place on the macropixel and reference blocks."""
        if self._project is not None:  # the innovation must be projected as a whole
            self._set(rho * self._join(self._act, self._ref) + c * self._draw(key))
            return
        jobs = []
        for offset, part in ((0, self._act[:-1]), (self.BLOCKS, self._ref)):
            for i, sl in enumerate(self._blocks(len(part))):
                jobs.append(lambda p=part[sl], k=offset + i: self._update(p, [*key, k], rho, c))
        parallel.run(jobs)
        self._act[-1] = self._ref.sum(axis=0)

    @property
    def tm(self) -> np.ndarray:
        """complex [n_pix, n_cells] at the current drift step."""
        return self._join(self._act, self._ref).T

    def propagate(self, act: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """Macropixel fields [K, n_act] and reference [K, n_ref or 1] -> camera field [K, n_pix]."""
        return self._mix(act, ref, self._act, self._ref)

    def advance_to(self, step: int, drift_per_step: float) -> None:
        if step <= self.step:
            return
        if drift_per_step <= 0:
            self.step = step
            return
        rho = math.exp(-drift_per_step)
        n_forget = math.ceil(math.log(_AR1_FORGET) / math.log(rho))
        if step - self.step > n_forget:  # the old state no longer matters
            self.step = step - n_forget
            self._set(self._draw([self.seed, STREAM_DRIFT, self.step]))
        c = math.sqrt(1.0 - rho * rho)
        while self.step < step:
            self.step += 1
            self._innovate([self.seed, STREAM_DRIFT, self.step], rho, c)

    def jump_to(self, step: int, drift_per_step: float) -> None:
        """Advance to ``step`` in one exact AR(1) jump, ``ρ^Δ T + sqrt(1-ρ^{2Δ}) G``: the same
        distribution as ``advance_to`` at the cost of one innovation, for idle time between runs."""
        if step <= self.step:
            return
        if drift_per_step > 0:
            rho = math.exp(-drift_per_step * (step - self.step))
            self._innovate([self.seed, STREAM_JUMP, self.step, step], rho, math.sqrt(1 - rho * rho))
        self.step = step

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "tm": self.tm.copy()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.step = int(state["step"])
        self._set(np.asarray(state["tm"], dtype=np.complex128).T)


class FiberMedium(_SplitInput):
    """A multimode fibre: ``B_out · diag(exp(iβL)) · U · B_inᴴ`` with modal-phase drift."""

    kind = "fiber"

    def __init__(
        self,
        pix_grid: tuple[int, int],
        cells: tuple[int, int],
        n_modes: int,
        seed: int,
        active: np.ndarray,
        na: float | None = None,
    ):
        self.seed, self.step = int(seed), 0
        self.active = np.asarray(active, dtype=bool).reshape(-1)
        n_cells, n_pix = cells[0] * cells[1], pix_grid[0] * pix_grid[1]
        if n_modes > min(n_cells, n_pix):
            raise ConfigError(
                f"simulation: modes={n_modes} exceeds the {n_cells} SLM cells or the "
                f"{n_pix} camera pixels the fibre is imaged onto"
            )
        rng = np.random.default_rng([self.seed, STREAM_MEDIUM])
        # Each facet carries a few more plane waves than guided modes (the fibre's NA).
        r_in = na if na is not None else radius_for_modes(cells, min(n_cells, int(1.3 * n_modes)))
        r_out = radius_for_modes(pix_grid, min(n_pix, int(1.3 * n_modes)))
        b_in, b_out = pupil_modes(cells, r_in), pupil_modes(pix_grid, r_out)
        if b_in.shape[1] < n_modes:
            raise ConfigError(
                f"simulation: na={na} passes only {b_in.shape[1]} input plane waves, "
                f"fewer than modes={n_modes}"
            )
        b_in = b_in @ _random_isometry(rng, b_in.shape[1], n_modes)  # [n_cells, M]
        b_out = b_out @ _random_isometry(rng, b_out.shape[1], n_modes)  # [n_pix, M]
        coupling = _random_isometry(rng, n_modes, n_modes)
        in_rows = (coupling @ b_in.conj().T).T  # [n_cells, M]: U · B_inᴴ, one row per cell
        self._in_act, self._in_ref = self._split(in_rows, self.active)
        self._outT = np.ascontiguousarray(b_out.T) * math.sqrt(n_pix / n_modes)  # [M, n_pix]
        self.phase = rng.uniform(0.0, 2 * np.pi, n_modes)  # β_m L, drifting

    @property
    def tm(self) -> np.ndarray:
        """complex [n_pix, n_cells] at the current drift step."""
        rows = self._join(self._in_act, self._in_ref) * np.exp(1j * self.phase)
        return (rows @ self._outT).T

    def propagate(self, act: np.ndarray, ref: np.ndarray) -> np.ndarray:
        modes = self._mix(act, ref, self._in_act, self._in_ref)
        return (modes * np.exp(1j * self.phase)) @ self._outT

    def advance_to(self, step: int, drift_per_step: float) -> None:
        if step <= self.step:
            return
        if drift_per_step <= 0:
            self.step = step
            return
        sigma = math.sqrt(2.0 * drift_per_step)  # <exp(iΔφ)> = exp(-drift_per_step)
        while self.step < step:
            self.step += 1
            rng = np.random.default_rng([self.seed, STREAM_DRIFT, self.step])
            self.phase = self.phase + sigma * rng.standard_normal(self.phase.size)

    def jump_to(self, step: int, drift_per_step: float) -> None:
        """Advance to ``step`` in one draw: the modal phases' random walk over ``Δ`` steps is
        Gaussian with ``Δ`` times one step's variance."""
        if step <= self.step:
            return
        if drift_per_step > 0:
            sigma = math.sqrt(2.0 * drift_per_step * (step - self.step))
            rng = np.random.default_rng([self.seed, STREAM_JUMP, self.step, step])
            self.phase = self.phase + sigma * rng.standard_normal(self.phase.size)
        self.step = step

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "phase": self.phase.copy()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.step = int(state["step"])
        self.phase = np.asarray(state["phase"], dtype=np.float64).copy()


class GlobalPhaseDrift:
    """A slow random walk of the phase between the signal and the reference arm.

    ``rms_per_sqrt_s`` is the RMS phase change (rad) after one simulated second; it grows
    as the square root of time.
    """

    def __init__(self, seed: int):
        self.seed, self.step, self.phase = int(seed), 0, 0.0

    def advance_to(self, step: int, rms_per_step: float) -> None:
        if rms_per_step <= 0:
            self.step = max(self.step, step)
            return
        while self.step < step:
            self.step += 1
            rng = np.random.default_rng([self.seed, STREAM_GLOBAL_PHASE, self.step])
            self.phase += rms_per_step * float(rng.standard_normal())

    def jump_to(self, step: int, rms_per_step: float) -> None:
        """Advance to ``step`` in one draw (the walk's variance grows with the steps)."""
        if step <= self.step:
            return
        if rms_per_step > 0:
            rng = np.random.default_rng(
                [self.seed, STREAM_GLOBAL_PHASE, STREAM_JUMP, self.step, step]
            )
            self.phase += rms_per_step * math.sqrt(step - self.step) * float(rng.standard_normal())
        self.step = step

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "phase": self.phase}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.step, self.phase = int(state["step"]), float(state["phase"])


def make_medium(
    kind: str,
    seed: int,
    pix_grid: tuple[int, int],
    cells: tuple[int, int],
    active: np.ndarray,
    modes: int = 300,
    na: float | None = None,
) -> IIDMedium | FiberMedium:
    """The medium a simulation config asks for, over ``pix_grid`` (rows, cols) camera pixels."""
    if kind == "iid":
        return IIDMedium(pix_grid[0] * pix_grid[1], cells, seed, active, 1.0 if na is None else na)
    if kind in ("fiber", "fibre"):
        return FiberMedium(pix_grid, cells, modes, seed, active, na)
    raise ConfigError(f"simulation: medium '{kind}' is not one of iid, fiber")
