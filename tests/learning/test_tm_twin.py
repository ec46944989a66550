"""The transmission-matrix twin computes the bench's read-out, and its output map is a fit."""

import numpy as np
import pytest
import torch

from labpnn.bench.optical import average_pool
from labpnn.learning import TransmissionMatrixTwin, fit_output_map
from labpnn.physical import FunctionLayer

IMAGE = (6, 8)  # camera ROI rows, cols
N_IN = 5


def _optics(seed=0):
    rng = np.random.default_rng(seed)
    pixels = IMAGE[0] * IMAGE[1]
    tm = (rng.normal(size=(pixels, N_IN)) + 1j * rng.normal(size=(pixels, N_IN))) * 30
    reference = rng.uniform(20, 40, size=pixels)  # |s|
    return tm, reference


def _numpy_bench(x, tm, reference, pool, detect, full_scale, dark=0.0):
    """What the optical bench reads: |s + A e^{iφ}/s|² plus the camera's dark level, clipped at
    full scale, detected, pooled."""
    phases = 2 * np.pi * np.asarray(x, dtype=np.float64)
    intensity = np.abs(reference + np.exp(1j * phases) @ tm.T / reference) ** 2 + dark
    signal = np.minimum(intensity / full_scale, 1.0)
    if detect == "amplitude":
        signal = np.sqrt(signal)
    return average_pool(signal.reshape(-1, *IMAGE), *pool).reshape(len(x), -1)


@pytest.mark.parametrize(
    "pool, detect, dark",
    [((1, 1, 0), "amplitude", 0.0), ((2, 2, 0), "intensity", 0.0), ((3, 2, 1), "amplitude", 0.0),
     ((2, 2, 0), "amplitude", 60.0)],
)  # fmt: skip
def test_the_twin_reads_out_what_the_bench_reads(pool, detect, dark):
    tm, reference = _optics()
    # a full scale that clips the brightest pixels, so the clip is exercised too
    full_scale = 1000.0
    twin = TransmissionMatrixTwin(
        torch.from_numpy(tm), torch.from_numpy(reference), IMAGE, pool=pool, detect=detect,
        full_scale=full_scale, dark=dark,
    )  # fmt: skip
    x = torch.rand(16, N_IN, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = _numpy_bench(x.numpy(), tm, reference, pool, detect, full_scale, dark)
    raw = np.abs(reference + np.exp(2j * np.pi * x.numpy()) @ tm.T / reference) ** 2 + dark
    assert (raw > full_scale).any() and (raw < full_scale).any()  # some pixels clip
    got = twin(x).double().numpy()  # float64 inputs are taken too
    assert got.shape == expected.shape == (16, twin.n_out)
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5)


def test_the_twin_is_differentiable_and_periodic_in_its_inputs():
    tm, reference = _optics()
    twin = TransmissionMatrixTwin(torch.from_numpy(tm), torch.from_numpy(reference), IMAGE,
                                  pool=(2, 2, 0), full_scale=2000.0)  # fmt: skip
    x = torch.rand(4, N_IN, generator=torch.Generator().manual_seed(2), requires_grad=True)
    twin(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    torch.testing.assert_close(twin(x + 1.0), twin(x), rtol=1e-4, atol=1e-5)


def test_the_output_map_recovers_each_outputs_gain_and_offset_and_reports_costs():
    tm, reference = _optics()
    physics = TransmissionMatrixTwin(torch.from_numpy(tm), torch.from_numpy(reference), IMAGE,
                                     pool=(2, 2, 0), full_scale=2000.0)  # fmt: skip
    gain = torch.linspace(0.5, 3.0, physics.n_out)
    offset = torch.linspace(-2.0, 2.0, physics.n_out)
    noise = torch.Generator().manual_seed(3)

    def bench(x):  # the physics behind a standardisation, plus a little noise
        y = physics.physical(x) * gain + offset
        return y + 1e-4 * torch.randn(y.shape, generator=noise)

    layer = FunctionLayer(bench, N_IN, physics.n_out)
    twin = TransmissionMatrixTwin(torch.from_numpy(tm), torch.from_numpy(reference), IMAGE,
                                  pool=(2, 2, 0), full_scale=2000.0)  # fmt: skip
    fit_output_map(twin, layer, 200, lambda n, g: torch.rand(n, N_IN, generator=g), seed=0)
    torch.testing.assert_close(twin.output_gain, gain, rtol=0.02, atol=0.02)
    torch.testing.assert_close(twin.output_offset, offset, rtol=0.02, atol=0.02)
    report = twin.report
    assert report["queries"] == 200 and report["n_train"] == 160
    assert report["validation_nrmse"] < 0.05 and report["digital_flops"] > 0
    assert not any(p.requires_grad for p in twin.parameters())


def test_bad_construction_and_a_mismatched_layer_are_refused():
    tm, reference = _optics()
    tm_t, ref_t = torch.from_numpy(tm), torch.from_numpy(reference)
    with pytest.raises(ValueError, match="complex"):
        TransmissionMatrixTwin(tm_t.real, ref_t, IMAGE)
    with pytest.raises(ValueError, match="image_shape"):
        TransmissionMatrixTwin(tm_t, ref_t, (5, 8))
    with pytest.raises(ValueError, match="reference"):
        TransmissionMatrixTwin(tm_t, ref_t * 0, IMAGE)
    with pytest.raises(ValueError, match="detect"):
        TransmissionMatrixTwin(tm_t, ref_t, IMAGE, detect="phase")
    twin = TransmissionMatrixTwin(tm_t, ref_t, IMAGE)
    wrong = FunctionLayer(lambda x: x, N_IN, N_IN)
    with pytest.raises(ValueError, match="wide"):
        fit_output_map(twin, wrong, 20, lambda n, g: torch.rand(n, N_IN, generator=g))
