"""OpticalBench as a PhysicalLayer: encoding, SLM image, decoding, pooling, counters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labpnn.bench import make_bench
from labpnn.bench.optical import average_pool, parse_pool


def test_pooling_matches_torch_including_the_published_3x3_stride_2():
    images = np.random.default_rng(0).random((2, 51, 51))
    for spec in (2, {"kernel": 3, "stride": 2, "padding": 1}):
        kernel, stride, padding = parse_pool(spec)
        ours = average_pool(images, kernel, stride, padding)
        theirs = torch.nn.functional.avg_pool2d(
            torch.tensor(images)[:, None], kernel, stride, padding, count_include_pad=False
        )[:, 0].numpy()
        np.testing.assert_allclose(ours, theirs)
    assert average_pool(images, 3, 2, 1).shape == (2, 26, 26)  # 51x51 -> 26x26 as published


def test_the_slm_image_holds_macropixels_inside_the_reference_border(station):
    bench = make_bench(station(small=True))
    assert bench.n_in == 64 and bench.n_out == 16 * 16
    assert bench.reference_mask.sum() == 12 * 12 - 64
    image = bench.slm_grey_image(np.full((8, 8), np.pi), reference_phase=np.pi / 2)
    p, (oy, ox) = bench.layout.macropixel_px, bench.layout.origin
    assert image.shape == (128, 128) and image[0, 0] == 0  # outside the beam
    assert image[oy, ox] == 64  # reference border at π/2
    assert image[oy + 2 * p, ox + 2 * p] == 128  # first macropixel at π
    cells = bench.layout.cell_values(np.arange(64.0).reshape(8, 8), -1.0)
    np.testing.assert_array_equal(
        bench.layout.macropixel_values(cells), np.arange(64.0).reshape(8, 8)
    )


def test_inputs_are_phases_in_units_of_two_pi_and_outputs_pooled_amplitudes(station):
    st = station("bench.simulation.noise=off", small=True)
    bench = make_bench(st)
    x = np.random.default_rng(1).random((3, bench.n_in))
    y = bench(torch.tensor(x)).numpy()
    assert y.shape == (3, bench.n_out)
    frames = bench.acquire(2 * np.pi * x.reshape(3, 8, 8))
    expected = average_pool(np.sqrt(frames / 65535), 2, 2)  # noise off: 16-bit full scale
    np.testing.assert_allclose(y, expected.reshape(3, -1), rtol=1e-5)
    np.testing.assert_allclose(bench(torch.tensor(x + 1.0)).numpy(), y, rtol=1e-5)  # wraps at 2π
    intensity = make_bench(st, detect="intensity").decode(frames)
    np.testing.assert_allclose(intensity, average_pool(frames / 65535, 2, 2).reshape(3, -1))


def test_queries_and_hardware_time_are_counted_on_the_simulated_clock(station):
    st = station(small=True)
    bench = make_bench(st)
    bench(torch.rand(30, bench.n_in))
    bench.acquire(np.zeros((10, 8, 8)))
    assert bench.queries == 40
    assert bench.hardware_s == pytest.approx(st.clock.now(), abs=1e-9)
    assert bench.hardware_s == pytest.approx((40 + 2) / 60, abs=0.01)  # one frame per refresh


def test_pipelined_acquisition_moves_the_slm_only_between_exposures(station):
    """openwfs' model: pattern i+1 is sent when exposure i ends, one frame per SLM refresh."""
    st = station(small=True)
    bench = make_bench(st)
    presented, starts = [], []
    st["slm"].add_present_hook(lambda grey, t: presented.append(t))
    bench.acquire(np.zeros((12, 8, 8)), on_frame=lambda i, frame, t: starts.append(t))
    exposure, settle = st["camera"].exposure_s, st["slm"].settle_time_s
    for i in range(11):
        assert presented[i + 1] >= starts[i] + exposure  # never during an exposure
        assert starts[i + 1] >= presented[i + 1] + settle - 1e-12  # only once settled
    assert np.diff(starts) == pytest.approx(1 / 60)  # SLM-bound: 60 frames/s
