"""Physics-aware training (PAT; Wright et al., Nature 2022): hardware forward, twin backward.

The forward pass runs on the physical layers and its measured outputs are what the network
computes with. The backward pass through physical layer k uses a differentiable digital twin
f_k, linearised at the input that was actually sent to the hardware::

    forward:   y = P_k(x_meas)                       (the measurement)
    backward:  g_x = (∂f_k/∂x)ᵀ (x_meas) · g_y        (the twin's vector-Jacobian product)

``x_meas`` is the input of the physical layer in this forward pass; it is itself computed from
the measured outputs of the earlier layers, so every Jacobian is taken at measured activations.
The digital layers' gradients use the measured activations too, because autograd saved the
measured outputs as their inputs. Only the twin's Jacobian is used, never its output value, so a
twin with an offset or gain error in its output still gives useful gradients. The digital
parameters (the ``D_k`` maps and the readout of :class:`HybridNetwork`) are trained with
cross-entropy and Adam.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from labpnn.learning.network import HybridTrainer

__all__ = ["PhysicsAwareTrainer", "PhysicsAwareStep"]

Twin = Callable[[Tensor], Tensor]


class PhysicsAwareStep(torch.autograd.Function):
    """``apply(x, measure, twin)``: value ``measure(x)``, gradient the twin's VJP at ``x``."""

    @staticmethod
    def forward(ctx, x: Tensor, measure: Callable[[Tensor], Tensor], twin: Twin) -> Tensor:
        ctx.twin = twin
        ctx.save_for_backward(x)
        # A copy, so that a layer returning its own input never aliases the autograd input.
        return measure(x.detach()).clone()

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (x_measured,) = ctx.saved_tensors
        with torch.enable_grad():
            x_at = x_measured.detach().requires_grad_(True)
            (grad_input,) = torch.autograd.grad(ctx.twin(x_at), x_at, grad_output)
        return grad_input, None, None


def check_twin(k: int, twin: Twin, layer) -> None:
    """Refuse a twin that cannot stand in for its physical layer, before any training: it must
    map ``[B, layer.n_in]`` to ``[B, layer.n_out]`` differentiably (PAT takes its Jacobian).

    The twin is called once on two fixed rows, a digital call that queries no hardware.
    """
    where = f"twin {k} ({twin!r}) of physical layer {k} ({layer!r})"
    if not callable(twin):
        raise TypeError(f"{where} is not callable; a twin is a torch function of x[B, n_in]")
    declared = [getattr(twin, name, None) for name in ("n_in", "n_out")]
    if declared[0] is not None and declared[1] is not None:
        if (declared[0], declared[1]) != (layer.n_in, layer.n_out):
            raise ValueError(
                f"{where} is {declared[0]}->{declared[1]} wide, the layer {layer.n_in}->"
                f"{layer.n_out}; fit the twin to this layer"
            )
    probe = torch.rand(2, int(layer.n_in), generator=torch.Generator().manual_seed(0))
    probe.requires_grad_(True)
    try:
        with torch.enable_grad():
            out = twin(probe)
    except Exception as exc:  # any failure means: not a twin of this layer
        raise ValueError(
            f"{where} fails on an input of the layer's width n_in={layer.n_in}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(out, Tensor) or tuple(out.shape) != (2, int(layer.n_out)):
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(
            f"{where} maps [2, {layer.n_in}] to {shape}, but the layer's output is "
            f"[2, {layer.n_out}]; fit the twin to this layer"
        )
    if not out.requires_grad:
        raise ValueError(
            f"{where} returns no gradient: a twin must be a differentiable torch function "
            "(not numpy, not a detached or no_grad output), since PAT takes its Jacobian"
        )


class PhysicsAwareTrainer(HybridTrainer):
    """PAT of a :class:`HybridNetwork` around ``layers``, with one twin per physical layer.

    ``twins`` are differentiable callables ``Tensor[B, n_in] -> Tensor[B, n_out]`` (a fitted
    :class:`DigitalTwin`, or any torch function). The data and FLOPs it took to fit them (their
    ``report``, when present) are added to this trainer's costs. Twins that are torch modules are
    checkpointed with the trainer, so a resumed run can restore them into blank twins of the same
    shape. ``n_in`` defaults to the first physical layer's ``n_in``.

    ``standardise`` (on by default) standardises each physical output per feature on the
    training measurements (:class:`~labpnn.learning.network.HybridNetwork`), in the forward pass
    and so in the backward pass through the twin's Jacobian alike. Without it, measurements in
    other units (tanh ×1e-4, tanh + 100, 3000 + 50·tanh) leave PAT at chance. ``skip`` feeds
    each physical layer's input to the next digital map beside its output, as PhyLL's skip
    concatenation does (off by default, as in Wright et al. 2022).
    """

    def __init__(
        self,
        layers: Sequence,
        twins: Sequence[Twin],
        n_classes: int,
        *,
        n_in: int | None = None,
        lr: float = 1e-3,
        batch_size: int | None = None,
        standardise: bool = True,
        skip: bool = False,
        seed: int = 0,
        divergence_bound: float = 1e6,
    ) -> None:
        super().__init__(
            layers,
            n_classes,
            n_in=n_in,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            divergence_bound=divergence_bound,
            standardise=standardise,
            skip=skip,
        )
        if len(twins) != len(self.layers):
            raise ValueError(f"got {len(twins)} twins for {len(self.layers)} physical layers")
        self.twins = list(twins)
        for k, (twin, layer) in enumerate(zip(self.twins, self.layers)):
            check_twin(k, twin, layer)
        for twin in self.twins:
            report = getattr(twin, "report", {})
            self._costs.queries += report.get("queries", 0)
            self._costs.twin_queries += report.get("queries", 0)
            self._costs.hardware_s += report.get("hardware_s", 0.0)
            self._costs.digital_flops += report.get("digital_flops", 0.0)

    def _stateful(self) -> dict:
        """The network and optimiser, and the twins that are torch modules (e.g. DigitalTwin)."""
        parts = super()._stateful()
        parts.update(
            {f"twin.{k}": twin for k, twin in enumerate(self.twins) if isinstance(twin, nn.Module)}
        )
        return parts

    def _training_step(self, k: int, h: Tensor) -> Tensor:
        """Physical layer k as PAT sees it in training: measured forward, twin backward."""
        return PhysicsAwareStep.apply(h, partial(self._measure, self.layers[k]), self.twins[k])

    def _train_batch(self, x: Tensor, y: Tensor, losses: list[float]) -> None:
        scores = self.network(x, self._training_step, learn_statistics=True)
        loss = F.cross_entropy(scores, y)
        losses.append(self._check_loss(loss))
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        # Forward and backward of the digital maps, plus a forward and backward through each twin.
        twin_flops = sum(getattr(twin, "flops_per_sample", 0.0) for twin in self.twins)
        self._costs.digital_flops += self.network.flops(x.shape[0], backward=True) + (
            3 * twin_flops * x.shape[0]
        )
