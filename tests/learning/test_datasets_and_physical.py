"""Lab-notebook checks of the data sets and of the plain-function physical layers."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from labpnn.datasets import VOWELS_CSV_ENV, digits, embed_labels, vowels
from labpnn.learning import PhyLL
from labpnn.physical import FunctionLayer, IdentityLayer, PhysicalLayer, RandomLinearLayer

# The real data, where this checkout has it: the variable, else ../shared/datasets beside the repo.
CSV = os.environ.get(VOWELS_CSV_ENV) or str(
    Path(__file__).resolve().parents[3] / "shared" / "datasets" / "hillenbrand-women-7vowels.csv"
)


def test_synthetic_vowels_have_the_paper_layout(monkeypatch):
    monkeypatch.delenv(VOWELS_CSV_ENV, raising=False)
    ds = vowels(seed=0)
    assert ds.meta["source"] == "synthetic"
    assert (ds.n_classes, ds.n_label_slots, ds.n_features, ds.n_inputs) == (7, 8, 12, 20)
    assert ds.x_train.shape == (206, 20) and ds.x_test.shape == (52, 20)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert torch.all(ds.x_train[:, :8] == 0) and torch.all(ds.x_test[:, :8] == 0)
    features = torch.cat([ds.x_train, ds.x_test])[:, 8:]
    assert features.min().item() == pytest.approx(0.0, abs=1e-6)
    # z-scored then shifted: every column has unit spread.
    assert features.std(dim=0, unbiased=False).numpy() == pytest.approx(np.ones(12), rel=1e-4)
    # Stratified: every vowel is in the test split 7 or 8 times.
    assert sorted(torch.bincount(ds.y_test, minlength=7).tolist()) == [7, 7, 7, 7, 8, 8, 8]


def test_the_split_depends_on_the_seed_and_only_on_it(monkeypatch):
    monkeypatch.delenv(VOWELS_CSV_ENV, raising=False)
    assert torch.equal(vowels(seed=3).x_test, vowels(seed=3).x_test)
    assert not torch.equal(vowels(seed=3).x_test, vowels(seed=4).x_test)


@pytest.mark.skipif(not Path(CSV).is_file(), reason="the Hillenbrand CSV is not on this machine")
def test_csv_vowels_resemble_the_synthetic_stand_in(monkeypatch):
    monkeypatch.delenv(VOWELS_CSV_ENV, raising=False)
    real = vowels(seed=0, path=CSV)
    assert real.meta["source"] == "hillenbrand-csv" and real.meta["path"] == CSV
    assert real.x_train.shape == (206, 20) and torch.all(real.x_train[:, :8] == 0)
    # Same per-vowel means up to sampling noise of ~37 tokens and the shift by a global minimum.
    real_means, synthetic_means = _centred_class_means(real), _centred_class_means(vowels(seed=0))
    assert (real_means - synthetic_means).abs().max() < 0.6

    monkeypatch.setenv(VOWELS_CSV_ENV, CSV)
    assert vowels(seed=0).meta["source"] == "hillenbrand-csv"


def _centred_class_means(ds):
    x = torch.cat([ds.x_train, ds.x_test])[:, 8:]
    y = torch.cat([ds.y_train, ds.y_test])
    means = torch.stack([x[y == c].mean(dim=0) for c in range(7)])
    return means - means.mean()


def test_a_missing_explicit_csv_says_where_to_put_it(tmp_path):
    missing = tmp_path / "vowels.csv"
    with pytest.raises(FileNotFoundError) as error:
        vowels(path=missing)
    message = str(error.value)
    assert str(missing) in message and VOWELS_CSV_ENV in message and "synthetic" in message


def test_digits_have_ten_slots_and_unit_range(digit_task):
    ds = digit_task
    assert (ds.n_inputs, ds.n_classes, ds.n_label_slots) == (74, 10, 10)
    assert ds.x_train.shape == (1437, 74) and ds.x_test.shape == (360, 74)
    assert torch.all(ds.x_train[:, :10] == 0)
    assert ds.x_train.min() >= 0 and ds.x_train.max() == 1
    assert digits(seed=0, n_label_slots=12).n_inputs == 76


def test_embed_labels_writes_the_loudest_feature_into_the_label_slot():
    x = torch.tensor([[9.0, 9.0, 1.0, -3.0], [0.0, 0.0, 2.0, 0.5]])
    embedded = embed_labels(x, torch.tensor([1, 0]), n_label_slots=2)
    assert embedded.tolist() == [[0.0, 3.0, 1.0, -3.0], [2.0, 0.0, 2.0, 0.5]]
    assert x[0, 0] == 9.0  # the input is not modified
    assert embed_labels(x, 0, 2, value=7.0)[:, :2].tolist() == [[7.0, 0.0], [7.0, 0.0]]


def test_function_layer_counts_queries_and_returns_detached_measurements():
    layer = FunctionLayer(lambda x: 2 * x[:, :3], n_in=5, n_out=3)
    x = torch.ones(4, 5, requires_grad=True)
    y = layer(x)
    assert isinstance(layer, PhysicalLayer)
    assert not y.requires_grad and torch.equal(y, 2 * torch.ones(4, 3))
    assert layer.queries == 4 and layer.hardware_s >= 0
    with pytest.raises(ValueError, match="expected input of shape"):
        layer(torch.ones(4, 6))
    with pytest.raises(ValueError, match="returned shape"):
        FunctionLayer(lambda x: x, n_in=5, n_out=3)(torch.ones(2, 5))


def test_function_layer_takes_a_numpy_function_and_phyll_trains_through_it():
    """Lab simulators are often numpy: a function returning an array is a valid layer."""
    matrix = np.random.default_rng(0).normal(size=(20, 20)) / np.sqrt(20)
    layer = FunctionLayer(lambda x: np.tanh(np.asarray(x) @ matrix) ** 2, n_in=20, n_out=20)
    y = layer(torch.ones(3, 20))
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and y.shape == (3, 20)
    ds = vowels(seed=0)
    model = PhyLL([layer], n_classes=7, skip=True, seed=0)
    model.fit(ds, epochs=3)
    assert 0.0 <= model.evaluate(ds.x_test, ds.y_test) <= 1.0 and layer.queries > 0
    with pytest.raises(TypeError, match="expected a tensor or array"):
        FunctionLayer(lambda x: object(), n_in=2, n_out=2)(torch.ones(1, 2))
    # a mirrored array (negative strides) is an array like any other
    mirrored = FunctionLayer(lambda x: np.asarray(x)[:, ::-1], n_in=2, n_out=2)
    assert mirrored(torch.tensor([[1.0, 2.0]])).tolist() == [[2.0, 1.0]]
    # a field is not a measurement: refused, not silently cut to its real part
    with pytest.raises(TypeError, match="complex values; a measurement is real"):
        FunctionLayer(lambda x: x.to(torch.cfloat), n_in=2, n_out=2)(torch.ones(1, 2))
    with pytest.raises(ValueError, match="returned shape"):
        FunctionLayer(lambda x: np.zeros((1, 3)), n_in=2, n_out=2)(torch.ones(1, 2))


def test_ablation_layers_are_fixed_maps():
    x = torch.randn(3, 6)
    assert torch.equal(IdentityLayer(6)(x), x)
    a, b = RandomLinearLayer(6, 4, seed=1), RandomLinearLayer(6, 4, seed=1)
    assert torch.equal(a(x), b(x)) and a(x).shape == (3, 4)
    assert not torch.equal(a(x), RandomLinearLayer(6, 4, seed=2)(x))
    # Linear: P(2x) = 2 P(x).
    assert torch.allclose(a(2 * x), 2 * a(x), atol=1e-6)
