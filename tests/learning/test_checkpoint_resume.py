"""A run interrupted, checkpointed and restored continues exactly as an uninterrupted one."""

import json

import numpy as np
import pytest
import torch

from labpnn.learning import (
    DigitalTwin,
    ForwardForward,
    InSilicoTrainer,
    PhyLL,
    PhysicsAwareTrainer,
    SPSATrainer,
)


class NoisySimulatedLayer:
    """A simulated physical layer with a clock, read noise and a checkpointable world state."""

    def __init__(self, seed: int, matrix_seed: int = 7) -> None:
        self.n_in = self.n_out = 20
        generator = torch.Generator().manual_seed(matrix_seed)
        self.matrix = torch.randn(20, 20, generator=generator) / 20**0.5
        self.noise = torch.Generator().manual_seed(seed)
        self.numpy_rng = np.random.default_rng(seed)
        self.clock_s = 0.0

    def __call__(self, x):
        self.clock_s += 1e-3 * x.shape[0] + self.numpy_rng.uniform(0, 1e-4)
        read_noise = 0.01 * torch.randn(x.shape[0], 20, generator=self.noise)
        return torch.tanh(x @ self.matrix) + read_noise

    def state_dict(self):
        return {
            "noise": self.noise.get_state(),
            "world": {"clock_s": self.clock_s, "numpy_rng": self.numpy_rng.bit_generator.state},
        }

    def load_state_dict(self, state):
        self.noise.set_state(state["noise"])
        self.clock_s = state["world"]["clock_s"]
        self.numpy_rng.bit_generator.state = state["world"]["numpy_rng"]


def _twin(x):
    generator = torch.Generator().manual_seed(7)
    return torch.tanh(x @ (torch.randn(20, 20, generator=generator) / 20**0.5))


TRAINERS = {
    "phyll": lambda layer, seed: PhyLL([layer], 7, batch_size=64, seed=seed),
    "ff": lambda layer, seed: ForwardForward(20, 7, hidden=(32, 32), batch_size=64, seed=seed),
    "pat": lambda layer, seed: PhysicsAwareTrainer([layer], [_twin], 7, batch_size=64, seed=seed),
    "insilico": lambda layer, seed: InSilicoTrainer([layer], [_twin], 7, batch_size=64, seed=seed),
    "spsa": lambda layer, seed: SPSATrainer([layer], 7, batch_size=64, seed=seed),
}


def _without_wall_time(history):
    return [{k: v for k, v in record.items() if k != "hardware_s"} for record in history]


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_restored_run_continues_bit_identically(name, vowel_task):
    make = TRAINERS[name]
    uninterrupted = make(NoisySimulatedLayer(seed=1), seed=0)
    uninterrupted.fit(vowel_task, epochs=4, eval_every=2)

    first_half_layer = NoisySimulatedLayer(seed=1)
    first_half = make(first_half_layer, seed=0)
    first_half.fit(vowel_task, epochs=2, eval_every=2)
    arrays, meta = first_half.checkpoint_state()
    meta = json.loads(json.dumps(meta))  # as stored in a run file: JSON, no pickle
    assert all(isinstance(a, np.ndarray) for a in arrays.values())

    # A fresh process: another world seed and trainer seed, overwritten by the checkpoint.
    resumed_layer = NoisySimulatedLayer(seed=99)
    resumed = make(resumed_layer, seed=5)
    resumed.restore_state(arrays, meta)
    assert resumed.epoch == 2
    if name != "ff":
        assert resumed_layer.clock_s == first_half_layer.clock_s
    resumed.fit(vowel_task, epochs=2, eval_every=2)

    final_a, _ = uninterrupted.checkpoint_state()
    final_b, _ = resumed.checkpoint_state()
    assert final_a.keys() == final_b.keys()
    for key in final_a:
        np.testing.assert_allclose(final_a[key], final_b[key], atol=1e-6, err_msg=key)
    assert _without_wall_time(resumed.history) == _without_wall_time(uninterrupted.history)
    assert resumed.costs.queries == uninterrupted.costs.queries


def test_a_checkpoint_refuses_another_trainer(vowel_task, tanh_layers):
    arrays, meta = PhyLL(tanh_layers, 7).checkpoint_state()
    with pytest.raises(ValueError, match="PhyLL"):
        SPSATrainer(tanh_layers, 7).restore_state(arrays, meta)


def test_a_fitted_twin_travels_with_the_pat_checkpoint(vowel_task):
    fitted = DigitalTwin(20, 20, hidden=(16,), generator=torch.Generator().manual_seed(1))
    trainer = PhysicsAwareTrainer([NoisySimulatedLayer(seed=1)], [fitted], 7)
    arrays, meta = trainer.checkpoint_state()
    blank = DigitalTwin(20, 20, hidden=(16,), generator=torch.Generator().manual_seed(2))
    PhysicsAwareTrainer([NoisySimulatedLayer(seed=1)], [blank], 7).restore_state(arrays, meta)
    x = torch.randn(4, 20)
    assert torch.equal(blank(x), fitted(x))
