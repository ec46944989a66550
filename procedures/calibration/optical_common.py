"""What the optical calibrations share: exposure control, dark level, blocked SLM cells."""

from __future__ import annotations

from typing import Any

import numpy as np


def probe_patterns(bench: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 2 * np.pi, size=(n, *bench.macropixels))


def auto_expose(
    procedure: Any,
    bench: Any,
    frames_for: Any,
    ceiling: float = 0.85,
    max_steps: int = 20,
) -> float:
    """Lower (or raise) the exposure until the brightest pixel sits below ``ceiling``.

    ``frames_for()`` acquires the frames to judge by. Each change is logged, so a
    saturation retry is recorded in the run file. Returns the exposure in seconds.
    """
    camera = bench.camera
    full = bench.full_scale
    for _step in range(max_steps):
        peak = float(np.max(frames_for()))
        if peak >= ceiling * full:
            new = camera.exposure_s * 0.6 * ceiling * full / max(peak, 1.0)
            lo, _hi = camera.effective_range("exposure_s") or (0.0, np.inf)
            if new < lo:
                procedure.log.warning(
                    "saturation persists at the shortest allowed exposure %.3g s", lo
                )
                camera.exposure_s = lo
                return lo
            procedure.log.info(
                "saturation (peak %.0f of %d ADU): exposure %.4g s -> %.4g s",
                peak, full, camera.exposure_s, new,
            )  # fmt: skip
            camera.exposure_s = new
        elif peak < 0.3 * ceiling * full:
            lo, hi = camera.effective_range("exposure_s") or (0.0, np.inf)
            new = min(hi, camera.exposure_s * 0.8 * ceiling * full / max(peak, 1.0))
            if new <= camera.exposure_s * 1.01:
                return camera.exposure_s
            procedure.log.info("dim (peak %.0f ADU): exposure -> %.4g s", peak, new)
            camera.exposure_s = new
        else:
            return camera.exposure_s
    return camera.exposure_s


def dark_by_extrapolation(bench: Any, phases: np.ndarray, exposures: list[float]) -> np.ndarray:
    """Per-pixel dark level without a shutter: fit ADU against exposure, take the intercept.

    The same patterns are shown at each exposure, so the light term is proportional
    to the exposure and the intercept is the black level (plus dark current at zero
    exposure), which is what must be subtracted before comparing intensities.
    """
    camera = bench.camera
    keep = camera.exposure_s
    means = []
    try:
        for exposure in exposures:
            camera.exposure_s = exposure
            means.append(bench.acquire(phases).mean(axis=0))
    finally:
        camera.exposure_s = keep
    x = np.asarray(exposures)
    y = np.stack(means)  # [n_exposures, h, w]
    slope = ((x - x.mean())[:, None, None] * (y - y.mean(axis=0))).sum(axis=0) / np.sum(
        (x - x.mean()) ** 2
    )
    return y.mean(axis=0) - slope * x.mean()


def blocked_image(bench: Any, cell_phases: np.ndarray, blocked: np.ndarray) -> np.ndarray:
    """uint8 SLM image: cell phases, with ``blocked`` cells carrying a pixel checkerboard.

    A 0/π checkerboard inside a cell diffracts its light out of the imaging aperture,
    so the cell contributes (almost) no field: the phase-only way to switch light off,
    used to remove the reference during focusing and to disable unused modes.
    """
    layout, slm = bench.layout, bench.slm
    image = layout.slm_image(slm.phase_to_grey(cell_phases))
    px = layout.macropixel_px
    r0, c0 = layout.origin
    zero, half = (int(v) for v in slm.phase_to_grey(np.array([0.0, np.pi])))
    yy, xx = np.indices((px, px))
    checker = np.where((yy + xx) % 2 == 0, zero, half).astype(image.dtype)
    for cy, cx in zip(*np.nonzero(blocked)):
        image[r0 + cy * px : r0 + (cy + 1) * px, c0 + cx * px : c0 + (cx + 1) * px] = checker
    return image


def group_blocks(macropixels: tuple[int, int], n_modes: int) -> np.ndarray:
    """int [ny, nx]: which of ``n_modes`` square blocks each macropixel belongs to."""
    ny, nx = macropixels
    for k in range(1, min(ny, nx) + 1):
        if ny % k == 0 and nx % k == 0 and (ny // k) * (nx // k) == n_modes:
            rows, cols = np.indices((ny, nx))
            return (rows // k) * (nx // k) + cols // k
    raise ValueError(
        f"n_modes={n_modes} does not tile the {ny}x{nx} macropixels into square blocks "
        f"(try {', '.join(str((ny // k) * (nx // k)) for k in (1, 2, 4) if ny % k == 0 and nx % k == 0)})"
    )


def raw_frame_attrs(bench: Any, what: str) -> dict[str, Any]:
    """Attributes of a stream of raw camera frames (``RunWriter.append_frames(**attrs)``)."""
    x, y, w, h = (int(v) for v in bench.camera.roi)
    return {
        "unit": "ADU (camera counts)",
        "description": f"{what}: raw counts of the camera ROI, {h} x {w} pixels (not pooled, "
        "dark level not removed); the exposure of each frame is in the dataset of the same "
        "name plus _exposure_s",
        "roi": [x, y, w, h],
        "roi_order": "x, y, width, height in sensor pixels",
        "full_scale_adu": int(bench.full_scale),
    }
