"""What the optical calibrations share: exposure control, dark level, blocked SLM cells."""

from __future__ import annotations

from typing import Any

import numpy as np


def probe_patterns(bench: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 2 * np.pi, size=(n, *bench.macropixels))


# More of the ROI than this at full scale and a calibration is refused, not registered: those
# pixels carry no phase information. A few (a bright speckle grain, a focus) only warn.
MAX_SATURATED_FRACTION = 0.01


def check_saturation(
    procedure: Any, frames: np.ndarray, full_scale: float, exposure_s: float, what: str
) -> float:
    """Warn about a few saturated pixels; raise ``CameraSaturated`` for more.

    Returns the fraction of pixels at full scale. ``frames`` is judged as a whole, so a
    pixel counts as often as it is saturated.
    """
    from labpnn.faults import CameraSaturated, saturated_fraction

    fraction = saturated_fraction(frames, full_scale)
    if fraction > MAX_SATURATED_FRACTION:
        raise CameraSaturated(
            f"camera: {fraction:.1%} of the pixel values are at full scale ({full_scale:g} ADU) "
            f"{what}, exposure_s={exposure_s:.3g} s (at most {MAX_SATURATED_FRACTION:.0%} "
            "allowed); use a shorter exposure if the camera allows one (auto_exposure), or "
            "reduce the illumination (laser power, ND filter) or the camera gain, then "
            "calibrate again. Nothing was registered; the run file keeps what was measured."
        )
    if fraction > 0:
        procedure.log.warning(
            "%.2g%% of the pixel values at full scale %s (exposure %.3g s)",
            100 * fraction, what, exposure_s,
        )  # fmt: skip
    return fraction


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
    Frames that stay saturated at the shortest allowed exposure raise ``CameraSaturated``
    (:func:`check_saturation`): a calibration of clipped frames must not be registered.
    """
    camera = bench.camera
    full = bench.full_scale
    for _step in range(max_steps):
        frames = np.asarray(frames_for())
        peak = float(np.max(frames))
        if peak >= ceiling * full:
            lo, _hi = camera.effective_range("exposure_s") or (0.0, np.inf)
            if camera.exposure_s <= lo:
                check_saturation(procedure, frames, full, lo, "at the shortest allowed exposure")
                procedure.log.warning(
                    "saturation persists at the shortest allowed exposure %.3g s", lo
                )
                return lo
            new = max(lo, camera.exposure_s * 0.6 * ceiling * full / max(peak, 1.0))
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
    # out of steps: whatever the exposure now, clipped frames must not pass unchecked
    frames = np.asarray(frames_for())
    check_saturation(procedure, frames, full, camera.exposure_s, "when auto-exposure gave up")
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


def reference_only_frame(bench: Any, frames: int = 1) -> np.ndarray:
    """The mean of ``frames`` raw frames (ADU, float [h, w]) with every macropixel switched off
    by a checkerboard: the reference border's light alone, |s|² on each pixel (plus the
    camera's dark level). More frames average the shot noise down."""
    cells = np.zeros(bench.layout.cells)
    bench.slm.show_grey(blocked_image(bench, cells, ~bench.reference_mask))
    return np.mean([bench.grab()[0] for _ in range(max(1, int(frames)))], axis=0)


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


def full_basis_modes(macropixels: tuple[int, int]) -> int:
    """The most modes :func:`group_blocks` can make that are a power of two: one per macropixel
    when their number is one (16x16: 256, 32x32: 1024)."""
    ny, nx = macropixels
    counts = [(ny // k) * (nx // k) for k in range(1, min(ny, nx) + 1) if ny % k == 0 == nx % k]
    powers = [n for n in counts if n >= 4 and not n & (n - 1)]
    if not powers:
        raise ValueError(
            f"no power-of-two number of square blocks tiles the {ny}x{nx} macropixels; "
            "change bench.layout.macropixels"
        )
    return max(powers)


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
