"""Control tests run single-threaded on reduced sizes: 16×16 macropixels onto 8×8 digits."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def small_digits():
    """8×8 held-out and training digits (scikit-learn's native size: no resampling)."""
    from labpnn.control.targets import digit_targets

    test, _ = digit_targets((8, 8), "test", 40)
    train, _ = digit_targets((8, 8), "train", 500)
    return train.reshape(len(train), -1), test.reshape(len(test), -1)
