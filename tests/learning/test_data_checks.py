"""Bad data and bad settings are refused up front with a message, never trained on silently."""

import dataclasses

import numpy as np
import pytest
import torch

from labpnn.learning import DigitalTwin, InSilicoTrainer, PhyLL, PhysicsAwareTrainer, SPSATrainer
from labpnn.physical import FunctionLayer


def _with_nan_rows(ds, split, rows):
    x = getattr(ds, f"x_{split}").clone()
    x[rows, 9] = float("nan")
    x[rows[-1], 0] = float("inf")
    return dataclasses.replace(ds, **{f"x_{split}": x})


@pytest.mark.parametrize("split", ["train", "test"])
def test_nan_in_the_data_is_refused_naming_the_rows_not_blamed_on_the_instrument(
    vowel_task, tanh_physics, split
):
    bad = _with_nan_rows(vowel_task, split, [3, 17])
    fn = tanh_physics()
    for trainer in (
        PhyLL([FunctionLayer(fn, 20, 20)], n_classes=7),
        PhysicsAwareTrainer([FunctionLayer(fn, 20, 20)], [fn], n_classes=7),
    ):
        with pytest.raises(
            ValueError, match=rf"x_{split} holds NaN or Inf in 2 row\(s\) \(3, 17\)"
        ):
            trainer.fit(bad, epochs=1)
        assert trainer.epoch == 0 and trainer.costs.queries == 0
        with pytest.raises(ValueError, match=r"x holds NaN or Inf in 2 row\(s\) \(3, 17\)"):
            trainer.evaluate(getattr(bad, f"x_{split}"), getattr(bad, f"y_{split}"))


def test_an_empty_training_set_says_so(vowel_task, tanh_physics):
    empty = dataclasses.replace(
        vowel_task, x_train=vowel_task.x_train[:0], y_train=vowel_task.y_train[:0]
    )
    for trainer in (
        PhyLL([FunctionLayer(tanh_physics(), 20, 20)], n_classes=7),
        SPSATrainer([FunctionLayer(tanh_physics(), 20, 20)], n_classes=7),
    ):
        with pytest.raises(ValueError, match="no training rows"):
            trainer.fit(empty, epochs=1)


def test_test_labels_out_of_range_are_refused_not_scored_as_zero(vowel_task, tanh_physics):
    model = PhyLL([FunctionLayer(tanh_physics(), 20, 20)], n_classes=7)
    with pytest.raises(ValueError, match=r"0\.\.6 \(n_classes=7\); the labels y span 7\.\.13"):
        model.evaluate(vowel_task.x_test, vowel_task.y_test + 7)
    shifted = dataclasses.replace(vowel_task, y_test=vowel_task.y_test + 1)
    with pytest.raises(ValueError, match=r"the test labels span 1\.\.7"):
        model.fit(shifted, epochs=1)
    assert model.costs.queries == 0


def _recording(fn, calls):
    def layer(x):
        calls.append(x.shape[0])
        return fn(x)

    return layer


def test_evaluation_sends_a_layer_batches_not_the_whole_test_set(vowel_task, tanh_physics):
    calls = []
    layer = FunctionLayer(_recording(tanh_physics(), calls), 20, 20)
    model = PhyLL([layer], n_classes=7, batch_size=16, seed=0)
    model.fit(vowel_task, epochs=3, eval_every=3)
    calls.clear()
    chunked = model.goodness_per_label(vowel_task.x_test)
    assert calls == [16 * 7, 16 * 7, 16 * 7, 4 * 7]  # 52 samples, every label with each
    model.batch_size = None  # full batch: about 1024 rows a call, here all 52 × 7 at once
    calls.clear()
    whole = model.goodness_per_label(vowel_task.x_test)
    assert calls == [52 * 7]
    assert torch.equal(chunked, whole)


def test_full_batch_evaluation_of_many_rows_is_chunked_too(digit_task):
    calls = []
    matrix = torch.randn(74, 74, generator=torch.Generator().manual_seed(3)) / 74**0.5
    layer = FunctionLayer(_recording(lambda x: torch.tanh(x @ matrix), calls), 74, 74)
    model = PhyLL([layer], n_classes=10, seed=0)  # batch_size=None
    model.step_epoch(digit_task, evaluate=False)
    calls.clear()
    predicted = model.predict(digit_task.x_train)  # 1437 samples × 10 labels = 14,370 rows
    assert max(calls) <= 1024 and sum(calls) == 14_370
    model.batch_size = 10**6
    assert torch.equal(model.predict(digit_task.x_train), predicted)

    pat_calls = []
    fn = lambda x: torch.tanh(x @ matrix)  # noqa: E731
    pat = PhysicsAwareTrainer([FunctionLayer(_recording(fn, pat_calls), 74, 74)], [fn], 10)
    pat.step_epoch(digit_task, evaluate=False)
    pat_calls.clear()
    scores = pat.logits(digit_task.x_train)
    assert pat_calls == [1024, 1437 - 1024]
    pat.batch_size = 10**6
    assert torch.equal(pat.logits(digit_task.x_train), scores)


def test_a_one_wide_map_with_cosine_goodness_is_refused_as_untrainable(tanh_physics):
    wide = FunctionLayer(tanh_physics(), 20, 20)
    one_in = FunctionLayer(lambda x: torch.tanh(x), 1, 1)
    with pytest.raises(ValueError, match="W_0 would have one output \\(layer 1's n_in is 1\\)"):
        PhyLL([wide, one_in], n_classes=7)
    with pytest.raises(ValueError, match="W_0 would have one output \\(out_width is 1\\).*sumsq"):
        PhyLL([wide], n_classes=7, out_width=1)
    PhyLL([wide], n_classes=7, out_width=1, goodness="sumsq")  # sum of squares can learn


def test_pat_refuses_twins_that_do_not_fit_their_layers(tanh_physics):
    fn = tanh_physics()
    layer = FunctionLayer(fn, 20, 20, name="bench")
    narrow = tanh_physics(20, 10)
    with pytest.raises(
        ValueError, match=r"twin 0 .* of physical layer 0 .*bench.* maps \[2, 20\] to \(2, 10\)"
    ):
        PhysicsAwareTrainer([layer], [narrow], n_classes=7)
    with pytest.raises(
        ValueError, match="twin 0 .* fails on an input of the layer's width n_in=20"
    ):
        PhysicsAwareTrainer([layer], [tanh_physics(12, 20)], n_classes=7)
    with pytest.raises(ValueError, match="twin 1 .* returns no gradient"):
        PhysicsAwareTrainer([layer, layer], [fn, lambda x: fn(x).detach()], n_classes=7)
    with pytest.raises(TypeError, match="twin 0 .* is not callable"):
        PhysicsAwareTrainer([layer], ["twin.npz"], n_classes=7)
    with pytest.raises(ValueError, match="is 20->12 wide, the layer 20->20"):
        InSilicoTrainer([layer], [DigitalTwin(20, 12, hidden=(4,))], n_classes=7)


def test_the_width_error_says_where_the_width_came_from(vowel_task, digit_task, tanh_physics):
    layer = FunctionLayer(tanh_physics(), 20, 20)
    with pytest.raises(ValueError, match="width 20 \\(its first layer's n_in\\)"):
        SPSATrainer([layer], n_classes=7).fit(digit_task, epochs=1)
    explicit = SPSATrainer([layer], n_classes=7, n_in=12)
    with pytest.raises(
        ValueError, match="width 12 \\(the n_in=12 it was built with\\).*build it with n_in"
    ):
        explicit.fit(vowel_task, epochs=1)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda fn: PhyLL([FunctionLayer(fn, 20, 20)], n_classes=7.9), ValueError, "n_classes must be a positive integer, got 7.9"),
        (lambda fn: FunctionLayer(fn, n_in=20.5, n_out=20), ValueError, "n_in must be a positive integer, got 20.5"),
        (lambda fn: FunctionLayer(fn, n_in="20", n_out=20), TypeError, "n_in must be a positive integer, got '20' \\(str\\)"),
        (lambda fn: FunctionLayer(fn, n_in=20, n_out=0), ValueError, "n_out must be a positive integer, got 0"),
        (lambda fn: PhysicsAwareTrainer([FunctionLayer(fn, 20, 20)], [fn], n_classes=7, n_in=19.5), ValueError, "n_in must be a positive integer"),
        (lambda fn: SPSATrainer([FunctionLayer(fn, 20, 20)], 7, n_perturbations=1.5), ValueError, "n_perturbations must be"),
    ],
)  # fmt: skip
def test_counts_and_widths_must_be_whole_numbers(tanh_physics, build, error, message):
    with pytest.raises(error, match=message):
        build(tanh_physics())


def test_whole_numbers_in_other_types_are_fine(tanh_physics):
    layer = FunctionLayer(tanh_physics(), np.int64(20), 20.0)
    assert (layer.n_in, layer.n_out) == (20, 20) and type(layer.n_out) is int
    assert PhyLL([layer], n_classes=np.int64(7)).n_classes == 7
