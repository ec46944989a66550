"""Targets: unseen digits, shapes, a user's PNG files, resampled or refused with reasons."""

import warnings

import numpy as np
import pytest
from PIL import Image

from labpnn.control.metrics import TargetError
from labpnn.control.targets import (
    TargetResampled,
    digit_targets,
    fit_to_shape,
    load_targets,
    png_targets,
    shape_targets,
)


def test_held_out_digits_are_disjoint_from_training_digits():
    test, test_names = digit_targets((16, 16), "test")
    train, train_names = digit_targets((16, 16), "train")
    assert test.shape == (200, 16, 16) and len(train) == 1597
    assert not set(test_names) & set(train_names)
    assert np.allclose(test.max(axis=(1, 2)), 1.0) and test.min() >= 0


def test_shapes_are_drawn_with_contrast():
    images, names = shape_targets((16, 16))
    assert len(images) == len(names) >= 8
    lit = (images > 0.5).sum(axis=(1, 2))
    assert (lit > 2).all() and (lit < 200).all()


def _png(path, array):
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return str(path)


def test_a_png_of_the_same_aspect_is_resampled_with_a_warning(tmp_path):
    big = np.zeros((32, 32))
    big[8:24, 14:18] = 255
    path = _png(tmp_path / "bar.png", big)
    with pytest.warns(TargetResampled, match="32×32 px; resampled"):
        images, names = png_targets([path], (16, 16))
    assert images.shape == (1, 16, 16) and names == ["bar.png"]
    assert images[0, 8, 8] > 0.5 and images[0, 1, 1] < 0.1


def test_a_png_of_another_aspect_is_refused(tmp_path):
    path = _png(tmp_path / "wide.png", np.random.default_rng(0).integers(0, 255, (16, 40)))
    with pytest.raises(TargetError, match="distort"):
        png_targets([path], (16, 16))


def test_an_exact_size_png_loads_silently_and_a_blank_one_is_refused(tmp_path):
    image = np.zeros((16, 16))
    image[4:12, 4:12] = 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images, _ = load_targets(_png(tmp_path / "square.png", image), (16, 16))
    assert images.shape == (1, 16, 16)
    with pytest.raises(TargetError, match="blank"):
        load_targets(_png(tmp_path / "blank.png", np.zeros((16, 16))), (16, 16))


def test_missing_files_and_folders_are_named(tmp_path):
    with pytest.raises(TargetError, match="no PNG files match"):
        load_targets(str(tmp_path / "nothing-*.png"), (16, 16))
    _png(tmp_path / "a.png", np.eye(16) * 255)
    _png(tmp_path / "b.png", np.fliplr(np.eye(16)) * 255)
    images, names = load_targets(str(tmp_path), (16, 16))
    assert names == ["a.png", "b.png"]


def test_fit_to_shape_keeps_exact_images():
    image = np.random.default_rng(0).random((8, 8))
    assert np.allclose(fit_to_shape(image, (8, 8)), image / image.max())


def test_target_specs_combine():
    images, names = load_targets("digits+shapes", (16, 16), n_digits=5)
    assert len(images) == 5 + len(shape_targets((16, 16))[0])


def test_random_training_drawings_are_varied_and_reproducible():
    from labpnn.control.targets import random_shape_targets

    a = random_shape_targets((16, 16), 50, seed=1)
    assert a.shape == (50, 16, 16) and np.allclose(a.max(axis=(1, 2)), 1.0)
    assert np.array_equal(a, random_shape_targets((16, 16), 50, seed=1))
    assert len({img.tobytes() for img in a}) == 50
