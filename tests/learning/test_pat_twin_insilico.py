"""PAT's backward pass is the twin's Jacobian at the measured input; twins are fitted and costed."""

import pytest
import torch
import torch.nn.functional as F

from labpnn.learning import (
    DigitalTwin,
    InSilicoTrainer,
    PhysicsAwareStep,
    PhysicsAwareTrainer,
    fit_twin,
)
from labpnn.physical import FunctionLayer


def _digital_gradients(trainer, x, y, physical_step):
    trainer.network.zero_grad()
    F.cross_entropy(trainer.network(x, physical_step), y).backward()
    return [p.grad.clone() for p in trainer.network.parameters()]


@pytest.mark.parametrize("skip", [False, True])
def test_with_an_exact_twin_pat_gradients_equal_backprop_through_the_physics(
    vowel_task, tanh_physics, skip
):
    physics = [tanh_physics(seed=1), tanh_physics(seed=2)]
    layers = [FunctionLayer(fn, 20, 20) for fn in physics]
    trainer = PhysicsAwareTrainer(layers, physics, n_classes=7, seed=0, skip=skip)
    # with skip, the maps after each physical layer also read its input: [P(a) | a]
    after = 20 + (20 if skip else 0)
    assert trainer.network.digital[1].in_features == trainer.network.readout.in_features == after
    x, y = vowel_task.x_train[:32], vowel_task.y_train[:32]

    pat = _digital_gradients(
        trainer, x, y, lambda k, h: PhysicsAwareStep.apply(h, layers[k], physics[k])
    )
    backprop = _digital_gradients(trainer, x, y, lambda k, h: physics[k](h))
    for a, b in zip(pat, backprop):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert sum(layer.queries for layer in layers) == 2 * 32


def test_pat_uses_the_measured_value_forward_and_only_the_twin_jacobian_backward(tanh_physics):
    physics = tanh_physics(seed=1)
    # The hardware has an output offset the twin does not know about: same Jacobian, other values.
    layer = FunctionLayer(lambda x: physics(x) + 0.3, 20, 20)
    h = torch.randn(8, 20, requires_grad=True)
    measured = PhysicsAwareStep.apply(h, layer, physics)
    torch.testing.assert_close(measured, physics(h).detach() + 0.3)
    grad_output = torch.randn(8, 20)
    (pat_gradient,) = torch.autograd.grad(measured, h, grad_output)
    (true_gradient,) = torch.autograd.grad(physics(h), h, grad_output)
    torch.testing.assert_close(pat_gradient, true_gradient)


def test_pat_still_trains_with_a_mismatched_twin(vowel_task, tanh_physics):
    true_physics = tanh_physics(seed=1)
    # The twin's matrix is off by 30% of its own size (a poor but informative model).
    generator = torch.Generator().manual_seed(1)
    matrix = torch.randn(20, 20, generator=generator) / 20**0.5
    error = 0.3 * torch.randn(20, 20, generator=torch.Generator().manual_seed(9)) / 20**0.5
    wrong_twin = lambda x: torch.tanh(x @ (matrix + error))  # noqa: E731
    layer = FunctionLayer(true_physics, 20, 20)
    trainer = PhysicsAwareTrainer([layer], [wrong_twin], n_classes=7, lr=1e-2, seed=0)
    trainer.fit(vowel_task, epochs=100, eval_every=100)
    assert trainer.history[-1]["test_accuracy"] >= 0.75  # chance is 0.14
    assert trainer.history[-1]["loss"] < 0.5 * trainer.history[0]["loss"]


def test_fit_twin_models_a_smooth_layer_and_books_its_data(tanh_physics):
    layer = FunctionLayer(tanh_physics(seed=4), 20, 20)
    twin = fit_twin(
        layer, 1000, lambda n, g: torch.randn(n, 20, generator=g), hidden=(64,), epochs=60, seed=0
    )
    assert isinstance(twin, DigitalTwin) and layer.queries == 1000
    assert twin.report["queries"] == 1000 and twin.report["digital_flops"] > 0
    assert twin.report["validation_nrmse"] < 0.3  # 1.0 would be "no better than the mean"
    x = torch.randn(5, 20, requires_grad=True)
    twin(x).sum().backward()
    assert x.grad is not None and all(p.grad is None for p in twin.parameters())

    trainer = PhysicsAwareTrainer([layer], [twin], n_classes=7)
    assert trainer.costs.twin_queries == trainer.costs.queries == 1000


def test_fit_twin_reports_every_epoch_and_stops_when_the_callback_raises(tanh_physics):
    layer = FunctionLayer(tanh_physics(seed=4), 20, 20)
    sample = lambda n, g: torch.randn(n, 20, generator=g)  # noqa: E731
    seen = []
    fit_twin(layer, 400, sample, hidden=(32,), epochs=30, seed=0,
             on_epoch=lambda done, total, loss: seen.append((done, total, loss)))  # fmt: skip
    assert [(d, t) for d, t, _ in seen] == [(k, 30) for k in range(1, 31)]
    assert seen[-1][2] < 0.8 * seen[0][2]  # the fit's own loss, falling

    class Stop(Exception):
        pass

    def abort(done, total, loss):
        if done == 3:
            raise Stop

    with pytest.raises(Stop):
        fit_twin(layer, 100, sample, hidden=(8,), epochs=50, on_epoch=abort)


def test_fit_twin_drops_bad_frames_and_checks_the_sampler(tanh_physics):
    physics = tanh_physics(seed=4)

    def sometimes_nan(x):
        y = physics(x)
        y[::10] = float("nan")
        return y

    layer = FunctionLayer(sometimes_nan, 20, 20)
    twin = fit_twin(
        layer, 200, lambda n, g: torch.randn(n, 20, generator=g), hidden=(16,), epochs=2
    )
    assert twin.report["skipped_samples"] == 20
    with pytest.raises(ValueError, match="input_sampler returned shape"):
        fit_twin(layer, 10, lambda n, g: torch.randn(n, 3, generator=g))


def test_in_silico_training_queries_the_hardware_only_to_evaluate(vowel_task, tanh_physics):
    physics = tanh_physics(seed=1)
    layer = FunctionLayer(physics, 20, 20)
    trainer = InSilicoTrainer([layer], [physics], n_classes=7, lr=1e-2, seed=0)
    trainer.fit(vowel_task, epochs=60, eval_every=60)
    assert layer.queries == trainer.costs.eval_queries == 206 + 52
    assert trainer.history[-1]["test_accuracy"] >= 0.75
    # With a perfect twin, deployment matches what the twin predicts.
    on_twin = trainer.twin_logits(vowel_task.x_test).argmax(1)
    assert torch.equal(on_twin, trainer.predict(vowel_task.x_test))


def test_pat_skips_a_bad_frame_without_touching_the_weights(vowel_task, tanh_physics):
    physics = tanh_physics(seed=1)
    broken = FunctionLayer(lambda x: physics(x) * float("nan"), 20, 20)
    trainer = PhysicsAwareTrainer([broken], [physics], n_classes=7)
    before = [p.clone() for p in trainer.network.parameters()]
    trainer.step_epoch(vowel_task, evaluate=False)
    assert trainer.costs.skipped_batches == 1
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.network.parameters()))


def test_a_checkpoint_without_the_skip_is_refused_by_a_trainer_with_it(tanh_physics):
    physics = tanh_physics(seed=1)
    plain = PhysicsAwareTrainer([FunctionLayer(physics, 20, 20)], [physics], n_classes=7)
    arrays, meta = plain.checkpoint_state()
    skipping = PhysicsAwareTrainer(
        [FunctionLayer(physics, 20, 20)], [physics], n_classes=7, skip=True
    )
    with pytest.raises(ValueError, match="skip: checkpoint False, this trainer True"):
        skipping.restore_state(dict(arrays), meta)
    del meta["config"]["skip"]  # a checkpoint from before the option: no skip
    with pytest.raises(ValueError, match="skip"):
        skipping.restore_state(dict(arrays), meta)
    plain.restore_state(dict(arrays), meta)
