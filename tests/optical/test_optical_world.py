"""The simulated optical bench end to end: station, both paths, truth, checkpoints, faults."""

from __future__ import annotations

import numpy as np
import pytest

from labpnn.bench import make_bench
from labpnn.calibration import tm as tm_math
from labpnn.errors import InstrumentTimeout

DRIFTY = ("bench.simulation.drift_per_s=2.0", "bench.simulation.global_phase_drift_per_s=0.5")


def _patterns(bench, n, seed=0):
    return np.random.default_rng(seed).uniform(0, 2 * np.pi, (n, *bench.macropixels))


def test_the_bundled_station_connects_and_grabs_a_frame(station):
    st = station()
    frame, t = st["camera"].grab()
    assert frame.shape == (64, 64) and frame.dtype == np.uint16
    assert 300 < frame.mean() < 1500  # mean speckle: 2000 e at 0.41 ADU/e
    assert st.identities()["camera"]["serial"] == "22334455"
    snap = st.snapshot()
    params = snap["components"]["camera"]["parameters"]
    assert params["exposure_s"]["value"] == pytest.approx(0.002)
    assert params["exposure_s"]["unit"] == "s"
    assert st.config.check()  # resolves drivers and the world


def test_full_and_direct_paths_give_the_same_frames_for_the_same_seed(station):
    """Drift, global phase walk and noise all on: identical frames and identical clocks."""
    results, times = {}, {}
    for transport in ("full", "direct"):
        st = station(f"bench.simulation.transport={transport}", *DRIFTY, small=True)
        bench = make_bench(st)
        assert bench.direct == (transport == "direct")
        stamps = []
        first = bench.acquire(
            _patterns(bench, 30, seed=1), on_frame=lambda i, f, t, stamps=stamps: stamps.append(t)
        )
        second = bench.acquire(_patterns(bench, 20, seed=2), reference_phase=np.pi / 2)
        y = bench(np.random.default_rng(3).random((5, bench.n_in)))
        results[transport] = (first, second, y.numpy(), st.clock.now(), st.world.frame_index)
        times[transport] = np.array(stamps)
    full, direct = results["full"], results["direct"]
    # each frame has a time on the bench clock, on either path (the run files keep them)
    for stamps in times.values():
        assert np.isfinite(stamps).all() and (np.diff(stamps) > 0).all()
    np.testing.assert_allclose(times["direct"], times["full"], atol=2 / 60)
    for a, b in zip(full[:3], direct[:3]):
        np.testing.assert_array_equal(a, b)
    assert full[3] == direct[3] and full[4] == direct[4] == 55
    # one 60 Hz vsync per frame, plus one per call for the last frame's settle and read-out
    assert full[3] == pytest.approx((55 + 3) / 60, abs=0.005)


def test_world_checkpoint_restores_subsequent_frames_exactly(station):
    st = station(*DRIFTY, small=True)
    bench = make_bench(st)
    bench.acquire(_patterns(bench, 10))
    state = st.world.state_dict()
    assert all(isinstance(v, (np.ndarray, int, float, str)) for v in state.values())
    after = bench.acquire(_patterns(bench, 10, seed=5))

    fresh = station(*DRIFTY, small=True)
    fresh_bench = make_bench(fresh)
    fresh_bench.acquire(_patterns(fresh_bench, 3, seed=9))  # unrelated history, then restore
    fresh_bench.load_state_dict(state)
    np.testing.assert_array_equal(fresh_bench.acquire(_patterns(fresh_bench, 10, seed=5)), after)
    assert fresh.clock.now() == st.clock.now()


def test_noise_off_frames_are_exactly_the_ground_truth(station):
    st = station("bench.simulation.noise=off", "bench.simulation.lut_nonlinearity=0", small=True)
    bench = make_bench(st)
    phases = _patterns(bench, 3) // (np.pi / 2) * (np.pi / 2)  # grey levels 0/64/128/192: exact
    frames = bench.acquire(phases)
    np.testing.assert_array_equal(frames, bench.acquire(phases))  # reproducible
    gt = st.ground_truth
    field = gt["reference_field"][None] + np.exp(1j * phases.reshape(3, -1)) @ gt["tm_medium"].T
    expected = np.floor(gt["adu_per_intensity"] * np.abs(field) ** 2 + 0.5).clip(0, 65535)
    np.testing.assert_allclose(frames.reshape(3, -1), expected, atol=1)


def test_phase_stepping_recovers_the_ground_truth_tm(station):
    """SCIENCE.md S1 on a small bench: Hadamard phase stepping, noise off, |Pearson| > 0.99."""
    st = station("bench.simulation.noise=off", "bench.simulation.transport=direct", small=True)
    bench = make_bench(st)
    n = bench.n_in
    st["camera"].exposure_s = 0.0005  # keep the brightest speckle grains below saturation
    frames = bench.acquire(tm_math.basis_phases(n).reshape(-1, *bench.macropixels))
    assert frames.max() < 65535
    measured = tm_math.reconstruct(frames.reshape(len(frames), -1), n)
    pearson = tm_math.column_pearson(measured, st.ground_truth["tm"])
    assert pearson.min() > 0.99, pearson.min()


def test_a_frame_grabbed_before_the_slm_settled_mixes_old_and_new(station):
    st = station("bench.simulation.noise=off", small=True)
    bench = make_bench(st)
    slm, cam = st["slm"], st["camera"]
    settled_a = bench.acquire(_patterns(bench, 1, seed=1))[0]
    settled_b = bench.acquire(_patterns(bench, 1, seed=2))[0]
    bench.acquire(_patterns(bench, 1, seed=1))
    bench.show_macropixel_phases(_patterns(bench, 1, seed=2)[0])
    early, _ = cam.grab(at=slm.presented_at + 0.001)  # 1 ms into a 10 ms settle
    early = early.astype(float)
    corr_a = np.corrcoef(early.ravel(), settled_a.ravel())[0, 1]
    corr_b = np.corrcoef(early.ravel(), settled_b.ravel())[0, 1]
    corr_ab = np.corrcoef(settled_a.ravel(), settled_b.ravel())[0, 1]  # the shared reference
    assert corr_a > corr_ab + 0.1 and corr_b < 0.99  # pulled towards the old pattern
    late, _ = cam.grab(at=slm.ready_at)
    np.testing.assert_array_equal(late, settled_b)


def test_a_stalled_camera_raises_a_clear_timeout(station):
    st = station("bench.simulation.faults={camera_stall_after_frames: 3}", small=True)
    cam = st["camera"]
    for _ in range(3):
        cam.grab()
    t = st.clock.now()
    with pytest.raises(
        InstrumentTimeout, match=r"camera: camera 22334455 delivered no frame within 2 s"
    ):
        cam.grab()
    assert st.clock.now() == pytest.approx(t + 2.0)  # the wait was real, on the virtual clock
    direct = station("bench.simulation.faults={camera_stall_after_frames: 3}",
                     "bench.simulation.transport=direct", small=True)  # fmt: skip
    with pytest.raises(InstrumentTimeout, match="stalled after 3 frames"):
        make_bench(direct).acquire(_patterns(make_bench(direct), 5))


def test_nan_saturation_and_faster_drift_faults(station):
    st = station("bench.simulation.faults={nan_after_frames: 2}", small=True)
    y = make_bench(st)(np.zeros((4, 64))).numpy()
    assert np.isfinite(y[:2]).all() and np.isnan(y[2:]).all()
    sat = station("bench.simulation.faults={saturate: true}", small=True)
    assert (sat["camera"].grab()[0] == 4095).all()
    corr = {}
    for mult in (1, 20):
        s = station("bench.simulation.drift_per_s=0.01",
                    f"bench.simulation.faults={{drift_multiplier: {mult}}}", small=True)  # fmt: skip
        before = s.ground_truth["tm_medium"]
        s.clock.sleep(10.0)
        corr[mult] = abs(tm_math.column_pearson(s.ground_truth["tm_medium"], before).mean())
    assert corr[1] > 0.8 and corr[20] < 0.3


def test_safe_state_blanks_the_slm(station):
    st = station(small=True)
    seen = []
    st["slm"].add_present_hook(lambda grey, t: seen.append(grey.copy()))
    make_bench(st).show_macropixel_phases(np.full((8, 8), np.pi))
    assert seen[-1].max() == 128
    assert st.safe_state() == {"slm": "ok", "camera": "ok"}
    assert not seen[-1].any() and not st["slm"].last_frame.any()
    assert not st["camera"].acquiring


def test_fibre_medium_station_and_20db_snr(station):
    st = station("bench.simulation.medium=fiber", "bench.simulation.modes=100",
                 "bench.simulation.noise=snr20", small=True)  # fmt: skip
    bench = make_bench(st)
    frames = np.stack([bench.grab()[0] for _ in range(40)])
    mean, noise = frames.mean(), np.sqrt(frames.var(axis=0).mean())  # noise std at mean speckle
    assert mean / noise == pytest.approx(10, rel=0.2)  # 20 dB at mean speckle


def test_a_persistent_world_continues_where_the_last_run_left_it_drifted_by_the_idle_time(
    station, tmp_path, monkeypatch
):
    """``bench.simulation.persist``: night-to-night drift on a simulated bench."""
    from labpnn import paths
    from labpnn.mock_instruments.persistence import WorldStore

    persist = ("bench.simulation.persist=true", "bench.simulation.drift_per_s=1e-3")
    first = station(*persist, small=True)
    tm_first = first.ground_truth["tm"].copy()
    make_bench(first).acquire(_patterns(make_bench(first), 5))
    first.close()
    saved = list((paths.state_dir() / "worlds").glob("*.npz"))
    assert len(saved) == 1
    # Pretend the save happened 10 minutes ago: corr(T) = exp(-1e-3 * 600) for the medium, and
    # its square, 0.30, for the observed TM diag(s_ref)·T (the reference speckle drifts too).
    with np.load(saved[0]) as f:
        state = dict(f)
    state["__saved_at_wall_s"] = np.asarray(float(state["__saved_at_wall_s"]) - 600.0)
    np.savez(saved[0], **state)
    second = station(*persist, small=True)
    tm_second = second.ground_truth["tm"]
    corr = abs(np.vdot(tm_first, tm_second)) / (
        np.linalg.norm(tm_first) * np.linalg.norm(tm_second)
    )
    assert corr == pytest.approx(np.exp(-1.2), abs=0.1)
    assert second.ground_truth["time_s"] >= 600
    second.close()

    # Off (the default): every run starts from the seed at t = 0.
    fresh = station("bench.simulation.drift_per_s=1e-3", small=True)
    np.testing.assert_array_equal(fresh.ground_truth["tm"], tm_first)
    assert fresh.ground_truth["time_s"] == 0

    # Another seed is another world, with its own file: this one's series goes on.
    before = saved[0].read_bytes()
    other = station("bench.simulation.persist=true", "bench.simulation.seed=99", small=True)
    assert other.ground_truth["time_s"] == 0
    other.close()
    assert len(list((paths.state_dir() / "worlds").glob("*.npz"))) == 2
    assert saved[0].read_bytes() == before  # untouched by the other world
    # A file that cannot be read is set aside (never overwritten) and the world starts afresh.
    saved[0].write_bytes(b"not a world")
    broken = station(*persist, small=True)
    assert broken.ground_truth["time_s"] == 0
    broken.close()
    assert len(list((paths.state_dir() / "worlds").glob("*.unusable-*.npz"))) == 1
    with pytest.raises(Exception, match="persist must be true or false"):
        station("bench.simulation.persist=3", small=True)
    assert (
        WorldStore(tmp_path / "none.npz").restore(None).startswith("simulated world starts afresh")
    )
