"""The PhysicalLayer interface that learning code trains against, and plain-function layers.

A physical layer maps a batch of inputs to a batch of measured outputs, ``y = layer(x)`` with
``x: Tensor[B, n_in]`` and ``y: Tensor[B, n_out]``. A real bench (``labpnn.bench``) encodes the
inputs into its own actuator range, actuates, waits, senses and decodes; a simulated bench does the
same through a simulator; in unit tests and studies a :class:`FunctionLayer` wraps a torch function.
Learning code sees only this interface, so it runs unchanged on all three.

This module depends on torch only, so that ``labpnn.learning`` can import it without drivers.

Optional parts of the protocol, which trainers use when present and never require:

- ``queries: int`` and ``hardware_s: float`` — the layer's own counters of samples measured and of
  seconds spent in hardware. Trainers prefer the layer's ``hardware_s`` to their own wall clock.
- ``state_dict()`` / ``load_state_dict(state)`` — for layers that carry state worth checkpointing,
  such as a simulated world (clock, medium, random generators). The state is a (possibly nested)
  dict whose leaves are tensors, numpy arrays or JSON values (numbers, strings, booleans, None),
  so trainers can store it without pickle.

A layer may return NaN or Inf for a bad hardware frame; trainers detect it and skip that batch.
A layer is never sent a non-finite input row (:func:`call_on_finite_rows`): a bad frame upstream
becomes a NaN row downstream, not a NaN drive signal on the next piece of hardware.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = [
    "as_measurement",
    "call_on_finite_rows",
    "physical_layers",
    "positive_int",
    "PhysicalLayer",
    "FunctionLayer",
    "IdentityLayer",
    "RandomLinearLayer",
]


@runtime_checkable
class PhysicalLayer(Protocol):
    """A fixed transform measured on hardware (or simulated): ``Tensor[B, n_in] -> Tensor[B, n_out]``."""

    n_in: int
    n_out: int

    def __call__(self, x: Tensor) -> Tensor: ...


def call_on_finite_rows(
    layer: Callable[[Tensor], Tensor], x: Tensor, n_out: int
) -> tuple[Tensor, int]:
    """``(layer(x) as float32, rows sent)``, with rows of ``x`` holding NaN or Inf left out
    (not sent, returned NaN).

    The layer is not called when no row is finite. An output that is not ``[rows sent, n_out]``
    raises ``ValueError`` naming the layer.
    """
    if x.ndim != 2:
        raise ValueError(f"a physical layer takes a batch [B, n_in], got shape {tuple(x.shape)}")
    finite = torch.isfinite(x).all(dim=1)
    every = bool(finite.all())
    sent = x if every else x[finite]
    if sent.shape[0] == 0:
        return torch.full((x.shape[0], n_out), float("nan")), 0
    # The layer gets its own copy: an actuator model that clips its drive in place must not
    # change the trainer's tensor (PhyLL concatenates it as the skip input).
    out = as_measurement(layer(sent.clone() if every else sent), layer)
    if tuple(out.shape) != (sent.shape[0], n_out):
        raise ValueError(
            f"physical layer {layer!r} returned shape {tuple(out.shape)}, "
            f"expected {[sent.shape[0], n_out]}"
        )
    if every:
        return out, sent.shape[0]
    y = torch.full((x.shape[0], n_out), float("nan"))
    y[finite] = out
    return y, sent.shape[0]


def as_measurement(y: Any, layer: Any) -> Tensor:
    """A layer's output as a measurement: a real float32 CPU tensor with no gradient.

    Numpy arrays (any strides) and nested lists are taken as they are; complex values are
    refused rather than silently losing their imaginary part (a camera measures ``|E|²``, not E).
    A measurement carries no gradient: a layer built from torch parameters must not pull the
    trainer's graph into its own (the inner steps backpropagate through W_k many times).
    """
    if isinstance(y, Tensor):
        out = y.detach()
    else:
        import numpy as np  # only for outputs that are not tensors: the module needs torch only

        try:
            array = np.asarray(y)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"physical layer {layer!r} returned {type(y).__name__}, which is not a tensor "
                f"or array of shape [batch, n_out]: {exc}"
            ) from exc
        if array.dtype == object or not (
            np.issubdtype(array.dtype, np.number) or array.dtype == bool
        ):
            raise TypeError(
                f"physical layer {layer!r} returned {type(y).__name__} ({array.dtype}), "
                "expected a tensor or array of numbers, shape [batch, n_out]"
            )
        out = torch.from_numpy(np.ascontiguousarray(array))
    if out.is_complex():
        raise TypeError(
            f"physical layer {layer!r} returned complex values; a measurement is real "
            "(return |E| or |E|², not the field E)"
        )
    return out.to(device="cpu", dtype=torch.float32)


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int, refused unless it is a whole number >= 1 (``7.9`` is not 7, and
    ``"20"`` is not a width)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a positive integer, got {value!r} ({type(value).__name__})"
        )
    if not math.isfinite(value) or value != int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def physical_layers(layers: Any) -> list:
    """``layers`` as a list, each checked to be a PhysicalLayer (``n_in``, ``n_out``, callable)."""
    checked = list(layers)
    for k, layer in enumerate(checked):
        widths = [getattr(layer, name, None) for name in ("n_in", "n_out")]
        if not callable(layer) or not all(
            isinstance(w, numbers.Integral) and not isinstance(w, bool) and w > 0 for w in widths
        ):
            raise TypeError(
                f"physical layer {k} ({layer!r}) is not a PhysicalLayer: it needs positive int "
                f"n_in and n_out (got {widths[0]!r}, {widths[1]!r}) and __call__(x[B, n_in])"
            )
    return checked


class FunctionLayer:
    """A physical layer made from a plain torch function, for tests, studies and ablations.

    The function receives the raw layer input (no encoding or range mapping) and must return a
    ``[B, n_out]`` tensor or array (a numpy result is taken as float32, since a lab's simulator
    or analysis code is often numpy). The output is detached, as a measurement would be: no gradient flows
    through a physical layer. ``queries`` counts samples sent and ``hardware_s`` the seconds spent
    inside the function.
    """

    def __init__(
        self, fn: Callable[[Tensor], Tensor], n_in: int, n_out: int, name: str | None = None
    ) -> None:
        self.fn = fn
        self.n_in = positive_int(n_in, "a physical layer's n_in")
        self.n_out = positive_int(n_out, "a physical layer's n_out")
        self.name = name or getattr(fn, "__name__", "function")
        self.queries = 0
        self.hardware_s = 0.0

    def __call__(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(
                f"{self.name}: expected input of shape [batch, {self.n_in}], got {tuple(x.shape)}"
            )
        start = time.perf_counter()
        with torch.no_grad():
            y = self.fn(x)
        self.hardware_s += time.perf_counter() - start
        self.queries += x.shape[0]
        y = as_measurement(y, self)
        if tuple(y.shape) != (x.shape[0], self.n_out):
            raise ValueError(
                f"{self.name}: function returned shape {tuple(y.shape)}, "
                f"expected [{x.shape[0]}, {self.n_out}]"
            )
        return y

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, n_in={self.n_in}, n_out={self.n_out})"


class IdentityLayer(FunctionLayer):
    """P = identity: the ablation that asks how much the physics itself contributes."""

    def __init__(self, n: int) -> None:
        super().__init__(torch.clone, n, n, name="identity")


class RandomLinearLayer(FunctionLayer):
    """P = a fixed random linear map (Gaussian, variance 1/n_in): the linear-physics ablation."""

    def __init__(self, n_in: int, n_out: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.matrix = torch.randn(n_in, n_out, generator=generator) / n_in**0.5
        super().__init__(self._apply, n_in, n_out, name=f"random-linear(seed={seed})")

    def _apply(self, x: Tensor) -> Tensor:
        return x @ self.matrix
