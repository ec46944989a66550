"""The model network, the actor/model loop and the VAE loop on a small numpy bench.

16×16 SLM macropixels onto 8×8 digits (4 SLM degrees of freedom per target pixel),
with shot and read noise, a 12-bit camera and a static reference field.
"""

import copy

import numpy as np
import pytest
import torch

from labpnn.control.actor_model import ActorModelControl
from labpnn.control.loop import LoopConfig, QueryBudgetExceeded, round_progress
from labpnn.control.metrics import pearson_fidelity
from labpnn.control.speckle_model import SpeckleModel, code_phases
from labpnn.control.vae import VAEControl
from tests.control.toy_bench import ToySpeckleBench

N, SHAPE = 256, (8, 8)


def small_config(**changes):
    base = dict(
        n_probes=6 * N,
        patterns_per_iteration=200,
        model_iterations=40,
        model_refit_iterations=5,
        model_epochs=1,
        actor_epochs=15,
        actor_refit_epochs=2,
        actor_hidden=128,
        batch=64,
        seed=0,
    )
    base.update(changes)
    return LoopConfig(**base)


def toy(seed=1, **kw):
    return ToySpeckleBench(n_macropixels=N, shape=SHAPE, seed=seed, reference_power=0.1, **kw)


def round_recorder(loop):
    """A progress callback for one round, and what it reported: (stage, fraction) pairs."""
    seen = []
    return round_progress(loop.stages, lambda stage, f: seen.append((stage, f))), seen


def assert_one_forward_bar(loop, seen):
    """Every stage the loop reports is declared, and the round's bar runs 0 → 1 forward."""
    assert {stage for stage, _ in seen} <= set(loop.stages), seen
    fractions = [f for _, f in seen]
    assert min(np.diff(fractions)) >= 0 and fractions[-1] == 1.0, fractions


def test_round_progress_shares_the_round_between_stages_and_never_goes_back():
    seen = []
    progress = round_progress(("fit", "train"), lambda stage, f: seen.append(f))
    progress("fit", 1, 2)
    progress("train", 1, 4)
    progress("fit", 2, 2)  # a late report of an earlier stage holds the bar
    progress("measuring", 0, 0)  # so does one the loop does not declare
    progress("train", 4, 4)
    assert seen == [0.25, 0.625, 0.625, 0.625, 1.0]


def test_the_model_network_learns_the_speckle_from_intensities_only():
    bench = toy(lut_nonlinearity_rad=0.1)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (6 * N, N), dtype=np.uint8)
    model = SpeckleModel(N, 64)
    quality = model.fit(codes, bench.measure(code_phases(codes)), iterations=40, epochs=2)
    assert quality["model_pearson"] > 0.99
    held_out = rng.uniform(0, 2 * np.pi, (100, N))
    predicted = model.predict(held_out)
    truth = bench.intensity(held_out)  # noiseless
    assert np.mean(pearson_fidelity(predicted, truth, flat=True)) > 0.99


def test_too_few_probes_leave_the_model_wrong():
    bench = toy()
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (N, N), dtype=np.uint8)  # 1 probe per unknown
    model = SpeckleModel(N, 64)
    model.fit(codes, bench.measure(code_phases(codes)), iterations=40, epochs=0)
    held_out = rng.uniform(0, 2 * np.pi, (100, N))
    r = pearson_fidelity(model.predict(held_out), bench.intensity(held_out), flat=True)
    assert np.mean(r) < 0.9


def test_the_actor_projects_unseen_digits_and_the_loop_keeps_it_there(small_digits):
    train, test = small_digits
    bench = toy()
    loop = ActorModelControl(N, SHAPE, train, small_config())
    loop.start(bench.measure)
    _, _, first = loop.evaluate(bench.measure, test)
    assert first.mean() >= 0.9
    loop.step(bench.measure)
    _, images, later = loop.evaluate(bench.measure, test)
    assert later.mean() >= first.mean() - 0.01
    assert loop.queries == bench.queries == 6 * N + 2 * len(test) + 200
    assert len(loop.codes) == 6 * N + 200  # held-out pairs never join the model's data


def test_the_query_budget_is_never_exceeded(small_digits):
    train, test = small_digits
    bench = toy()
    loop = ActorModelControl(N, SHAPE, train, small_config(max_queries=6 * N + 50))
    progress, seen = round_recorder(loop)
    loop.start(bench.measure, progress)
    assert_one_forward_bar(loop, seen)
    with pytest.raises(QueryBudgetExceeded, match="budget"):
        loop.evaluate(bench.measure, test[:40] if len(test) > 50 else np.tile(test, (2, 1)))
    info = loop.step(bench.measure, reserve=0)
    assert info["appended"] == 50 and bench.queries == 6 * N + 50


def test_a_restored_checkpoint_continues_bit_identically(small_digits):
    train, test = small_digits
    bench = toy()
    loop = ActorModelControl(N, SHAPE, train, small_config())
    loop.start(bench.measure)
    arrays, meta = loop.checkpoint_state()
    saved_bench = copy.deepcopy(bench)
    loop.step(bench.measure)
    _, _, direct = loop.evaluate(bench.measure, test)

    again = ActorModelControl(N, SHAPE, train, small_config())
    again.restore_state(arrays, meta)
    again.step(saved_bench.measure)
    _, _, resumed = again.evaluate(saved_bench.measure, test)
    assert np.array_equal(direct, resumed)
    for a, b in zip(loop.actor.parameters(), again.actor.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_checkpoint_of_another_controller_is_refused(small_digits):
    train, _ = small_digits
    arrays, meta = ActorModelControl(N, SHAPE, train, small_config()).checkpoint_state()
    with pytest.raises(ValueError, match="actor-model"):
        VAEControl(N, SHAPE, train, small_config(), latent_size=128).restore_state(arrays, meta)


def test_the_vae_loop_does_not_lose_fidelity_across_iterations(small_digits):
    train, test = small_digits
    bench = toy()
    loop = VAEControl(N, SHAPE, train, small_config(), latent_size=128, vae_epochs=2)
    progress, seen = round_recorder(loop)
    loop.start(bench.measure, progress)
    assert_one_forward_bar(loop, seen)
    scores = []
    for _ in range(2):
        scores.append(loop.evaluate(bench.measure, test)[2].mean())
        progress, seen = round_recorder(loop)
        loop.step(bench.measure, progress)
        assert_one_forward_bar(loop, seen)
    scores.append(loop.evaluate(bench.measure, test)[2].mean())
    assert scores[0] >= 0.85
    assert min(np.diff(scores)) > -0.01, scores


def test_a_vae_latent_smaller_than_the_output_field_limits_control(small_digits):
    train, test = small_digits
    bench = toy()
    scores = {}
    for latent in (128, 16):  # 2 x 64 target pixels = full rank; 16 = 8 complex directions
        loop = VAEControl(N, SHAPE, train, small_config(), latent_size=latent, vae_epochs=1)
        loop.start(copy.deepcopy(bench).measure)
        scores[latent] = loop.evaluate(copy.deepcopy(bench).measure, test)[2].mean()
    assert scores[16] < scores[128] - 0.1, scores


def test_the_online_loop_regains_fidelity_after_the_medium_drifts(small_digits):
    train, test = small_digits
    bench = toy()
    config = small_config(probes_per_iteration=4 * N, memory=6 * N, model_refit_iterations=10)
    loop = ActorModelControl(N, SHAPE, train, config)
    loop.start(bench.measure)
    before = loop.evaluate(bench.measure, test)[2].mean()
    bench.drift(0.8)  # the TM now correlates with the learned one by 0.8
    stale = loop.evaluate(bench.measure, test)[2].mean()
    for _ in range(2):
        loop.step(bench.measure)
    regained = loop.evaluate(bench.measure, test)[2].mean()
    assert stale < before - 0.1
    assert regained > stale + 0.08 and regained > before - 0.05, (before, stale, regained)


def test_saturated_and_bad_frames_stay_out_of_the_models_data(small_digits):
    train, _ = small_digits
    loop = ActorModelControl(N, SHAPE, train, small_config(saturation=1.0))
    images = np.full((3, 64), 0.5, dtype=np.float32)
    images[1, 7] = 1.0  # a clipped pixel
    images[2, 3] = np.nan  # a bad frame
    loop._append(np.zeros((3, N), dtype=np.uint8), images)
    assert len(loop.codes) == 1 and loop.left_out == 2
