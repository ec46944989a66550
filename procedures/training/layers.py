"""Physical layers as the training procedures use them: one bench, standardised, shared, watched.

A procedure turns its station into a :class:`LabLayer` over the bench's PhysicalLayer
(``labpnn.bench.make_bench``). The LabLayer

* optionally **standardises** each output, ``(P(x) - mean) / std``, with statistics measured
  once on random probes in the bench's input range. It is part of the fixed physical transform
  (a decoder), not a trained parameter: without it the digital maps see a large common mode
  (e.g. the mean speckle amplitude) and PhyLL's cosine goodness barely moves;
* optionally **re-centres** its outputs as it measures (``recentre=True``), for drifting
  media: the input-independent part of a speckle pattern (the reference arm, the mean field)
  moves with the medium and, measured against the small input-dependent modulation, is the first
  thing a drift destroys. The centre becomes a running mean over about the last
  ``RECENTRE_MEMORY_ROWS`` rows measured (one per use of the bench: layer 2 of a network sees
  other inputs than layer 1) before the current batch, so it follows the medium with no
  extra queries and no labels, and a small batch moves it only a little; the scale stays the
  probes'. Every measurement updates it, evaluations included (they measure the medium like
  any other; no labels are used). An output then depends on what was measured before it, so
  it is off by default, and it applies only to standardised outputs;
* never sends a non-finite input row to the hardware (its output row is NaN);
* calls an ``on_query`` hook after every measurement, so a long epoch on real hardware still
  feeds the run's watchdog and honours an abort request;
* carries the bench's checkpointable state (the simulated world) and the standardisation
  statistics in its ``state_dict``.

A network with several physical layers on one bench queries the same system in turn:
:meth:`LabLayer.alias` gives the extra layers, which share the bench but no state, so the
world is checkpointed once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from labpnn.physical import call_on_finite_rows

__all__ = [
    "CodeInputs",
    "FeatureLayer",
    "FeatureTwin",
    "LabLayer",
    "PhaseInputs",
    "phase_features",
    "probe_inputs",
    "input_representation",
    "input_representation_from",
]


def probe_inputs(n: int, n_in: int, low: float, high: float, generator: torch.Generator) -> Tensor:
    """``n`` inputs drawn uniformly from ``[low, high]`` in each of ``n_in`` channels."""
    return low + (high - low) * torch.rand(n, n_in, generator=generator)


RECENTRE_MEMORY_ROWS = 64


class _Wrapper:
    """A layer around ``self.layer``: its hardware counters are the wrapped layer's."""

    layer: Any

    @property
    def queries(self) -> int:
        return int(getattr(self.layer, "queries", 0))

    @property
    def hardware_s(self) -> float:
        return float(getattr(self.layer, "hardware_s", 0.0))


class LabLayer(_Wrapper):
    """A PhysicalLayer over ``layer`` with optional output standardisation and a query hook."""

    def __init__(
        self,
        layer: Any,
        *,
        on_query: Callable[[int], None] | None = None,
        name: str | None = None,
        recentre: bool = False,
    ) -> None:
        self.layer = layer
        self.recentre = recentre
        self.n_in = int(layer.n_in)
        self.n_out = int(layer.n_out)
        self.on_query = on_query
        self.name = name or type(layer).__name__
        self.mean: Tensor | None = None
        self.std: Tensor | None = None
        # running centres with ``recentre``, one per use of the bench (0: this layer, k: the
        # k-th alias), since each use sees its own input distribution
        self.centres: dict[int, Tensor] = {}
        self._uses = 0
        self._probing = False

    # -- the PhysicalLayer protocol -------------------------------------------------------
    def __call__(self, x: Tensor, use: int = 0) -> Tensor:
        # A bad frame upstream must never reach the hardware (benches refuse NaN drive signals):
        # its rows stay NaN, which trainers score as 'unknown'. Trainers mask them too; this
        # covers direct callers (probes, twin data).
        if self.recentre and self.mean is None and not self._probing:
            raise ValueError(f"{self.name}: recentre needs standardised outputs; standardise first")
        y, sent = call_on_finite_rows(self.layer, x, self.n_out)
        if self.on_query is not None:
            self.on_query(sent)
        if self.mean is not None:
            y = (y - self._centre(y, use)) / self.std
        return y

    def _centre(self, y: Tensor, use: int) -> Tensor:
        """The probes' mean, or with ``recentre`` this use's running mean over about the last
        ``RECENTRE_MEMORY_ROWS`` rows it measured before this batch (starting from the probes'
        mean); the batch then updates it. Causal, so an output never depends on its own batch."""
        if not self.recentre:
            return self.mean
        centre = self.centres.get(use, self.mean)
        finite = torch.isfinite(y).all(dim=1)
        rows = int(finite.sum())
        if rows:
            weight = rows / (rows + RECENTRE_MEMORY_ROWS)
            self.centres[use] = centre + weight * (y[finite].mean(dim=0) - centre)
        return centre

    # -- standardisation ------------------------------------------------------------------
    @property
    def standardised(self) -> bool:
        return self.mean is not None

    def standardise(
        self, n_samples: int, low: float, high: float, generator: torch.Generator
    ) -> dict[str, float]:
        """Measure ``n_samples`` random probes and standardise on them; returns their cost.

        Outputs that do not vary over the probes keep unit scale. Non-finite probe outputs
        (bad frames) are left out of the statistics.
        """
        if n_samples < 2:
            raise ValueError(f"standardisation needs at least 2 probes, got {n_samples}")
        queries, hardware_s = self.queries, self.hardware_s
        self.mean = self.std = None
        probes = probe_inputs(n_samples, self.n_in, low, high, generator)
        self._probing = True
        try:
            y = self(probes)
        finally:
            self._probing = False
        finite = torch.isfinite(y).all(dim=1)
        if finite.sum() < 2:
            raise RuntimeError(
                f"{self.name}: only {int(finite.sum())} of {n_samples} standardisation probes "
                "gave finite outputs; check the bench (camera, sound card, VNA) and retry"
            )
        self.set_statistics(y[finite].mean(dim=0), y[finite].std(dim=0))
        return {
            "queries": self.queries - queries,
            "hardware_s": self.hardware_s - hardware_s,
            "probes": n_samples,
            "bad_probes": int((~finite).sum()),
        }

    def set_statistics(self, mean: Any, std: Any) -> None:
        mean = torch.as_tensor(np.asarray(mean), dtype=torch.float32)
        std = torch.as_tensor(np.asarray(std), dtype=torch.float32)
        if mean.shape != (self.n_out,) or std.shape != (self.n_out,):
            raise ValueError(f"standardisation statistics must have shape [{self.n_out}]")
        spread = std.clone()
        spread[~(spread > 1e-12 * (mean.abs().max() + 1e-30))] = 1.0
        self.mean, self.std = mean.clone(), spread
        self.centres = {}  # running centres start again from the new statistics

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"standardised": self.standardised}
        if self.standardised:
            state["mean"], state["std"] = self.mean.clone(), self.std.clone()
        if self.centres:
            state["centres"] = {str(use): c.clone() for use, c in self.centres.items()}
        if callable(getattr(self.layer, "state_dict", None)):
            state["bench"] = self.layer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("standardised"):
            self.set_statistics(state["mean"], state["std"])
            self.centres = {
                int(use): torch.as_tensor(np.asarray(c), dtype=torch.float32)
                for use, c in state.get("centres", {}).items()
            }
        else:
            self.mean = self.std = None
            self.centres = {}
        if "bench" in state and callable(getattr(self.layer, "load_state_dict", None)):
            self.layer.load_state_dict(state["bench"])

    def alias(self, use: int | None = None) -> _Alias:
        """The same physical layer, used again deeper in the network.

        It owns no checkpoint state: its running centre (``recentre``) lives in this layer,
        under its use number: ``use`` (e.g. its depth in the stack), else the next number, so
        a stack built the same way on resume finds its centres again.
        """
        if use is None:
            self._uses += 1
            use = self._uses
        elif use < 1:
            raise ValueError(
                f"an alias's use number must be >= 1 (0 is the layer itself), got {use}"
            )
        self._uses = max(self._uses, int(use))
        return _Alias(self, int(use))

    def __repr__(self) -> str:
        scaled = ", standardised" if self.standardised else ""
        scaled += ", re-centred as it measures" if self.recentre else ""
        return f"LabLayer({self.name}, n_in={self.n_in}, n_out={self.n_out}{scaled})"


class _Alias(_Wrapper):
    """A further use of a :class:`LabLayer`: measures through it, owns no checkpoint state."""

    def __init__(self, target: LabLayer, use: int) -> None:
        self.layer, self.use = target, use
        self.n_in, self.n_out = target.n_in, target.n_out

    def __call__(self, x: Tensor) -> Tensor:
        return self.layer(x, self.use)

    def __repr__(self) -> str:
        return f"again({self.layer!r})"


def phase_features(x: Tensor, period: float) -> Tensor:
    """``[cos(2πx/p), sin(2πx/p)]``: a periodic input as a point on the unit circle."""
    angle = (2 * math.pi / period) * x
    return torch.cat([torch.cos(angle), torch.sin(angle)], dim=1)


class PhaseInputs:
    """Periodic inputs (SLM phases) as ``[cos, sin]`` of their angles, for a twin.

    Interference makes outputs smooth in ``exp(iφ)``, which an MLP fits far better than φ itself,
    and a twin of the features is periodic by design.
    """

    def __init__(self, period: float) -> None:
        self.period = float(period)

    def width(self, n_in: int) -> int:
        return 2 * n_in

    def features(self, x: Tensor) -> Tensor:
        return phase_features(x, self.period)

    def from_features(self, features: Tensor) -> Tensor:
        half = features.shape[1] // 2
        angle = torch.atan2(features[:, half:], features[:, :half])
        return torch.remainder(angle * (self.period / (2 * math.pi)), self.period)

    def sample(self, n: int, n_in: int, generator: torch.Generator) -> Tensor:
        """Features of ``n`` inputs drawn uniformly over one period."""
        return self.features(self.period * torch.rand(n, n_in, generator=generator))

    def describe(self) -> dict[str, Any]:
        return {"input_period": self.period}


class CodeInputs:
    """Inputs quantised to levels and written as a code (metasurface bits), for a twin.

    ``code[level]`` is what the bench writes for an input in ``[level/L, (level+1)/L)`` of
    ``[0, 1]`` (``L`` levels; inputs outside saturate). The response of a chaotic cavity to
    its bits is a poor function of the level number (binary codes flip bits back and forth
    as the level rises), so the twin is fitted on the code itself: about half the error of a
    twin of the raw inputs on the microwave bench. Its features are the code the bench
    writes; their gradient is that of the codes mixed linearly between neighbouring level
    centres, so the twin says what moving towards the next level does (straight through:
    in-silico training never sees a code the bench cannot write).
    """

    def __init__(self, code: Any) -> None:
        self.code = torch.as_tensor(np.asarray(code, dtype=np.float32))
        if self.code.ndim != 2 or self.code.shape[0] < 2:
            raise ValueError(
                f"an input code needs [levels >= 2, bits], got {list(self.code.shape)}"
            )
        self.levels, self.bits = self.code.shape

    def width(self, n_in: int) -> int:
        return n_in * self.bits

    def features(self, x: Tensor) -> Tensor:
        x = x.clamp(0.0, 1.0)  # the bench saturates beyond [0, 1], and so does the gradient
        written = self.code[(x.detach() * self.levels).floor().clamp(max=self.levels - 1).long()]
        # Level-centre coordinates; below the first centre and above the last the end
        # segment's slope, so an input there can still move inwards.
        u = x * self.levels - 0.5
        lower = u.detach().floor().clamp(0, self.levels - 2).long()
        t = (u - lower).unsqueeze(-1)
        mixed = self.code[lower] * (1 - t) + self.code[lower + 1] * t
        return (written + (mixed - mixed.detach())).reshape(x.shape[0], -1)

    def from_features(self, features: Tensor) -> Tensor:
        """Each feature group's nearest code, as the centre of its level."""
        groups = features.reshape(features.shape[0], -1, 1, self.bits)
        level = (groups - self.code).pow(2).sum(dim=-1).argmin(dim=-1)
        return (level.float() + 0.5) / self.levels

    def sample(self, n: int, n_in: int, generator: torch.Generator) -> Tensor:
        """The codes of ``n`` inputs with every level equally likely."""
        level = torch.randint(0, self.levels, (n, n_in), generator=generator)
        return self.code[level].reshape(n, -1)

    def describe(self) -> dict[str, Any]:
        return {"input_code": self.code.int().tolist()}


InputRepresentation = PhaseInputs | CodeInputs


def input_representation(layer: Any, period: float | None = None) -> InputRepresentation | None:
    """How a twin should see ``layer``'s inputs: as phases (``period``), as the code the bench
    writes (a bench with an ``input_code``), or raw (None)."""
    if period:
        return PhaseInputs(period)
    while layer is not None:
        code = getattr(layer, "input_code", None)
        if code is not None:
            return CodeInputs(code)
        layer = getattr(layer, "layer", None)
    return None


def input_representation_from(meta: dict) -> InputRepresentation | None:
    """The input representation a registered twin's description (:meth:`describe`) names."""
    if meta.get("input_period"):
        return PhaseInputs(float(meta["input_period"]))
    if meta.get("input_code") is not None:
        return CodeInputs(meta["input_code"])
    return None


class FeatureLayer(_Wrapper):
    """A bench seen through a twin's input features, for fitting the twin: it takes features,
    recovers the inputs and measures them."""

    def __init__(self, layer: Any, representation: InputRepresentation) -> None:
        self.layer, self.representation = layer, representation
        self.n_in, self.n_out = representation.width(int(layer.n_in)), int(layer.n_out)

    def __call__(self, features: Tensor) -> Tensor:
        return self.layer(self.representation.from_features(features))

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.representation.sample(n, int(self.layer.n_in), generator)


class FeatureTwin(nn.Module):
    """A twin fitted on input features, as a function of the bench's own inputs.

    Keeps the wrapped twin's ``report`` and ``flops_per_sample`` so trainers book its costs.
    """

    def __init__(self, twin: nn.Module, representation: InputRepresentation) -> None:
        super().__init__()
        self.twin = twin
        self.representation = representation

    def forward(self, x: Tensor) -> Tensor:
        return self.twin(self.representation.features(x))

    @property
    def report(self) -> dict:
        return getattr(self.twin, "report", {})

    @property
    def flops_per_sample(self) -> float:
        return float(getattr(self.twin, "flops_per_sample", 0.0))
