"""A physics twin of a phase-only SLM layer, built from its calibrated transmission matrix.

An MLP cannot learn a large speckle layer from samples: 256 SLM phases onto 1024 pooled camera
pixels is NRMSE 0.72 from 20 000 measured pairs (docs/training.md, S9). The physics is known,
though, and ``calibrate-tm`` measures its unknowns. With the observed TM ``A = diag(conj(s)) T``
and the reference intensity ``|s|²`` (both in camera counts, on the camera's pixels), a pixel
sees

    I(φ) = | |s| + A·exp(iφ) / |s| |²                     (the reference's phase is inside A)

and the bench reads it out as it reads every frame: scaled to full scale and clipped there,
detected as amplitude ``sqrt(I)`` or as intensity, then average-pooled. A last per-output
gain and offset, fitted by least squares on a few measured pairs (:func:`fit_output_map`),
takes up what the TM does not say: the bench's output standardisation, a changed exposure, a
weak reference. The twin is differentiable in the inputs (for PAT and in-silico training) and
needs only a few hundred pairs, against tens of thousands for an MLP, besides the calibration.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from labpnn.learning.twin import measure_pairs

__all__ = ["TransmissionMatrixTwin", "fit_output_map"]

DETECTIONS = ("amplitude", "intensity")


class TransmissionMatrixTwin(nn.Module):
    """``x[B, n_in]`` (phases in units of ``input_period``) -> the bench's ``[B, n_out]``.

    ``tm``: complex ``[pixels, n_in]``, the observed TM with one column per input (a mode that
    moves a block of k macropixels together gives each of them 1/k of its column);
    ``reference``: ``|s|`` per pixel, floored where the reference is dark; ``image_shape``:
    the camera ROI (rows, cols), row-major over ``pixels``; ``pool``: (kernel, stride, padding)
    as the bench pools, padding excluded from the mean; ``full_scale``: the counts of a full
    pixel, at which the camera clips; ``dark``: counts the bench reads on top of the light (the
    camera's black level that it does not subtract), one per pixel or one for all. ``report``
    holds what building and fitting it cost.
    """

    def __init__(
        self,
        tm: Tensor,
        reference: Tensor,
        image_shape: tuple[int, int],
        *,
        pool: tuple[int, int, int] = (1, 1, 0),
        detect: str = "amplitude",
        full_scale: float = 1.0,
        input_period: float = 1.0,
        dark: Tensor | float = 0.0,
    ) -> None:
        super().__init__()
        tm = torch.as_tensor(tm)
        if tm.ndim != 2 or not tm.is_complex():
            raise ValueError(f"tm must be complex [pixels, n_in], got {tuple(tm.shape)} {tm.dtype}")
        pixels = tm.shape[0]
        if image_shape[0] * image_shape[1] != pixels:
            raise ValueError(f"image_shape {tuple(image_shape)} does not hold the TM's {pixels} "
                             "camera pixels")  # fmt: skip
        reference = torch.as_tensor(reference, dtype=torch.float32).reshape(-1)
        if reference.shape != (pixels,) or not bool((reference > 0).all()):
            raise ValueError(f"reference must be |s| > 0 on each of the {pixels} pixels")
        if detect not in DETECTIONS:
            raise ValueError(f"detect={detect!r} is not one of {DETECTIONS}")
        if not full_scale > 0 or not input_period > 0:
            raise ValueError("full_scale and input_period must be positive")
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.pool = tuple(int(v) for v in pool)
        self.detect = detect
        self.input_period = float(input_period)
        self.n_in = int(tm.shape[1])
        kernel, stride, padding = self.pool
        rows, cols = (
            (size + 2 * padding - kernel) // stride + 1 for size in self.image_shape
        )  # fmt: skip
        self.n_out = rows * cols
        # A / |s| as two real matrices [n_in, pixels]: real matmuls are what CPUs do fastest.
        scaled = tm.to(torch.complex64) / reference[:, None]
        self.register_buffer("tm_real", scaled.real.T.contiguous())
        self.register_buffer("tm_imag", scaled.imag.T.contiguous())
        self.register_buffer("reference", reference.clone())
        dark = torch.as_tensor(dark, dtype=torch.float32).reshape(-1)
        if dark.numel() not in (1, pixels) or not bool(torch.isfinite(dark).all()):
            raise ValueError(f"dark must be one finite value or one per pixel ({pixels})")
        self.register_buffer("dark", dark.expand(pixels).clone())
        self.register_buffer("full_scale", torch.tensor(float(full_scale)))
        self.register_buffer("output_gain", torch.ones(self.n_out))
        self.register_buffer("output_offset", torch.zeros(self.n_out))
        self.report: dict = {}

    def physical(self, x: Tensor) -> Tensor:
        """What the bench would read out, before the fitted per-output gain and offset."""
        angle = (2 * math.pi / self.input_period) * x.to(self.tm_real.dtype)
        cos, sin = torch.cos(angle), torch.sin(angle)
        real = cos @ self.tm_real - sin @ self.tm_imag + self.reference
        imag = cos @ self.tm_imag + sin @ self.tm_real
        counts = real.square() + imag.square() + self.dark
        signal = (counts / self.full_scale).clamp(max=1.0)
        if self.detect == "amplitude":
            signal = signal.clamp_min(1e-12).sqrt()  # finite slope where a pixel is dark
        kernel, stride, padding = self.pool
        if (kernel, stride, padding) != (1, 1, 0):
            image = signal.reshape(-1, 1, *self.image_shape)
            signal = F.avg_pool2d(image, kernel, stride, padding, count_include_pad=False)
        return signal.reshape(x.shape[0], -1)

    def forward(self, x: Tensor) -> Tensor:
        return self.physical(x) * self.output_gain + self.output_offset

    @property
    def flops_per_sample(self) -> float:
        """Forward FLOPs of one sample: four real ``n_in x pixels`` products and the pooling."""
        pixels = self.tm_real.shape[1]
        return 8.0 * self.n_in * pixels + 2.0 * pixels


def fit_output_map(
    twin: TransmissionMatrixTwin,
    layer,
    n_samples: int,
    input_sampler: Callable[[int, torch.Generator], Tensor],
    *,
    validation_fraction: float = 0.2,
    query_batch_size: int = 256,
    seed: int = 0,
) -> TransmissionMatrixTwin:
    """Measure ``n_samples`` inputs on ``layer`` and fit the twin's per-output gain and offset.

    Each output is one least-squares line from the physics' prediction to the measurement,
    so a few hundred pairs suffice. Non-finite measurements are dropped and counted. Fills
    ``twin.report`` as :func:`~labpnn.learning.twin.fit_twin` does (``queries``,
    ``hardware_s``, ``digital_flops``, ``train_nrmse``, ``validation_nrmse`` ...) and
    returns the twin, frozen and in eval mode.
    """
    if (twin.n_in, twin.n_out) != (layer.n_in, layer.n_out):
        raise ValueError(f"the twin is {twin.n_in}->{twin.n_out} wide, the layer "
                         f"{layer.n_in}->{layer.n_out}")  # fmt: skip
    pairs = measure_pairs(layer, n_samples, input_sampler, seed=seed,
                          validation_fraction=validation_fraction,
                          query_batch_size=query_batch_size, min_train=3)  # fmt: skip
    with torch.no_grad():
        # in chunks: the camera-pixel intermediates of one row are thousands of values
        p = torch.cat([twin.physical(rows) for rows in pairs.inputs[pairs.train].split(1024)])
        y = pairs.outputs[pairs.train]
        p_centred, y_centred = p - p.mean(dim=0), y - y.mean(dim=0)
        variance = p_centred.square().mean(dim=0)
        gain = (p_centred * y_centred).mean(dim=0) / variance.clamp_min(1e-30)
        gain[variance <= 1e-30] = 0.0  # an output the physics says is constant: its mean
        twin.output_gain.copy_(gain)
        twin.output_offset.copy_(y.mean(dim=0) - gain * p.mean(dim=0))
    twin.eval().requires_grad_(False)
    twin.report = pairs.report(twin, len(pairs.inputs) * twin.flops_per_sample)
    return twin
