"""The simulated cavity behaves like a chaotic cavity, and the world like a real bench."""

from __future__ import annotations

import numpy as np
import pytest

from labpnn.mock_instruments.physics.microwave import (
    MetasurfaceCavity,
    cascade,
    flip_ports,
    random_error_box,
    thru_s,
)

F = np.linspace(2.0e9, 2.5e9, 201)


@pytest.fixture(scope="module")
def cavity():
    return MetasurfaceCavity(seed=1)


def test_s_matrix_equals_the_resolvent_formula_and_is_reciprocal_and_passive(cavity, rng):
    bits = rng.integers(0, 2, (3, 40))
    s = cavity.s_params(bits, F[::20])
    h = cavity.hamiltonian(bits)
    for k in range(3):
        for j, f in enumerate(F[::20]):
            g = np.linalg.solve(f * np.eye(cavity.n_modes) - h[k], cavity.w)
            assert np.allclose(s[k, j], np.eye(2) - 1j * cavity.w.T @ g, atol=1e-9)
    assert np.allclose(s[..., 0, 1], s[..., 1, 0], atol=1e-9)
    assert np.linalg.svd(s, compute_uv=False).max() <= 1.0 + 1e-9


def test_every_configuration_gives_a_different_spectrum(cavity, rng):
    s21 = np.abs(cavity.s_params(rng.integers(0, 2, (20, 40)), F)[:, :, 1, 0])
    corr = np.corrcoef(s21)[np.triu_indices(20, 1)]
    assert corr.mean() < 0.8  # configurations decorrelate the speckle-like spectrum
    assert s21.mean() > 0.05


def test_the_response_is_nonlinear_in_the_configuration(cavity, rng):
    """|S21|(a or b) is not |S21|(a) + |S21|(b) - |S21|(0): multiple scattering mixes bits."""
    zero = np.zeros(40, dtype=int)
    a, b = zero.copy(), zero.copy()
    a[:20], b[20:] = 1, 1
    y = np.abs(cavity.s_params(np.stack([zero, a, b, a | b]), F)[:, :, 1, 0])
    linear = y[1] + y[2] - y[0]
    assert np.abs(y[3] - linear).mean() > 0.2 * y[3].mean()


def test_one_bit_shifts_some_modes_a_little(cavity, rng):
    bits = rng.integers(0, 2, (1, 40))
    flipped = bits.copy()
    flipped[0, 7] ^= 1
    y0, y1 = (np.abs(cavity.s_params(b, F)[0, :, 1, 0]) for b in (bits, flipped))
    assert 0.5 < np.corrcoef(y0, y1)[0, 1] < 0.9999


def test_cascade_with_a_thru_is_the_identity_and_error_boxes_are_passive(rng):
    box = random_error_box(rng).s(F)
    assert np.allclose(cascade(box, thru_s(F)), box)
    assert np.linalg.svd(box, compute_uv=False).max() < 1.0
    assert np.allclose(flip_ports(flip_ports(box)), box)


def test_raw_data_are_not_the_device(world, connect_vna):
    vna = connect_vna(world, traces=("S11", "S21"))
    net = vna.sweep()
    truth = world.ground_truth()
    assert np.abs(net.s[:, 1, 0] - truth["s21"]).max() > 0.1


def test_noise_grows_as_the_square_root_of_the_if_bandwidth(make_world, connect_vna):
    world = make_world(noise=1e-3)
    vna = connect_vna(world)
    stds = {}
    for ifbw in (1e3, 1e5):
        vna.ifbw_hz = ifbw
        sweeps = np.array([vna.sweep_arrays()["S21"] for _ in range(6)])
        stds[ifbw] = np.std(sweeps - sweeps.mean(axis=0)) * np.sqrt(6 / 5)
    assert stds[1e5] / stds[1e3] == pytest.approx(10.0, rel=0.2)


def test_rf_off_measures_only_noise(make_world, connect_vna):
    world = make_world(noise=1e-4)
    vna = connect_vna(world)
    vna.rf_on = False
    assert np.abs(vna.sweep_arrays()["S21"]).max() < 0.05


def test_a_sweep_before_the_metasurface_settled_sees_the_old_configuration(world):
    from labpnn.mock_instruments.vna_server import VNAState

    state = VNAState(start_hz=2e9, stop_hz=2.5e9, points=201, ifbw_hz=1e6)  # fast sweep
    world.set_configuration(np.ones(40, dtype=bool))
    world.clock.sleep(world.settle_time_s)
    settled, _ = world._sweep(state)
    world.set_configuration(np.zeros(40, dtype=bool))
    world.set_configuration(np.ones(40, dtype=bool))  # re-latched: must settle again
    early, _ = world._sweep(state)
    assert not np.allclose(early, settled)
    world.clock.sleep(world.settle_time_s)
    late, _ = world._sweep(state)
    assert np.allclose(late, settled)


def test_world_state_round_trips_and_replays_the_same_noise(make_world, connect_vna, rng):
    world = make_world(noise=1e-3)
    vna = connect_vna(world)
    world.set_configuration(rng.integers(0, 2, 40))
    state = world.state_dict()
    assert all(isinstance(v, (np.ndarray, str, int, float)) for v in state.values())
    first = vna.sweep_arrays()["S21"]
    world.load_state_dict(state)
    again = vna.sweep_arrays()["S21"]
    assert np.array_equal(first, again)


def test_drift_moves_the_spectrum_over_simulated_time(make_world):
    world = make_world(noise=0.0, drift_per_s=1e-4)
    before = world.ground_truth()["s21"]
    world.clock.sleep(10.0)
    after = world.ground_truth()["s21"]
    assert np.abs(after - before).max() > 0.05
