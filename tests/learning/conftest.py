"""Shared fixtures for the learning tests: single-threaded torch, the tasks, simple physics."""

import pytest
import torch

from labpnn.datasets import digits, vowels
from labpnn.physical import FunctionLayer

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def vowel_task():
    """The 7-vowel task (CSV if LABPNN_VOWELS_CSV is set, else the synthetic stand-in)."""
    return vowels(seed=0)


@pytest.fixture(scope="session")
def digit_task():
    return digits(seed=0)


def _tanh_physics(n_in: int = 20, n_out: int = 20, seed: int = 123, gain: float = 1.0):
    """A fixed nonlinear 'physical' transform x -> tanh(x M), M Gaussian with variance gain²/n_in."""
    generator = torch.Generator().manual_seed(seed)
    matrix = gain * torch.randn(n_in, n_out, generator=generator) / n_in**0.5
    return lambda x: torch.tanh(x @ matrix)


@pytest.fixture(scope="session")
def tanh_physics():
    """Factory of fixed nonlinear physical functions: ``tanh_physics(n_in, n_out, seed)``."""
    return _tanh_physics


@pytest.fixture
def tanh_layers():
    """Two fixed nonlinear physical layers of width 20 (different random matrices)."""
    return [
        FunctionLayer(_tanh_physics(seed=123), 20, 20, name="tanh-a"),
        FunctionLayer(_tanh_physics(seed=321), 20, 20, name="tanh-b"),
    ]
