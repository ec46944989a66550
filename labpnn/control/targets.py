"""Target images for projection: unseen digits, simple shapes, and a user's own PNG files.

Every target is a float image in ``[0, 1]`` (peak 1) of exactly the camera region's shape.
A user's image of another size is resampled with a warning when that keeps its aspect
ratio, and refused otherwise: squeezing a picture would change what is being asked for.

The digits are scikit-learn's bundled 8×8 set (offline). The last ``n_test`` images are
held out as the *unseen* targets on which fidelity is reported; learning methods train
only on the others (:func:`digit_targets` with ``split="train"``).
"""

from __future__ import annotations

import glob
import os
import warnings
from pathlib import Path

import numpy as np

from labpnn.control.metrics import TargetError, check_targets

__all__ = [
    "TargetResampled",
    "fit_to_shape",
    "digit_targets",
    "shape_targets",
    "random_shape_targets",
    "png_targets",
    "load_targets",
    "N_TEST_DIGITS",
]

N_TEST_DIGITS = 200  # held-out digits: the last 200 of scikit-learn's 1797
ASPECT_TOLERANCE = 0.02  # relative aspect-ratio change accepted when resampling


class TargetResampled(UserWarning):
    """A target was resampled to the camera region's shape."""


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    arr = np.asarray(image, dtype=np.float32)
    if arr.shape == tuple(shape):
        return arr.astype(np.float64)
    small = Image.fromarray(arr, mode="F").resize((shape[1], shape[0]), Image.BICUBIC)
    return np.clip(np.asarray(small, dtype=np.float64), 0.0, None)


def _peak_one(image: np.ndarray) -> np.ndarray:
    peak = float(np.max(image)) if np.size(image) else 0.0
    return image / peak if peak > 0 else image


def fit_to_shape(image: np.ndarray, shape: tuple[int, int], name: str = "target") -> np.ndarray:
    """The image at ``shape``, peak 1: resampled (with a warning) or refused if distorted."""
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim != 2:
        raise TargetError(f"{name} must be a 2-D grey image, got an array of shape {arr.shape}")
    shape = (int(shape[0]), int(shape[1]))
    if arr.shape != shape:
        have, want = arr.shape[1] / arr.shape[0], shape[1] / shape[0]
        if abs(have / want - 1.0) > ASPECT_TOLERANCE:
            raise TargetError(
                f"{name} is {arr.shape[1]}×{arr.shape[0]} px (aspect {have:.2f}) but the camera "
                f"region is {shape[1]}×{shape[0]} (aspect {want:.2f}); resampling would distort "
                f"it. Crop or pad it to aspect {want:.2f} first"
            )
        warnings.warn(
            f"{name} is {arr.shape[1]}×{arr.shape[0]} px; resampled to the camera region's "
            f"{shape[1]}×{shape[0]}",
            TargetResampled,
            stacklevel=2,
        )
        arr = _resize(arr, shape)
    check_targets(arr[None], [name])
    return _peak_one(arr)


def digit_targets(
    shape: tuple[int, int] = (16, 16),
    split: str = "test",
    n: int | None = None,
    n_test: int = N_TEST_DIGITS,
) -> tuple[np.ndarray, list[str]]:
    """scikit-learn digits resampled to ``shape``: ``[n, H, W]`` and a name per image.

    ``split="test"`` gives the held-out digits (the last ``n_test``), ``"train"`` the rest.
    """
    from sklearn.datasets import load_digits

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    digits = load_digits()
    first = len(digits.images) - n_test
    index = np.arange(first, len(digits.images)) if split == "test" else np.arange(first)
    if n is not None:
        if n > len(index):
            raise TargetError(
                f"asked for {n} {split} digits but only {len(index)} are available; "
                f"lower the number of targets"
            )
        index = index[:n]
    images = np.stack([_peak_one(_resize(digits.images[i], shape)) for i in index])
    names = [f"digit {digits.target[i]} (#{i})" for i in index]
    return images, names


def _draw(shape: tuple[int, int], paint, oversample: int = 8) -> np.ndarray:
    """Draw with PIL at ``oversample`` × resolution, then area-average down to ``shape``."""
    from PIL import Image, ImageDraw

    h, w = shape[0] * oversample, shape[1] * oversample
    canvas = Image.new("L", (w, h), 0)
    paint(ImageDraw.Draw(canvas), w, h)
    big = np.asarray(canvas, dtype=np.float64)
    return _peak_one(big.reshape(shape[0], oversample, shape[1], oversample).mean(axis=(1, 3)))


def shape_targets(
    shape: tuple[int, int] = (16, 16), letters: str = "LPE"
) -> tuple[np.ndarray, list[str]]:
    """Spots, lines and letters: simple test images a person can judge by eye."""
    from PIL import ImageFont

    def spot(cy: float, cx: float, r: float):
        def paint(d, w, h):
            d.ellipse([(cx - r) * w, (cy - r) * h, (cx + r) * w, (cy + r) * h], fill=255)

        return paint

    def spots(d, w, h):
        spot(0.3, 0.3, 0.1)(d, w, h)
        spot(0.7, 0.7, 0.1)(d, w, h)

    def line(x0, y0, x1, y1, width=0.12):
        def paint(d, w, h):
            d.line([x0 * w, y0 * h, x1 * w, y1 * h], fill=255, width=max(1, int(width * w)))

        return paint

    def letter(ch: str):
        def paint(d, w, h):
            font = ImageFont.load_default(size=int(0.8 * h))
            d.text((w / 2, h / 2), ch, fill=255, font=font, anchor="mm")

        return paint

    items = [
        ("spot (centre)", spot(0.5, 0.5, 0.15)),
        ("spot (off-centre)", spot(0.3, 0.65, 0.12)),
        ("two spots", spots),
        ("horizontal line", line(0.15, 0.5, 0.85, 0.5)),
        ("vertical line", line(0.5, 0.15, 0.5, 0.85)),
        ("diagonal line", line(0.15, 0.15, 0.85, 0.85)),
    ] + [(f"letter {ch}", letter(ch)) for ch in letters]
    images = np.stack([_draw(shape, paint) for _, paint in items])
    return images, [name for name, _ in items]


def random_shape_targets(
    shape: tuple[int, int] = (16, 16), n: int = 1000, seed: int = 0
) -> np.ndarray:
    """``n`` random drawings of 1–3 spots, lines, boxes or letters: training variety.

    An actor trained on digits only projects digits well and simple shapes less well
    (a spot or a letter is not a digit); adding these to its training set widens what it
    has seen. Seeded, so a run can be repeated.
    """
    from PIL import ImageFont

    rng = np.random.default_rng([seed, 11])
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    images = []
    for _ in range(n):
        items = [
            (rng.integers(4), rng.uniform(0.15, 0.85, 4), rng.uniform(0.06, 0.2))
            for _ in range(rng.integers(1, 4))
        ]

        def paint(d, w, h, items=items):
            for kind, (a, b, c, e), size in items:
                if kind == 0:  # spot
                    d.ellipse([(a - size) * w, (b - size) * h, (a + size) * w, (b + size) * h],
                              fill=255)  # fmt: skip
                elif kind == 1:  # line
                    d.line([a * w, b * h, c * w, e * h], fill=255, width=max(1, int(size * w)))
                elif kind == 2:  # box
                    x0, x1 = sorted((a, c))
                    y0, y1 = sorted((b, e))
                    d.rectangle([x0 * w, y0 * h, x1 * w, y1 * h], fill=255)
                else:  # letter
                    font = ImageFont.load_default(size=int((0.4 + 2 * size) * h))
                    ch = letters[int(c * 100) % len(letters)]
                    d.text((a * w, b * h), ch, fill=255, font=font, anchor="mm")

        image = _draw(shape, paint)
        if np.ptp(image) > 0:
            images.append(image)
    return np.stack(images)


def _expand(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in paths:
        item = os.path.expanduser(item.strip())
        if not item:
            continue
        if os.path.isdir(item):
            found = sorted(Path(item).glob("*.png"))
        elif any(ch in item for ch in "*?["):
            found = [Path(p) for p in sorted(glob.glob(item))]
        else:
            found = [Path(item)]
        if not found:
            raise TargetError(f"no PNG files match '{item}'")
        files.extend(found)
    return files


def png_targets(paths: list[str], shape: tuple[int, int]) -> tuple[np.ndarray, list[str]]:
    """Grey PNG files (files, folders or globs) as targets of the camera region's shape."""
    from PIL import Image, UnidentifiedImageError

    images, names = [], []
    for path in _expand(paths):
        try:
            with Image.open(path) as img:
                grey = np.asarray(img.convert("F"), dtype=np.float64)
        except FileNotFoundError:
            raise TargetError(f"target file {path} does not exist") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise TargetError(f"cannot read target image {path}: {exc}") from None
        images.append(fit_to_shape(grey, shape, name=path.name))
        names.append(path.name)
    return np.stack(images), names


def load_targets(
    spec: str, shape: tuple[int, int], n_digits: int | None = None
) -> tuple[np.ndarray, list[str]]:
    """The targets a procedure's ``targets`` parameter names.

    ``digits`` (the held-out digits), ``shapes``, ``digits+shapes``, or a comma-separated
    list of PNG files, folders or globs.
    """
    spec = (spec or "").strip()
    parts = [p.strip() for p in spec.split("+")] if "+" in spec else [spec]
    if all(p in ("digits", "shapes") for p in parts):
        images, names = [], []
        for part in parts:
            if part == "digits":
                imgs, nms = digit_targets(shape, "test", n_digits)
            else:
                imgs, nms = shape_targets(shape)
            images.append(imgs)
            names += nms
        return np.concatenate(images), names
    return png_targets(spec.split(","), shape)
