"""PAT, in-silico and SPSA train the same whatever the units of a measurement (standardise)."""

import json

import pytest
import torch

from labpnn.learning import InSilicoTrainer, PhysicsAwareTrainer, SPSATrainer
from labpnn.physical import FunctionLayer

MATRIX = torch.randn(20, 20, generator=torch.Generator().manual_seed(3)) / 20**0.5
SPECKLE_TM = torch.randn(20, 20, generator=torch.Generator().manual_seed(1), dtype=torch.cfloat)

UNITS = {
    "tanh": lambda x: torch.tanh(x @ MATRIX),
    "tanh x 1e-4": lambda x: 1e-4 * torch.tanh(x @ MATRIX),
    "tanh + 100": lambda x: torch.tanh(x @ MATRIX) + 100,
    "camera dark level": lambda x: 3000 + 50 * torch.tanh(x @ MATRIX),
    "speckle x 1e6": lambda x: 1e6 * (torch.exp(1j * x) @ (SPECKLE_TM / 20**0.5)).abs() ** 2,
}


@pytest.mark.parametrize("units", sorted(UNITS))
def test_pat_and_in_silico_learn_the_vowels_in_any_units(vowel_task, units):
    fn = UNITS[units]
    for cls in (PhysicsAwareTrainer, InSilicoTrainer):
        layers = [FunctionLayer(fn, 20, 20), FunctionLayer(fn, 20, 20)]
        trainer = cls(layers, [fn, fn], n_classes=7, lr=1e-2, seed=0)
        trainer.fit(vowel_task, epochs=40, eval_every=40)
        # chance is 0.14; measured 0.98-1.00 for every unit (raw: 0.13-0.15 or diverged)
        assert trainer.history[-1]["test_accuracy"] >= 0.7, cls.__name__


@pytest.mark.parametrize("units", ["tanh", "camera dark level", "speckle x 1e6"])
def test_spsa_learns_in_any_units(vowel_task, units):
    model = SPSATrainer([FunctionLayer(UNITS[units], 20, 20)], 7, lr=1e-2, seed=0)
    model.fit(vowel_task, epochs=100, eval_every=100)
    # chance is 0.14; measured 0.56-0.58 (raw, the dark level stays at 0.13)
    assert model.history[-1]["test_accuracy"] >= 0.4


def test_without_standardisation_a_dark_level_leaves_pat_at_chance(vowel_task):
    """The reason for the default: the same physics on a dark level of 3000 does not train raw."""
    fn = UNITS["camera dark level"]
    accuracy = {}
    for standardise in (False, True):
        layers = [FunctionLayer(fn, 20, 20), FunctionLayer(fn, 20, 20)]
        trainer = PhysicsAwareTrainer(layers, [fn, fn], 7, lr=1e-2, standardise=standardise)
        trainer.fit(vowel_task, epochs=40, eval_every=40)
        accuracy[standardise] = trainer.history[-1]["test_accuracy"]
    assert accuracy[False] < 0.3 and accuracy[True] >= 0.7


def test_statistics_come_from_training_and_are_checkpointed(vowel_task):
    fn = UNITS["tanh + 100"]
    layer = FunctionLayer(fn, 20, 20)
    trainer = PhysicsAwareTrainer([layer], [fn], 7, batch_size=64, seed=0)
    trainer.fit(vowel_task, epochs=2)
    standardiser = trainer.network.standardisers[0]
    assert float(standardiser.mean.mean()) == pytest.approx(100.0, abs=1.0)
    count = float(standardiser.count)
    assert count == 2 * 206  # training rows only: the evaluation of both splits added none
    trainer.evaluate(vowel_task.x_test, vowel_task.y_test)
    assert float(standardiser.count) == count

    arrays, meta = trainer.checkpoint_state()
    meta = json.loads(json.dumps(meta))
    again = PhysicsAwareTrainer([layer], [fn], 7, batch_size=64, seed=0)
    again.restore_state(arrays, meta)
    assert torch.equal(again.network.standardisers[0].mean, standardiser.mean)
    assert again.evaluate(vowel_task.x_test, vowel_task.y_test) == trainer.evaluate(
        vowel_task.x_test, vowel_task.y_test
    )


def test_a_hybrid_checkpoint_from_before_standardisation_restores_without_it(vowel_task):
    fn = UNITS["tanh"]
    old = SPSATrainer([FunctionLayer(fn, 20, 20)], 7, standardise=False, seed=0)
    old.fit(vowel_task, epochs=1)
    arrays, meta = old.checkpoint_state()
    del meta["config"]["standardise"]  # as written before the option existed
    with pytest.raises(ValueError, match="standardise: checkpoint False, this trainer True"):
        SPSATrainer([FunctionLayer(fn, 20, 20)], 7, seed=0).restore_state(arrays, meta)
    again = SPSATrainer([FunctionLayer(fn, 20, 20)], 7, standardise=False, seed=0)
    again.restore_state(arrays, meta)
    assert again.epoch == 1


def test_pat_gradient_passes_the_standardiser_with_its_statistics_fixed(vowel_task):
    """With an exact twin, PAT's gradient equals backprop through physics and the affine map."""
    fn = UNITS["camera dark level"]
    layer = FunctionLayer(fn, 20, 20)
    trainer = PhysicsAwareTrainer([layer], [fn], 7, seed=0)
    trainer.fit(vowel_task, epochs=1, eval_every=1)
    x, y = vowel_task.x_train[:32], vowel_task.y_train[:32]

    def gradients(step):
        trainer.network.zero_grad()
        torch.nn.functional.cross_entropy(trainer.network(x, step), y).backward()
        return [p.grad.clone() for p in trainer.network.parameters()]

    pat = gradients(trainer._training_step)
    backprop = gradients(lambda k, h: fn(h))
    for a, b in zip(pat, backprop):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
