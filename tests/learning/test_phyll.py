"""PhyLL as a lab would use it: the notebook API, widths, bad frames, costs and determinism."""

import json

import numpy as np
import pytest
import torch

from labpnn.datasets import vowels
from labpnn.learning import PhyLL, TrainingDiverged
from labpnn.physical import FunctionLayer

HISTORY_KEYS = {
    "epoch", "train_accuracy", "test_accuracy", "layer_losses", "queries", "hardware_s",
    "digital_flops", "skipped_batches",
}  # fmt: skip


def test_the_notebook_api_learns_the_vowels_well_above_chance(tanh_physics):
    fn = tanh_physics()
    ds = vowels(seed=0)
    model = PhyLL(
        [FunctionLayer(fn, n_in=20, n_out=20), FunctionLayer(fn, n_in=20, n_out=20)],
        n_classes=7, skip=True, alpha=4.0, lr=5e-4, inner_steps=10, seed=0,
    )  # fmt: skip
    history = model.fit(ds, epochs=40, eval_every=10)
    accuracy = model.evaluate(ds.x_test, ds.y_test)
    # Chance is 1/7; 40 epochs reach 0.88-1.0 over seeds on the real and the synthetic vowels.
    assert accuracy >= 0.8
    assert len(history) == 40 and HISTORY_KEYS <= set(history[-1])
    assert history[-1]["test_accuracy"] == pytest.approx(accuracy)
    assert history[0]["test_accuracy"] is None and history[9]["test_accuracy"] is not None
    assert history[-1]["layer_losses"][0] < history[0]["layer_losses"][0]


def test_digital_widths_follow_the_physical_layers_with_and_without_skip(tanh_physics):
    wide = FunctionLayer(tanh_physics(20, 30), 20, 30)
    narrow = FunctionLayer(tanh_physics(20, 10), 20, 10)
    with_skip = PhyLL([wide, narrow], n_classes=7, skip=True)
    assert with_skip.digital_widths == [(30 + 20, 20), (10 + 20, 20)]
    without_skip = PhyLL([wide, narrow], n_classes=7, skip=False, out_width=5)
    assert without_skip.digital_widths == [(30, 20), (10, 5)]


def test_a_dataset_wider_than_the_first_layer_is_refused(digit_task, tanh_layers):
    model = PhyLL(tanh_layers, n_classes=7)
    with pytest.raises(ValueError, match="width 20.*shape \\(1437, 74\\)"):
        model.fit(digit_task, epochs=1)
    with pytest.raises(ValueError, match="n_label_slots"):
        PhyLL(tanh_layers, n_classes=7, n_label_slots=20)


def test_a_bad_frame_skips_the_batch_and_leaves_the_weights_alone(vowel_task):
    broken = FunctionLayer(lambda x: torch.full((x.shape[0], 20), float("nan")), 20, 20)
    model = PhyLL([broken], n_classes=7, seed=0)
    before = [p.clone() for p in model.digital.parameters()]
    record = model.step_epoch(vowel_task, evaluate=False)
    assert model.costs.skipped_batches == 1 and record["layer_losses"] == [None]
    assert all(torch.equal(a, b) for a, b in zip(before, model.digital.parameters()))
    # Measuring a bad frame in evaluation gives an 'unknown' prediction, never a silent class.
    assert torch.all(model.predict(vowel_task.x_test[:5]) == -1)


def test_a_bad_row_never_reaches_the_next_layer_in_evaluation(vowel_task, tanh_physics):
    """A bad frame in layer 1 must not become a NaN drive signal for the hardware of layer 2."""
    physics = tanh_physics()

    def first(x):
        y = physics(x)
        y[::3] = float("nan")  # every third row comes back bad
        return y

    def second(x):
        assert torch.isfinite(x).all(), "a non-finite row was sent to the second layer"
        return physics(x)

    layers = [FunctionLayer(first, 20, 20), FunctionLayer(second, 20, 20)]
    model = PhyLL(layers, n_classes=7, seed=0)
    x = vowel_task.x_test[:6]
    predicted = model.predict(x)
    assert predicted[0] == -1 and predicted[3] == -1  # rows 0 and 3 were bad for every label
    assert torch.all(predicted[[1, 2, 4, 5]] >= 0)
    # the second layer measured only the good rows (7 labels x 6 samples, one in three bad)
    assert layers[0].queries == 42 and layers[1].queries == 28
    assert model.costs.eval_queries == 42 + 28


def test_occasional_bad_frames_are_counted_and_training_goes_on(vowel_task, tanh_physics):
    physics = tanh_physics()
    calls = {"n": 0}

    def flaky(x):
        calls["n"] += 1
        y = physics(x)
        if calls["n"] % 4 == 0:
            y[0, 0] = float("inf")
        return y

    model = PhyLL([FunctionLayer(flaky, 20, 20)], n_classes=7, batch_size=32, seed=0)
    with pytest.warns(RuntimeWarning, match="training batch\\(es\\) skipped"):
        model.fit(vowel_task, epochs=8, eval_every=8)
    costs = model.costs
    assert costs.skipped_batches >= 8
    assert all(torch.isfinite(p).all() for p in model.digital.parameters())
    assert model.history[-1]["test_accuracy"] > 0.5


def test_every_prediction_tries_every_label_on_every_layer(vowel_task, tanh_layers):
    model = PhyLL(tanh_layers, n_classes=7, seed=0)
    model.evaluate(vowel_task.x_test[:10], vowel_task.y_test[:10])
    assert model.costs.eval_queries == model.costs.queries == 10 * 7 * 2
    assert [layer.queries for layer in tanh_layers] == [70, 70]

    model.step_epoch(vowel_task, evaluate=False)  # full batch: positives and negatives, once
    n = vowel_task.x_train.shape[0]
    assert model.costs.queries - model.costs.eval_queries == 2 * n * 2
    flops_per_pair = 2 * 40 * 20 * (10 * 3 + 1)  # 10 inner fwd+bwd steps, then one forward
    # the outputs' standardisation: 2 flops per element in evaluation, 6 in training
    standardise = 2 * (70 * 20 * 2) + 2 * (2 * n * 20 * 6)
    assert model.costs.digital_flops == pytest.approx(
        2 * 2 * n * flops_per_pair + 2 * 70 * 2 * 40 * 20 + standardise
    )


def test_the_same_seed_gives_the_same_run_and_another_seed_does_not(vowel_task, tanh_physics):
    def run(seed):
        model = PhyLL(
            [FunctionLayer(tanh_physics(), 20, 20)], n_classes=7, batch_size=64, seed=seed
        )
        model.fit(vowel_task, epochs=3, eval_every=3)
        return model

    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(p, q) for p, q in zip(a.digital.parameters(), b.digital.parameters()))
    assert a.history[-1]["layer_losses"] == b.history[-1]["layer_losses"]
    assert not torch.equal(a.digital[0].weight, c.digital[0].weight)


def test_sum_of_squares_goodness_also_trains(vowel_task, tanh_physics):
    model = PhyLL([FunctionLayer(tanh_physics(), 20, 20)], n_classes=7, goodness="sumsq", seed=0)
    model.fit(vowel_task, epochs=30, eval_every=30)
    assert model.history[-1]["test_accuracy"] > 0.5
    with pytest.raises(ValueError, match="goodness"):
        PhyLL([FunctionLayer(tanh_physics(), 20, 20)], n_classes=7, goodness="energy")


def test_a_diverging_loss_stops_training_before_any_update(vowel_task, tanh_physics):
    model = PhyLL([FunctionLayer(tanh_physics(), 20, 20)], n_classes=7, divergence_bound=1e-3)
    before = model.digital[0].weight.clone()
    with pytest.raises(TrainingDiverged, match="divergence_bound") as error:
        model.fit(vowel_task, epochs=5)
    assert error.value.epoch == 0 and error.value.loss > 1e-3
    assert torch.equal(model.digital[0].weight, before)


def test_a_callback_returning_false_stops_the_run(vowel_task, tanh_physics):
    model = PhyLL([FunctionLayer(tanh_physics(), 20, 20)], n_classes=7)
    seen = []
    history = model.fit(vowel_task, epochs=10, callback=lambda r: seen.append(r) or len(seen) < 3)
    assert len(history) == 3 == model.epoch and seen[-1]["epoch"] == 3


def test_any_physical_layer_works_even_one_built_from_torch_parameters(vowel_task):
    """A measurement carries no gradient, whatever the layer returns; a non-layer is refused."""
    weights = torch.nn.Parameter(torch.randn(20, 30, generator=torch.Generator().manual_seed(0)))

    class TorchModelLayer:  # returns a tensor attached to its own parameters
        n_in, n_out = 20, 30

        def __call__(self, x):
            return torch.sin(x @ weights / 5)

    class NumpyLayer:  # numpy all the way: float64 outputs, numpy integer widths
        n_in, n_out = np.int64(20), np.int64(20)

        def __call__(self, x):
            return np.tanh(np.asarray(x, dtype=np.float64) / 3)

    model = PhyLL([TorchModelLayer(), NumpyLayer()], n_classes=7, seed=0)
    model.fit(vowel_task, epochs=10, eval_every=10)
    assert model.history[-1]["test_accuracy"] > 0.5 and weights.grad is None
    json.dumps(model.checkpoint_state()[1])  # the checkpoint's metadata stays plain JSON
    # numpy in, same answer
    as_numpy = model.evaluate(vowel_task.x_test.numpy(), vowel_task.y_test.numpy())
    assert as_numpy == model.history[-1]["test_accuracy"]
    with pytest.raises(
        TypeError, match="not a PhysicalLayer: it needs positive int n_in and n_out"
    ):
        PhyLL([lambda x: x], n_classes=7)


@pytest.mark.parametrize(
    "units",
    [lambda y: 1e-6 * y, lambda y: 1000.0 + y, lambda y: 3000.0 + 50.0 * y],
    ids=["power-in-watts", "common-mode-offset", "camera-dark-level"],
)
def test_the_units_of_a_measurement_do_not_matter(vowel_task, units):
    """Speckle in other units: at chance without the outputs' standardisation, learnt with it."""
    tm = torch.randn(20, 20, generator=torch.Generator().manual_seed(1), dtype=torch.cfloat)
    speckle = lambda x: units((torch.exp(1j * x) @ (tm / 20**0.5)).abs() ** 2)  # noqa: E731
    accuracy = {}
    for standardise in (False, True):
        layers = [FunctionLayer(speckle, 20, 20), FunctionLayer(speckle, 20, 20)]
        model = PhyLL(layers, n_classes=7, skip=False, standardise=standardise, seed=0)
        model.fit(vowel_task, epochs=60, eval_every=60)
        accuracy[standardise] = model.evaluate(vowel_task.x_test, vowel_task.y_test)
    # measured over 3 seeds at 200 epochs: 0.28-0.81 raw, 0.99 standardised
    assert accuracy[True] >= 0.8 and accuracy[True] > accuracy[False] + 0.1


def test_standardisation_statistics_are_checkpointed(vowel_task, tanh_physics):
    layer = FunctionLayer(lambda x: 1000.0 + tanh_physics()(x), 20, 20)
    model = PhyLL([layer], n_classes=7, batch_size=64, seed=0)
    model.fit(vowel_task, epochs=2)
    arrays, meta = model.checkpoint_state()
    meta = json.loads(json.dumps(meta))
    again = PhyLL([layer], n_classes=7, batch_size=64, seed=0)
    again.restore_state(arrays, meta)
    assert torch.equal(again.standardisers[0].mean, model.standardisers[0].mean)
    assert float(model.standardisers[0].mean.mean()) == pytest.approx(1000.0, abs=1.0)
    model.fit(vowel_task, epochs=1)
    again.fit(vowel_task, epochs=1)
    assert model.history[-1]["test_accuracy"] == again.history[-1]["test_accuracy"]
    # a trainer built differently is refused with what differs
    other = PhyLL([layer], n_classes=7, batch_size=64, lr=0.1, seed=0)
    with pytest.raises(ValueError, match="lr: checkpoint 0.0005, this trainer 0.1"):
        other.restore_state(arrays, meta)


def test_data_in_any_reasonable_form_trains_and_scores(vowel_task, tanh_physics):
    """numpy arrays, float64, label lists and label columns, as a notebook might hold them."""
    import types

    ds = types.SimpleNamespace(
        x_train=vowel_task.x_train.double().numpy(), y_train=vowel_task.y_train.tolist(),
        x_test=vowel_task.x_test.double(), y_test=vowel_task.y_test.numpy()[:, None],
        n_classes=7, n_label_slots=8,
    )  # fmt: skip
    model = PhyLL([FunctionLayer(tanh_physics(), 20, 20)], n_classes=7, seed=0)
    history = model.fit(ds, epochs=20, eval_every=20)
    reference = PhyLL([FunctionLayer(tanh_physics(), 20, 20)], n_classes=7, seed=0)
    reference.fit(vowel_task, epochs=20, eval_every=20)
    assert history[-1]["test_accuracy"] == reference.history[-1]["test_accuracy"]
    assert model.evaluate(ds.x_test, ds.y_test) == reference.evaluate(
        vowel_task.x_test, vowel_task.y_test
    )
    history.append("mine")  # the returned history is a copy
    assert model.history[-1] != "mine"
    with pytest.raises(ValueError, match="52 rows of x but 1 labels"):
        model.evaluate(vowel_task.x_test, vowel_task.y_test[:1])
    with pytest.raises(ValueError, match="non-integer labels"):
        model.evaluate(vowel_task.x_test, vowel_task.y_test + 0.5)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        PhyLL([FunctionLayer(tanh_physics(), 20, 20)], n_classes=7, batch_size=-3)


def test_a_layer_gets_its_own_copy_of_its_input(vowel_task):
    """An actuator model that clips its drive in place must not change the skip input."""

    class ClipsInPlace:
        n_in = n_out = 20

        def __call__(self, x):
            x.clamp_(0.0, 0.1)
            return torch.tanh(x)

    layer = ClipsInPlace()
    x = vowel_task.x_train[:4].clone()
    before = x.clone()
    model = PhyLL([layer], n_classes=7, seed=0)
    model._layer_input(0, x)
    assert torch.equal(x, before)


def test_a_checkpoint_from_before_standardisation_says_how_to_continue_it(vowel_task, tanh_physics):
    layer = FunctionLayer(tanh_physics(), 20, 20)
    old = PhyLL([layer], n_classes=7, standardise=False, seed=0)
    old.fit(vowel_task, epochs=1)
    arrays, meta = old.checkpoint_state()
    del meta["config"]["standardise"]  # as written before the option existed
    meta["config"]["batch_size"] = 0  # and full batch spelt 0
    with pytest.raises(ValueError, match="standardise: checkpoint False, this trainer True"):
        PhyLL([layer], n_classes=7, seed=0).restore_state(arrays, meta)
    again = PhyLL([layer], n_classes=7, standardise=False, seed=0)
    again.restore_state(arrays, meta)
    assert again.epoch == 1
