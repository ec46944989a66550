"""The optical bench as a PhysicalLayer: phases on an SLM -> medium -> camera speckle.

**Encoding.** ``x[B, n_in]`` holds one value per macropixel (row-major over
``layout.macropixels``), read as a phase in units of 2π: x = 0.5 is π, and values wrap.
The reference border is held at phase 0.

**Decoding.** The camera ROI (``layout.camera_roi``) is scaled to full scale (0..1 of
``2**bits - 1``, after subtracting ``dark_frame`` if one is set), detected as
``amplitude`` = sqrt(intensity), i.e. |E| (default, as in the published optical PNN) or
as ``intensity`` = |E|², then average-pooled by ``layout.pool``: an integer k (k x k
windows, stride k) or ``{kernel, stride, padding}`` (zero padding excluded from the
mean, like torch's ``avg_pool2d(count_include_pad=False)``). ``n_out`` is the pooled size.

**Pipelined acquisition** (:meth:`OpticalBench.acquire`), openwfs' actuator/detector
model: pattern i+1 goes to the SLM as soon as exposure i has *ended*, while frame i is
still being read out; exposure i+1 starts when the SLM reports it settled
(``slm.ready_at``). With a 60 Hz SLM, 10 ms settling and 2 ms exposure each frame takes
one vsync, so the loop runs at the SLM's 60 frames/s. On a simulated station with
``simulation.transport: direct`` the same call goes to the world's batched path, which
returns the same frames for the same seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from labpnn.bench.base import BenchLayer
from labpnn.bench.macropixels import MacropixelLayout
from labpnn.errors import ConfigError

FrameCallback = Callable[[int, np.ndarray, float], None]


def parse_pool(spec: Any) -> tuple[int, int, int]:
    """(kernel, stride, padding) from ``layout.pool``."""
    if isinstance(spec, Mapping):
        kernel = int(spec.get("kernel", 1))
        return kernel, int(spec.get("stride", kernel)), int(spec.get("padding", 0))
    kernel = int(spec or 1)
    return kernel, kernel, 0


def average_pool(images: np.ndarray, kernel: int, stride: int, padding: int = 0) -> np.ndarray:
    """[B, h, w] -> [B, h', w'] window means; padding is excluded from the mean."""
    if kernel == stride and padding == 0:
        b, h, w = images.shape
        hh, ww = h // kernel, w // kernel
        crop = images[:, : hh * kernel, : ww * kernel]
        return crop.reshape(b, hh, kernel, ww, kernel).mean(axis=(2, 4))
    pad = ((0, 0), (padding, padding), (padding, padding))
    window = np.lib.stride_tricks.sliding_window_view
    sums = window(np.pad(images, pad), (kernel, kernel), axis=(1, 2))[:, ::stride, ::stride]
    ones = np.pad(np.ones(images.shape[1:]), pad[1:])
    counts = window(ones, (kernel, kernel))[::stride, ::stride].sum(axis=(-1, -2))
    return sums.sum(axis=(-1, -2)) / counts


class OpticalBench(BenchLayer):
    def __init__(
        self,
        station: Any,
        *,
        detect: str = "amplitude",
        slm: str = "slm",
        camera: str = "camera",
        set_roi: bool = True,
        dark_frame: np.ndarray | None = None,
    ):
        super().__init__(station)
        if detect not in ("amplitude", "intensity"):
            raise ConfigError(f"optical bench: detect='{detect}' is not amplitude or intensity")
        self.detect, self.dark_frame = detect, dark_frame
        self.slm, self.camera = station[slm], station[camera]
        layout = station.bench.layout
        self.layout = MacropixelLayout.from_layout(layout, tuple(self.slm.shape))
        roi = layout.get("camera_roi")
        if roi is not None and set_roi and tuple(self.camera.roi) != tuple(roi):
            self.camera.roi = tuple(roi)
        self.pool_spec = parse_pool(layout.get("pool", 1))
        _x, _y, w, h = self.camera.roi
        k, s, p = self.pool_spec
        self.pooled_shape = ((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        self.n_in = self.layout.n_macropixels
        self.n_out = self.pooled_shape[0] * self.pooled_shape[1]
        if self.direct and station.world is None:
            raise ConfigError("optical bench: transport 'direct' needs a simulated station")
        # Saturation seen by measure() and count_saturated() (features clip there): frames with
        # a pixel at full scale, such pixels, and all frames counted (procedures warn from these).
        self.saturated_frames = self.saturated_pixels = self.measured_frames = 0

    # -- geometry helpers for procedures ------------------------------------------------------
    @property
    def macropixels(self) -> tuple[int, int]:
        return self.layout.macropixels

    @property
    def reference_mask(self) -> np.ndarray:
        """bool [cells_y, cells_x] over the illuminated cells: True on the reference border."""
        return self.layout.reference_mask

    @property
    def full_scale(self) -> int:
        return 2**self.camera.bits - 1

    def cell_phases(self, phases: np.ndarray, reference_phase: Any = 0.0) -> np.ndarray:
        """[..., cells_y, cells_x] rad: macropixel phases [..., ny, nx] inside the reference."""
        return self.layout.cell_values(np.asarray(phases, dtype=np.float64), reference_phase)

    def slm_grey_image(self, phases: np.ndarray, reference_phase: Any = 0.0) -> np.ndarray:
        """uint8 [rows, cols]: the SLM image for one macropixel pattern."""
        grey = self.slm.phase_to_grey(self.cell_phases(phases, reference_phase))
        return self.layout.slm_image(grey)

    def show_macropixel_phases(self, phases: np.ndarray, reference_phase: float = 0.0) -> float:
        """Display [ny, nx] phases (rad) with the border at ``reference_phase``; returns ready_at."""
        self.slm.show_grey(self.slm_grey_image(phases, reference_phase))
        return self.slm.ready_at

    def show_cell_phases(self, cells: np.ndarray) -> float:
        """Display any phase (rad) per illuminated cell, reference border included."""
        self.slm.show_grey(self.layout.slm_image(self.slm.phase_to_grey(cells)))
        return self.slm.ready_at

    # -- acquisition --------------------------------------------------------------------------
    def grab(self) -> tuple[np.ndarray, float]:
        """One frame of whatever the SLM shows, once it has settled: (float [h, w], t_start)."""
        t_clock, t_wall = self.clock.now(), time.perf_counter()
        frame, t = self.camera.grab(at=self.slm.ready_at)
        self._count(1, t_clock, t_wall)
        return frame.astype(np.float64), t

    def acquire(
        self,
        phases: np.ndarray,
        reference_phase: Any = 0.0,
        on_frame: FrameCallback | None = None,
    ) -> np.ndarray:
        """Camera frames float [B, h, w] (ADU) for macropixel phases [B, ny, nx] (rad), pipelined.

        ``reference_phase`` is a scalar or one value per pattern. ``on_frame(i, frame, t)``
        is called as each frame arrives (to stream it to a run file or to check for abort).
        """
        t_clock, t_wall = self.clock.now(), time.perf_counter()
        frames = self._acquire(phases, reference_phase, on_frame)
        self._count(len(frames), t_clock, t_wall)
        return frames

    def _count(self, n: int, t_clock: float, t_wall: float) -> None:
        elapsed = self.clock.now() - t_clock
        self.hardware_s += elapsed if elapsed > 0 else time.perf_counter() - t_wall
        self.queries += n

    def _acquire(self, phases, reference_phase, on_frame) -> np.ndarray:
        phases = np.asarray(phases, dtype=np.float64)
        phases = phases[None] if phases.ndim == 2 else phases
        if phases.shape[1:] != self.macropixels:
            raise ValueError(f"phases must be [B, {self.macropixels}], got {list(phases.shape)}")
        n = len(phases)
        grey = self.slm.phase_to_grey(phases)
        ref_grey = self.slm.phase_to_grey(np.broadcast_to(np.asarray(reference_phase, float), (n,)))
        if self.direct:
            slm = self.slm
            start = self.clock.now()
            frames = self.station.world.measure_phases(
                grey, ref_grey, settle_s=slm.settle_time_s, refresh_hz=slm.refresh_hz,
                latency_s=slm.latency_s,
            )  # fmt: skip
            if on_frame is not None:
                # The batch runs at one frame period per pattern, as the driver path does, so
                # frame i starts i periods in (the driver path stamps exposure starts too);
                # the world reports only the batch's end.
                period = (self.clock.now() - start) / max(len(frames), 1)
                for i, frame in enumerate(frames):
                    on_frame(i, frame, start + i * period)
            return frames
        _x, _y, w, h = self.camera.roi
        frames = np.empty((n, h, w))
        if n == 0:
            return frames
        slm, camera, layout = self.slm, self.camera, self.layout

        def show(i: int) -> None:
            slm.show_grey(layout.slm_image(layout.cell_values(grey[i], ref_grey[i])))

        show(0)
        camera.trigger(at=slm.ready_at)
        for i in range(n):
            camera.wait_exposure_end()
            if i + 1 < n:
                show(i + 1)  # the LC switches while frame i is read out
            frame, t = camera.read()
            frames[i] = frame
            if on_frame is not None:
                on_frame(i, frames[i], t)
            if i + 1 < n:
                camera.trigger(at=slm.ready_at)
        return frames

    # -- PhysicalLayer ----------------------------------------------------------------------
    def decode(
        self, frames: np.ndarray, overwrite: bool = False, full_scale: float | None = None
    ) -> np.ndarray:
        """[B, h, w] ADU -> [B, n_out]: full-scale fraction, detection, pooling.

        ``overwrite`` lets it work in place on ``frames`` (a float64 array it may spoil);
        ``full_scale`` saves asking the camera again (a feature read on real hardware).
        """
        signal = np.array(frames, dtype=np.float64, copy=not overwrite)
        if self.dark_frame is not None:
            signal -= self.dark_frame
        signal *= 1.0 / (self.full_scale if full_scale is None else full_scale)
        if self.detect == "amplitude":
            np.maximum(signal, 0.0, out=signal)
            np.sqrt(signal, out=signal)
        pooled = average_pool(signal, *self.pool_spec)
        return pooled.reshape(len(signal), -1)

    def measure(self, x: np.ndarray) -> np.ndarray:
        phases = 2 * np.pi * np.asarray(x, dtype=np.float64).reshape(-1, *self.macropixels)
        frames = self._acquire(phases, 0.0, None)
        top = self.full_scale
        self.count_saturated(frames, top)
        return self.decode(frames, overwrite=True, full_scale=top)

    def count_saturated(self, frames: np.ndarray, full_scale: float | None = None) -> int:
        """Add frames ``[B, h, w]`` (ADU) to the saturation counts; the batch's saturated frames."""
        top = self.full_scale if full_scale is None else full_scale
        full = frames >= top
        saturated = int(np.count_nonzero(full.any(axis=(1, 2))))
        self.saturated_pixels += int(np.count_nonzero(full))
        self.saturated_frames += saturated
        self.measured_frames += len(frames)
        return saturated
