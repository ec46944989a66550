"""Reproduce SCIENCE.md S4-S9 and Hinton's forward-forward on the simulated benches.

Every experiment runs in-process on a simulated station built with the batched ``direct``
transport (``bench.simulation.transport=direct``; its equivalence with the driver path is tested
with the benches), through the same pieces the training procedures use (``LabLayer``,
``fit_task``, the trainers of ``labpnn.learning``). Test accuracy is measured every k epochs.
Results go to ``--out`` as they finish (``results.jsonl``), then a Markdown report
(``README.md``) and PNG plots are written from them, so a long run can be re-reported with
``--report-only``.

    python benchmarks/study_training.py --mode reduced          # CI: a few minutes
    nohup python benchmarks/study_training.py --mode full --workers 2 \\
        --out benchmarks/out/full > benchmarks/out/full.log 2>&1 &

Experiments (ids as in SCIENCE.md §6):

* S4 PhyLL on the acoustic bench, vowels, with the ablations P = identity and P = a fixed random
  linear map, each with and without the skip concatenation (and the bench without skip);
* S5 PhyLL on the microwave bench, vowels;  S6 PhyLL on the optical bench, digits (+ identity);
* S7 PAT on the acoustic bench, vowels, and in-silico training with the same twin;
* S8 the cost of reaching the plateau: hardware queries (twin data, training, evaluation) and
  digital FLOPs, from the S4/S7 runs;
* S9 drift: speckle correlation halving every epoch on an optical bench, online PhyLL against a
  frozen in-silico model (and a frozen PhyLL model); the medium drifting continuously or in one
  step per epoch, on a small bench (vowels) and on S6's bench (digits);
* FF: Hinton's forward-forward on the digits.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
VOWELS_CSV = REPO.parent / "shared" / "datasets" / "hillenbrand-women-7vowels.csv"
DIRECT = "bench.simulation.transport=direct"
# S9's small optical bench: 4 x 5 macropixels (the 20 vowel inputs) onto 16 x 16 camera pixels.
SMALL_OPTICAL = [
    "bench.layout.macropixels=[4,5]",
    "bench.layout.camera_roi=[0,0,16,16]",
    "bench.layout.pool=2",
]

# The headline experiments (plotted together); the rest are ablations and variants.
MAIN = {
    ("S4", "acoustic"), ("S5", "microwave"), ("S6", "optical, static medium"), ("S7", "pat"),
    ("S7", "insilico"), ("FF", "forward-forward"),
}  # fmt: skip

# S9's experiments (study labels): the bench, whether the medium drifts continuously or in one
# step per epoch (``jumps``), and where they differ from the mode's settings (``halvings``: the
# mode's that are listed here).
DRIFT_VARIANTS: dict[str, dict[str, Any]] = {
    "drift": {"setup": "small"},
    "drift, per-epoch steps": {"setup": "small", "jumps": True, "halvings": (1, 4)},
    "drift, S6 bench, per-epoch steps": {"setup": "s6", "jumps": True, "halvings": (1,),
                                         "pretrain_epochs": 6},
    # the same with another simulated medium (and drift path) for every seed: the other
    # variants share the station's medium (simulation seed 1), so their spread is the models'
    "drift, S6 bench, per-epoch steps, a medium per seed": {
        "setup": "s6", "jumps": True, "halvings": (1,), "pretrain_epochs": 6,
        "medium_per_seed": True},
}  # fmt: skip
# simulation seed of seed k's medium in the variants with a medium per seed
MEDIUM_SEED_BASE = 101
# S9's two benches. "small": the vowels on SMALL_OPTICAL, where an MLP twin fits (validation
# NRMSE about 0.16). "s6": S6's bench and task (16 x 16 phase macropixels, 32 x 32 pooled
# pixels, digits), in mini-batches of 64 for more updates per epoch. An MLP twin of its 256
# phases -> 1024 pixels does not fit (NRMSE 0.72 from 20 000 samples, seed 0, 2026-12-05), so
# its twin is the physics one, built from the TM measured as calibrate-tm does (1040 frames) and
# 500 pairs for its output map (NRMSE 0.090; repeat measurements differ by 0.030). ``insilico``:
# which twin ("mlp", "tm"), and the in-silico training's learning rate and epochs.
DRIFT_SETUPS: dict[str, dict[str, Any]] = {
    "small": {"overrides": SMALL_OPTICAL, "dataset": "vowels", "n_in": 20, "batch_size": 16,
              "inner_steps": 10, "insilico": ("mlp", 3e-3, 60)},
    "s6": {"overrides": [], "dataset": "digits", "n_in": 256, "batch_size": 64,
           "inner_steps": 5, "insilico": ("tm", 3e-4, 8)},
}  # fmt: skip
# pairs that fit the output map of a TM twin (its per-output gain and offset)
TM_TWIN_PAIRS = 500


MODES: dict[str, dict[str, Any]] = {
    "reduced": {
        "s4": {
            "seeds": 2,
            "epochs": 20,
            "eval_every": 10,
            "ablation_seeds": 1,
            "bench_ablation_seeds": 0,
        },
        "s5": {"seeds": 1, "epochs": 3, "eval_every": 3, "lr": 1e-3, "train_eval_rows": 30},
        "s6": {
            "seeds": 1,
            "epochs": 2,
            "eval_every": 2,
            "ablation_seeds": 0,
            "drift_seeds": 0,
            "train_eval_rows": 200,
        },
        "s7": {"seeds": 1, "epochs": 20, "eval_every": 10, "twin_samples": 3000, "twin_epochs": 60},
        "s9": {
            "seeds": 1,
            "epochs": 3,
            "pretrain_epochs": 3,
            "twin_samples": 3000,
            "twin_epochs": 40,
            "halvings": (1,),
            "variants": ("drift", "drift, per-epoch steps"),
        },
        "ff": {"seeds": 1, "epochs": 12, "eval_every": 6, "hidden": (200,)},
    },
    "full": {
        "s4": {
            "seeds": 10,
            "epochs": 200,
            "eval_every": 10,
            "ablation_seeds": 10,
            "bench_ablation_seeds": 3,
        },
        "s5": {
            "seeds": 3,
            "epochs": 40,
            "eval_every": 10,
            "lr": 2.5e-4,
            "train_eval_rows": 206,
            "standardised_seeds": 1,
        },
        "s6": {
            "seeds": 5,
            "epochs": 6,
            "eval_every": 2,
            "ablation_seeds": 3,
            "drift_seeds": 2,
            "train_eval_rows": 360,
        },
        "s7": {
            "seeds": 5,
            "epochs": 60,
            "eval_every": 10,
            "twin_samples": 10000,
            "twin_epochs": 200,
        },
        "s9": {
            "seeds": 5,
            "epochs": 10,
            "pretrain_epochs": 10,
            "twin_samples": 20000,
            "twin_epochs": 100,
            "halvings": (1, 4, 16, 64),
            "variants": tuple(DRIFT_VARIANTS),
        },
        "ff": {"seeds": 5, "epochs": 50, "eval_every": 10, "hidden": (500, 500)},
    },
}


# ------------------------------------------------------------------------------------------------
# building blocks (run inside worker processes)
# ------------------------------------------------------------------------------------------------
def _setup() -> None:
    import torch

    torch.set_num_threads(1)


def station(kind: str, overrides: list[str] = ()) -> Any:
    from labpnn.station import StationConfig

    return StationConfig.load(f"{kind}-sim", [DIRECT, *overrides]).connect()


def lab_layer(physical: str, st: Any, n: int, seed: int, standardise: bool = True,
              recentre: bool = False) -> Any:  # fmt: skip
    """The layer an experiment trains on: the bench, or an ablation of the same width."""
    import torch

    from labpnn.physical import IdentityLayer, RandomLinearLayer
    from labpnn.procedures.training.layers import LabLayer

    if physical == "bench":
        from labpnn.bench import make_bench

        inner = make_bench(st)
    elif physical == "identity":
        inner = IdentityLayer(n)
    elif physical == "random":
        inner = RandomLinearLayer(n, n, seed=1000 + seed)
    else:
        raise ValueError(physical)
    layer = LabLayer(inner, name=physical, recentre=recentre)
    cost = {"queries": 0, "hardware_s": 0.0}
    if standardise:
        cost = layer.standardise(256, 0.0, 1.0, torch.Generator().manual_seed(seed + 7919))
    return layer, cost


def vowels_csv() -> Path | None:
    """The Hillenbrand CSV the vowel experiments read: ``LABPNN_VOWELS_CSV``, else the shared
    one beside the repository (a clone elsewhere has none); None: the synthetic stand-in."""
    named = os.environ.get("LABPNN_VOWELS_CSV")
    for candidate in [Path(named)] if named else [VOWELS_CSV]:
        if candidate.is_file():
            return candidate
    return None


def task(dataset: str, seed: int, n_in: int, input_range: float) -> Any:
    from labpnn.procedures.training.task import fit_task, load_task

    # a LABPNN_VOWELS_CSV that does not exist is left to load_task, which says what to do
    path = str(vowels_csv() or "") if dataset == "vowels" else ""
    return fit_task(load_task(dataset, seed, path), n_in, input_range)


def train(trainer: Any, ds: Any, epochs: int, eval_every: int, train_eval_rows: int = 0,
          extra: Any = None) -> list[dict]:  # fmt: skip
    """Epochs with test (and train) accuracy every ``eval_every``; returns the evaluation points.

    ``train_eval_rows``: how many training rows to score (0: all, -1: none).
    """
    rows = train_eval_rows or ds.x_train.shape[0]
    curve = []
    start = time.perf_counter()
    for _ in range(epochs):
        record = trainer.step_epoch(ds, evaluate=False)
        if trainer.epoch % eval_every == 0 or trainer.epoch == epochs:
            point = {
                "epoch": trainer.epoch,
                "test_accuracy": trainer.evaluate(ds.x_test, ds.y_test),
                "train_accuracy": trainer.evaluate(ds.x_train[:rows], ds.y_train[:rows])
                if rows > 0
                else float("nan"),
                "loss": record.get("loss"),
                "wall_s": time.perf_counter() - start,
            }
            if extra is not None:
                point.update(extra(trainer))
            point.update(trainer.costs.as_dict())
            curve.append(point)
    return curve


def book(trainer: Any, cost: dict, twin: bool = False) -> None:
    from labpnn.procedures.training.common import book_costs

    book_costs(trainer, queries=cost.get("queries", 0), hardware_s=cost.get("hardware_s", 0.0),
               digital_flops=cost.get("digital_flops", 0.0), twin=twin)  # fmt: skip


def run_phyll(bench: str, dataset: str, seed: int, epochs: int, eval_every: int, *,
              physical: str = "bench", skip: bool | None = None, lr: float | None = None,
              layers: int | None = None, overrides: list[str] = (), train_eval_rows: int = 0,
              standardise: bool | None = None, recentre: bool = False) -> dict:  # fmt: skip
    """PhyLL with the procedure's bench defaults unless overridden."""
    from labpnn.learning import PhyLL
    from labpnn.procedures.training.common import BENCH_DEFAULTS

    d = BENCH_DEFAULTS[bench]
    p = d.per_procedure["phyll"]
    st = station(bench, list(overrides))
    try:
        from labpnn.bench import make_bench

        width = make_bench(st).n_in
        if standardise is None:
            standardise = d.standardise
        layer, cost = lab_layer(physical, st, width, seed, standardise, recentre)
        ds, _ = task(dataset, seed, width, d.input_range)
        n_layers = layers or d.layers
        trainer = PhyLL(
            [layer] + [layer.alias() for _ in range(n_layers - 1)],
            n_classes=ds.n_classes,
            skip=d.skip if skip is None else skip,
            lr=lr or p["lr"],
            inner_steps=p["inner_steps"],
            batch_size=p["batch_size"] or None,
            n_label_slots=ds.n_label_slots,
            standardise=False,  # LabLayer standardises (or not, as the bench default says)
            seed=seed,
        )
        book(trainer, cost)
        curve = train(trainer, ds, epochs, eval_every, train_eval_rows)
        return {"curve": curve, "probe_queries": cost["queries"],
                "eval_queries_per_sample": ds.n_classes * n_layers}  # fmt: skip
    finally:
        st.close()


def _fit_twin(layer: Any, n_in: int, samples: int, epochs: int, seed: int, hidden=(128, 128),
              period: float | None = None) -> Any:  # fmt: skip
    import torch

    from labpnn.learning import fit_twin
    from labpnn.procedures.training.layers import FeatureLayer, FeatureTwin, input_representation

    inputs = input_representation(layer, period)  # as fit-twin sees the bench
    measured = FeatureLayer(layer, inputs) if inputs else layer
    sampler = measured.sample if inputs else (lambda n, g: torch.rand(n, n_in, generator=g))
    twin = fit_twin(measured, samples, sampler, hidden=hidden, epochs=epochs,
                    batch_size=256 if samples > 5000 else 128, seed=seed)  # fmt: skip
    if inputs:
        return FeatureTwin(twin, inputs).eval().requires_grad_(False), twin.report
    return twin, twin.report


def _tm_twin(layer: Any, seed: int) -> tuple[Any, dict]:
    """The physics twin of an optical bench (a standardised LabLayer): its TM measured as
    calibrate-tm does, and its output map fitted on ``TM_TWIN_PAIRS`` pairs (both counted)."""
    import torch

    from labpnn.learning import fit_output_map
    from labpnn.procedures.calibration.tm import measure_tm
    from labpnn.procedures.training.twin import transmission_matrix_twin

    queries, hardware_s = layer.queries, layer.hardware_s
    twin = transmission_matrix_twin(layer.layer, measure_tm(layer.layer))
    calibration = {"queries": layer.queries - queries, "hardware_s": layer.hardware_s - hardware_s}
    fit_output_map(twin, layer, TM_TWIN_PAIRS,
                   lambda n, g: torch.rand(n, layer.n_in, generator=g), seed=seed)  # fmt: skip
    for key, value in calibration.items():
        twin.report[key] += value
    return twin, twin.report


def run_twin_trainer(method: str, seed: int, epochs: int, eval_every: int, twin_samples: int,
                     twin_epochs: int) -> dict:  # fmt: skip
    """PAT or in-silico on the acoustic bench, vowels; the twin is fitted here (and counted)."""
    from labpnn.learning import InSilicoTrainer, PhysicsAwareTrainer
    from labpnn.procedures.training.common import BENCH_DEFAULTS

    d = BENCH_DEFAULTS["acoustic"]
    p = d.per_procedure["pat"]
    st = station("acoustic")
    try:
        from labpnn.bench import make_bench

        width = make_bench(st).n_in
        layer, cost = lab_layer("bench", st, width, seed)
        twin, report = _fit_twin(layer, width, twin_samples, twin_epochs, seed)
        ds, _ = task("vowels", seed, width, d.input_range)
        cls = PhysicsAwareTrainer if method == "pat" else InSilicoTrainer
        stack = [layer] + [layer.alias() for _ in range(d.layers - 1)]
        trainer = cls(stack, [twin] * len(stack), ds.n_classes, lr=p["lr"],
                      batch_size=p["batch_size"], standardise=False, seed=seed)  # fmt: skip
        # one twin for the shared physical layers: book its data once, plus the probes
        n_extra = len(stack) - 1
        book(trainer, {k: -n_extra * report[k] for k in ("queries", "hardware_s", "digital_flops")},
             twin=True)  # fmt: skip
        book(trainer, cost, twin=True)
        extra = None
        if method == "insilico":

            def extra(t: Any) -> dict:
                predicted = t.twin_logits(ds.x_test).argmax(dim=1)
                return {"twin_test_accuracy": (predicted == ds.y_test).float().mean().item()}

        curve = train(trainer, ds, epochs, eval_every, extra=extra)
        return {"curve": curve, "twin_nrmse": report["validation_nrmse"],
                "eval_queries_per_sample": len(stack)}  # fmt: skip
    finally:
        st.close()


def run_ff(seed: int, epochs: int, eval_every: int, hidden: tuple = (500, 500)) -> dict:
    from labpnn.datasets import digits
    from labpnn.learning import ForwardForward

    ds = digits(seed=seed)
    trainer = ForwardForward(ds.n_inputs, 10, hidden=tuple(hidden), batch_size=64, seed=seed)
    return {"curve": train(trainer, ds, epochs, eval_every)}


def _without_layers(trainer: Any) -> Any:
    """A deep copy of a trainer's digital state, without its physical layers (stations)."""
    import copy

    layers, trainer.layers = trainer.layers, []
    try:
        return copy.deepcopy(trainer)
    finally:
        trainer.layers = layers


def speckle_correlation(overrides: list[str], lag_s: float, seed: int, n: int = 32) -> float:
    """Mean Pearson correlation of camera intensity patterns ``lag_s`` apart, fixed inputs.

    What S9's "speckle correlation" means, measured on the bench itself rather than read off the
    simulator's TM drift rate (for a fully developed speckle it is the field correlation squared).
    """
    import torch

    from labpnn.bench import make_bench

    st = station("optical", overrides)
    try:
        bench = make_bench(st)
        x = 0.5 * torch.rand(n, bench.n_in, generator=torch.Generator().manual_seed(seed))
        before = np.asarray(bench(x), dtype=float) ** 2  # amplitude detection -> intensity
        st.clock.sleep_until(st.clock.now() + lag_s)
        after = np.asarray(bench(x), dtype=float) ** 2
        return float(np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(before, after)]))
    finally:
        st.close()


def run_drift(seed: int, epochs: int, twin_samples: int, twin_epochs: int,
              halvings: tuple = (1,), batch_size: int | None = None, pretrain_epochs: int = 10,
              skip: bool = False, reference_border: int | None = None,
              jumps: bool = False, step_phase: float = 0.01,
              setup: str = "small", medium_seed: int | None = None) -> dict:  # fmt: skip
    """S9 on an optical bench (``DRIFT_SETUPS``): deployed models under a drifting medium.

    PhyLL (no skip by default, so every feature crosses the medium; ``skip=True`` for the
    exploration in docs/training.md; ``reference_border`` overrides the bench layout's, for
    the same page's study of the static reference) is trained on the bench with a static
    medium; an in-silico model is trained on a twin fitted on that bench. Then the medium
    drifts, starting from the same medium: one copy of PhyLL keeps training online, with and
    without re-centring the bench's outputs as it measures (``LabLayer(recentre=True)``); frozen
    copies keep their weights. One epoch of drift time is one online cycle (a training epoch
    plus a test evaluation) in simulated bench time; for ``h`` in ``halvings`` the TM's field
    correlation decays at ln 2 / (2 h cycles), so the speckle (intensity) correlation halves every
    h epochs (S9: h = 1); the correlation after one cycle is measured on the bench and reported.
    Every model is scored once per cycle, its scoring ending when the online model's
    evaluation does (the end of the cycle); its loss is its accuracy on the static bench minus
    the mean of its last 3 scores under drift.

    ``jumps``: the medium changes in one AR(1) step per cycle (SCIENCE.md's
    ``T_{t+1} = ρ T_t + sqrt(1-ρ²) G_t`` with t counting epochs) instead of continuously. The
    simulator's drift grid is one cycle long, and every model starts so that each step lands
    ``step_phase`` of a cycle into it. The default, 0.01, puts it in the first training batch,
    the placement most favourable to online training: an epoch on the new medium, then scored
    on it. Cycles must keep their pretraining length for this; a check says if they do not.

    ``medium_seed``: the simulation seed of the medium and its drift (default: the station's).
    """
    import torch

    from labpnn.bench import make_bench
    from labpnn.learning import InSilicoTrainer, PhyLL
    from labpnn.procedures.training.layers import LabLayer

    # only the medium drifts: the signal/reference phase walk is another experiment
    layout = (
        [] if reference_border is None else [f"bench.layout.reference_border={reference_border}"]
    )
    bench = DRIFT_SETUPS[setup]
    n_in = bench["n_in"]
    medium = [] if medium_seed is None else [f"bench.simulation.seed={int(medium_seed)}"]
    still = [*bench["overrides"], *layout, *medium, "bench.simulation.global_phase_drift_per_s=0"]
    quiet = [*still, "bench.simulation.drift_per_s=0"]
    ds, _ = task(bench["dataset"], seed, n_in, 0.5)

    st_quiet = station("optical", quiet)
    layer, _ = lab_layer("bench", st_quiet, n_in, seed)
    trained = PhyLL([layer, layer.alias()], ds.n_classes, skip=skip, lr=1e-3,
                    batch_size=batch_size or bench["batch_size"],
                    inner_steps=bench["inner_steps"], n_label_slots=ds.n_label_slots,
                    standardise=False, seed=seed)  # fmt: skip
    pretrain = train(trained, ds, pretrain_epochs, 1, train_eval_rows=-1)
    cycle_s = pretrain[-1]["hardware_s"] - pretrain[-2]["hardware_s"]
    # how long one scoring of the test set takes on the bench, per model: frozen models are
    # scored so that they finish when the online model's evaluation does (the cycle's end)
    before = layer.hardware_s
    static = {"phyll": trained.evaluate(ds.x_test, ds.y_test)}
    eval_s = {"phyll": layer.hardware_s - before}
    # a twin fitted on the static bench, and an in-silico model trained on the twin alone
    kind, insilico_lr, insilico_epochs = bench["insilico"]
    twin_layer, _ = lab_layer("bench", st_quiet, n_in, seed)
    if kind == "tm":
        twin, report = _tm_twin(twin_layer, seed)
    else:
        twin, report = _fit_twin(twin_layer, n_in, twin_samples, twin_epochs, seed,
                                 hidden=(256, 256), period=1.0)  # fmt: skip
    insilico = InSilicoTrainer([twin_layer, twin_layer.alias()], [twin, twin], ds.n_classes,
                               lr=insilico_lr, batch_size=32, standardise=False, seed=seed)  # fmt: skip
    for _ in range(insilico_epochs):
        insilico.step_epoch(ds, evaluate=False)
    before = twin_layer.hardware_s
    static["insilico"] = insilico.evaluate(ds.x_test, ds.y_test)  # 2 queries a sample
    eval_s["insilico"] = twin_layer.hardware_s - before
    st_quiet.close()

    def on_drifting_bench(source: Any, overrides: list[str], recentre: bool) -> tuple[Any, Any]:
        """A copy of ``source`` on a new, drifting station, with its standardisation."""
        model = _without_layers(source)
        st = station("optical", overrides)
        fresh = LabLayer(make_bench(st), name="bench", recentre=recentre)
        fresh.set_statistics(source.layers[0].mean, source.layers[0].std)
        model.layers = [fresh, fresh.alias()]
        return model, st

    # with jumps, every model starts this long after the world (and its drift grid) does
    lead_s = (1.0 - step_phase) * cycle_s if jumps else 0.0

    def aligned(st: Any) -> Any:
        """An ``extra`` for train(): with jumps, each evaluation must end where the cycle grid
        says, or the steps would drift into other parts of the cycle."""

        cycles = [0]

        def check(trainer: Any) -> dict:
            cycles[0] += 1  # train() calls this once per drifting epoch (eval_every 1)
            expected = lead_s + cycles[0] * cycle_s
            if jumps and abs(st.clock.now() - expected) > 0.1 * step_phase * cycle_s:
                raise RuntimeError(f"cycle {cycles[0]} ended at {st.clock.now():.3f} s of "
                                   f"bench time, not {expected:.3f} s: the steps moved")  # fmt: skip
            return {}

        return check

    def online_curve(overrides: list[str], recentre: bool) -> list[float]:
        model, st = on_drifting_bench(trained, overrides, recentre)
        try:
            st.clock.sleep_until(st.clock.now() + lead_s)
            curve = train(model, ds, epochs, 1, train_eval_rows=-1, extra=aligned(st))
            return [p["test_accuracy"] for p in curve]
        finally:
            st.close()

    def frozen_curve(frozen: Any, overrides: list[str], recentre: bool, kind: str) -> list[float]:
        model, st = on_drifting_bench(frozen, overrides, recentre)
        try:
            start, points = st.clock.now() + lead_s, []
            with torch.no_grad():
                for k in range(1, epochs + 1):
                    st.clock.sleep_until(start + k * cycle_s - eval_s[kind])
                    points.append(model.evaluate(ds.x_test, ds.y_test))
            return points
        finally:
            st.close()

    by_halving = {}
    for h in halvings:
        drift_per_s = math.log(2) / (2 * h * cycle_s)
        drifting = [*still, f"bench.simulation.drift_per_s={drift_per_s!r}"]
        if jumps:
            drifting.append(f"bench.simulation.drift_step_s={cycle_s!r}")
        by_halving[str(h)] = {
            "drift_per_s": drift_per_s,
            "speckle_correlation_1_epoch": speckle_correlation(drifting, cycle_s, seed),
            "online": online_curve(drifting, recentre=False),
            "online_recentred": online_curve(drifting, recentre=True),
            "frozen_phyll": frozen_curve(trained, drifting, False, "phyll"),
            "frozen_phyll_recentred": frozen_curve(trained, drifting, True, "phyll"),
        }
        by_halving[str(h)]["frozen_insilico"] = frozen_curve(insilico, drifting, False, "insilico")
    return {
        "setup": setup,
        "medium_seed": medium_seed,
        "jumps": jumps,
        "step_phase": step_phase if jumps else None,
        "batch_size": trained.batch_size,
        "cycle_s": cycle_s,
        "eval_s": eval_s,
        "pretrain": [p["test_accuracy"] for p in pretrain],
        "static": static,
        "speckle_correlation_static": speckle_correlation(quiet, cycle_s, seed),
        "twin_kind": kind,
        "twin_nrmse": report["validation_nrmse"],
        "twin_queries": report["queries"],
        "halvings": by_halving,
    }


RUNNERS = {"phyll": run_phyll, "twin": run_twin_trainer, "ff": run_ff, "drift": run_drift}


def worker(job: dict) -> dict:
    _setup()
    start = time.perf_counter()
    try:
        result = RUNNERS[job["runner"]](**job["kwargs"])
        status = "ok"
    except Exception:  # keep going: one failed experiment must not sink the study
        result, status = {"error": traceback.format_exc()}, "failed"
    vowels = str(vowels_csv() or "the synthetic stand-in (no CSV found)")
    return {**job, **result, "status": status, "vowels": vowels,
            "job_wall_s": time.perf_counter() - start}  # fmt: skip


# ------------------------------------------------------------------------------------------------
# the plan
# ------------------------------------------------------------------------------------------------
def plan(mode: str, only: set[str] | None) -> list[dict]:
    cfg = MODES[mode]
    jobs: list[dict] = []

    def add(group: str, label: str, runner: str, **kwargs: Any) -> None:
        if only is None or group in only:
            jobs.append({"group": group, "label": label, "runner": runner, "kwargs": kwargs})

    c = cfg["s4"]
    for seed in range(c["seeds"]):
        add("S4", "acoustic", "phyll", bench="acoustic", dataset="vowels", seed=seed,
            epochs=c["epochs"], eval_every=c["eval_every"])  # fmt: skip
    for seed in range(c["bench_ablation_seeds"]):
        add("S4", "acoustic, no skip", "phyll", bench="acoustic", dataset="vowels", seed=seed,
            epochs=c["epochs"], eval_every=c["eval_every"], skip=False)  # fmt: skip
    for seed in range(c["ablation_seeds"]):
        for physical in ("identity", "random"):
            for skip in (True, False):
                label = f"{physical}, {'skip' if skip else 'no skip'}"
                add("S4", label, "phyll", bench="acoustic", dataset="vowels", seed=seed,
                    epochs=c["epochs"], eval_every=c["eval_every"], physical=physical,
                    skip=skip)  # fmt: skip
    c = cfg["s5"]
    for seed in range(c["seeds"]):
        add("S5", "microwave", "phyll", bench="microwave", dataset="vowels", seed=seed,
            epochs=c["epochs"], eval_every=c["eval_every"], lr=c["lr"],
            train_eval_rows=c["train_eval_rows"])  # fmt: skip
    for seed in range(c.get("standardised_seeds", 0)):
        add("S5", "microwave, standardised", "phyll", bench="microwave", dataset="vowels",
            seed=seed, epochs=c["epochs"], eval_every=c["eval_every"], lr=c["lr"],
            standardise=True, train_eval_rows=c["train_eval_rows"])  # fmt: skip
    c = cfg["s6"]
    static = ["bench.simulation.drift_per_s=0", "bench.simulation.global_phase_drift_per_s=0"]
    for seed in range(c["seeds"]):
        add("S6", "optical, static medium", "phyll", bench="optical", dataset="digits",
            seed=seed, epochs=c["epochs"], eval_every=c["eval_every"], overrides=static,
            train_eval_rows=c["train_eval_rows"])  # fmt: skip
    for seed in range(c["drift_seeds"]):
        for recentre in (False, True):
            add("S6", f"optical, optical-sim drift{', re-centred' if recentre else ''}", "phyll",
                bench="optical", dataset="digits", seed=seed, epochs=c["epochs"],
                eval_every=c["eval_every"], train_eval_rows=c["train_eval_rows"],
                recentre=recentre)  # fmt: skip
    for seed in range(c["ablation_seeds"]):
        add("S6", "identity, no skip", "phyll", bench="optical", dataset="digits", seed=seed,
            epochs=c["epochs"], eval_every=c["eval_every"], physical="identity",
            overrides=static, train_eval_rows=c["train_eval_rows"])  # fmt: skip
    c = cfg["s7"]
    for seed in range(c["seeds"]):
        for method in ("pat", "insilico"):
            add("S7", method, "twin", method=method, seed=seed, epochs=c["epochs"],
                eval_every=c["eval_every"], twin_samples=c["twin_samples"],
                twin_epochs=c["twin_epochs"])  # fmt: skip
    c = cfg["s9"]
    for label in c["variants"]:
        variant = {"pretrain_epochs": c["pretrain_epochs"], **DRIFT_VARIANTS[label]}
        # a variant's halvings are those of the mode that it also lists
        variant["halvings"] = tuple(
            h for h in c["halvings"] if h in variant.get("halvings", c["halvings"])
        )
        if not variant["halvings"]:
            continue
        per_seed = variant.pop("medium_per_seed", False)
        for seed in range(c["seeds"]):
            medium = {"medium_seed": MEDIUM_SEED_BASE + seed} if per_seed else {}
            add("S9", label, "drift", seed=seed, epochs=c["epochs"],
                twin_samples=c["twin_samples"], twin_epochs=c["twin_epochs"], **variant,
                **medium)  # fmt: skip
    c = cfg["ff"]
    for seed in range(c["seeds"]):
        add("FF", "forward-forward", "ff", seed=seed, epochs=c["epochs"],
            eval_every=c["eval_every"], hidden=c["hidden"])  # fmt: skip
    return jobs


def execute(jobs: list[dict], out: Path, workers: int) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    sink = out / "results.jsonl"
    results = []
    # Headline experiments first (a shared machine may not give the study its whole budget),
    # then the ablations; results.jsonl grows as they finish, --report-only reports any prefix.
    order = ["S4 acoustic", "S7 pat", "S6 optical, static medium", "S7 insilico",
             "FF forward-forward", "S9 drift, S6 bench, per-epoch steps",
             "S9 drift, per-epoch steps", "S9 drift", "S5 microwave",
             "S4 acoustic, no skip"]  # fmt: skip

    def rank(job: dict) -> tuple[int, int]:
        key = f"{job['group']} {job['label']}"
        return (order.index(key) if key in order else len(order), job["kwargs"]["seed"])

    jobs = sorted(jobs, key=rank)
    with open(sink, "a") as handle:
        if workers <= 1:
            iterator = (worker(job) for job in jobs)
        else:
            pool = ProcessPoolExecutor(max_workers=workers)
            iterator = (f.result() for f in as_completed([pool.submit(worker, j) for j in jobs]))
        for done, result in enumerate(iterator, 1):
            results.append(result)
            handle.write(json.dumps(result, default=float) + "\n")
            handle.flush()
            final = (
                result.get("curve", [{}])[-1].get("test_accuracy") if result.get("curve") else None
            )
            print(f"[{done}/{len(jobs)}] {result['group']} {result['label']} "
                  f"seed {result['kwargs']['seed']}: {result['status']}"
                  f"{'' if final is None else f', test {final:.3f}'} "
                  f"({result['job_wall_s']:.0f} s)", flush=True)  # fmt: skip
            if result["status"] != "ok":
                print(result["error"], file=sys.stderr, flush=True)
    return results


# ------------------------------------------------------------------------------------------------
# the report
# ------------------------------------------------------------------------------------------------
def _final(result: dict, key: str = "test_accuracy") -> float:
    return float(result["curve"][-1][key])


def mean_std(values: list[float]) -> str:
    if not values:
        return "—"
    values = np.asarray(values, dtype=float)
    return f"{100 * values.mean():.1f} ± {100 * values.std():.1f}"


def plateau_cost(curve: list[dict]) -> dict:
    """Cost at the first evaluation within 1 point of the plateau (mean of the last 3 points)."""
    accuracy = np.array([p["test_accuracy"] for p in curve])
    plateau = accuracy[-3:].mean()
    return {"plateau": plateau, **_cost_at(curve[int(np.argmax(accuracy >= plateau - 0.01))])}


def target_cost(curve: list[dict], target: float) -> dict | None:
    """Cost at the first evaluation at or above ``target`` accuracy; None if never reached."""
    reached = [p for p in curve if p["test_accuracy"] >= target]
    return _cost_at(reached[0]) if reached else None


def _cost_at(point: dict) -> dict:
    return {
        "epoch": point["epoch"],
        "twin_queries": point["twin_queries"],
        "train_queries": point["queries"] - point["eval_queries"] - point["twin_queries"],
        "digital_flops": point["digital_flops"],
    }


def summarise(results: list[dict]) -> dict:
    ok = [r for r in results if r["status"] == "ok"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in ok:
        groups.setdefault((r["group"], r["label"]), []).append(r)
    return {"groups": groups, "failed": [r for r in results if r["status"] != "ok"]}


def report(results: list[dict], out: Path, mode: str, wall_s: float | None) -> dict:
    """Write README.md (tables) and the PNG plots; return the headline numbers."""
    s = summarise(results)
    groups = s["groups"]
    lines = [f"# Training study ({mode} mode)", ""]
    lines.append(
        "Simulated benches through the batched `direct` path; mean ± std over seeds of the final "
        "test accuracy (%). Generated by `benchmarks/study_training.py`."
    )
    if wall_s is not None:
        lines.append(f"Wall time: {wall_s / 60:.1f} min.")
    # which vowels: the real ones, or the stand-in drawn from their published statistics
    sources = sorted({r["vowels"] for r in results if "vowels" in r}) or ["not recorded"]
    lines.append(f"Vowel data: {'; '.join(sources)} (set LABPNN_VOWELS_CSV to choose).")
    lines += ["", "| id | experiment | seeds | epochs | test accuracy (%) | best (%) | train (%) |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    headline: dict[str, Any] = {}
    for (group, label), runs in sorted(groups.items()):
        if group == "S9":
            continue
        finals = [_final(r) for r in runs]
        best = [max(p["test_accuracy"] for p in r["curve"]) for r in runs]
        trains = [_final(r, "train_accuracy") for r in runs]
        epochs = runs[0]["curve"][-1]["epoch"]
        lines.append(f"| {group} | {label} | {len(runs)} | {epochs} | {mean_std(finals)} | "
                     f"{mean_std(best)} | {mean_std(trains)} |")  # fmt: skip
        headline[f"{group}:{label}"] = {"mean": float(np.mean(finals)), "std": float(np.std(finals)),
                                        "n": len(runs)}  # fmt: skip
    # S7 extras: twin quality and what in-silico believed
    twin_runs = groups.get(("S7", "insilico"), []) + groups.get(("S7", "pat"), [])
    if twin_runs:
        nrmse = [r["twin_nrmse"] for r in twin_runs]
        lines += ["", f"S7 twins (acoustic): validation NRMSE {np.mean(nrmse):.3f} ± "
                      f"{np.std(nrmse):.3f}."]  # fmt: skip
        believed = [
            r["curve"][-1].get("twin_test_accuracy") for r in groups.get(("S7", "insilico"), [])
        ]
        if believed and None not in believed:
            lines.append(f"In-silico on its own twin: {mean_std(believed)} % (deployed: "
                         f"{mean_std([_final(r) for r in groups[('S7', 'insilico')]])} %).")  # fmt: skip
    lines += _cost_table(groups)
    lines += _drift_tables(groups, headline)
    if s["failed"]:
        lines += ["", "## Failed experiments", ""]
        for r in s["failed"]:
            lines.append(f"- {r['group']} {r['label']} seed {r['kwargs']['seed']}: "
                         f"`{r['error'].strip().splitlines()[-1]}`")  # fmt: skip
    (out / "README.md").write_text("\n".join(lines) + "\n")
    _plots(groups, out)
    (out / "headline.json").write_text(json.dumps(headline, indent=1))
    return headline


def _mean_cost(runs: list[dict], costs: list[dict]) -> tuple[dict, int, float]:
    """Mean of per-seed costs, queries to score one sample, and total queries (train + twin +
    one scoring of the 52 test rows)."""
    per_sample = runs[0].get("eval_queries_per_sample", 0)
    mean = {k: float(np.mean([c[k] for c in costs])) for k in costs[0]}
    return mean, per_sample, mean["train_queries"] + mean["twin_queries"] + 52 * per_sample


def _cost_table(groups: dict) -> list[str]:
    rows = [("S4", "acoustic", "PhyLL"), ("S7", "pat", "PAT"), ("S7", "insilico", "in-silico")]
    runs_of = {name: groups.get((group, label), []) for group, label, name in rows}
    lines = ["", "## S8: cost to reach the plateau (acoustic bench, vowels)", "",
             "Plateau = mean of the last 3 evaluations; cost at the first evaluation within 1 point "
             "of it. Training queries include the standardisation probes; evaluation costs are "
             "per scored sample (PhyLL tries every label on every layer). Mean over seeds.", "",
             "| method | plateau (%) | epochs | twin-data queries | training queries | "
             "queries to score 1 sample | digital FLOPs to plateau | total queries (train + twin "
             "+ one scoring of the 52 test rows) |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, runs in runs_of.items():
        if not runs:
            continue
        mean, per_sample, total = _mean_cost(runs, [plateau_cost(r["curve"]) for r in runs])
        lines.append(f"| {name} | {100 * mean['plateau']:.1f} | {mean['epoch']:.0f} | "
                     f"{mean['twin_queries']:.0f} | {mean['train_queries']:.0f} | {per_sample} | "
                     f"{mean['digital_flops']:.3g} | {total:.0f} |")  # fmt: skip
    target = 0.90
    lines += ["", f"The same costs to the first evaluation at or above {100 * target:.0f} % test "
              "accuracy, one bar for all methods (taken at the first evaluation that shows it, so "
              "to within one evaluation period); mean over the seeds that reach it.", "",
              "| method | seeds reaching it | epochs | twin-data queries | training queries | "
              "digital FLOPs | total queries (as above) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, runs in runs_of.items():
        if not runs:
            continue
        costs = [c for c in (target_cost(r["curve"], target) for r in runs) if c is not None]
        if not costs:
            lines.append(f"| {name} | 0 of {len(runs)} | — | — | — | — | — |")
            continue
        mean, _, total = _mean_cost(runs, costs)
        lines.append(f"| {name} | {len(costs)} of {len(runs)} | {mean['epoch']:.0f} | "
                     f"{mean['twin_queries']:.0f} | {mean['train_queries']:.0f} | "
                     f"{mean['digital_flops']:.3g} | {total:.0f} |")  # fmt: skip
    return lines


DRIFT_MODELS = (  # result key, table name, which static accuracy it starts from
    ("online", "PhyLL, online", "phyll"),
    ("online_recentred", "PhyLL, online, re-centred", "phyll"),
    ("frozen_phyll", "PhyLL, frozen", "phyll"),
    ("frozen_phyll_recentred", "PhyLL, frozen, re-centred", "phyll"),
    ("frozen_insilico", "in-silico, frozen", "insilico"),
)


def _drift_labels(groups: dict) -> list[str]:
    """The S9 variants (DRIFT_VARIANTS) that have results, the plain "drift" first."""
    labels = [label for group, label in groups if group == "S9"]
    return sorted(labels, key=lambda label: (label != "drift", label))


def _drift_tables(groups: dict, headline: dict) -> list[str]:
    lines: list[str] = []
    for label in _drift_labels(groups):
        lines += _drift_table(label, groups[("S9", label)], headline)
    return lines


def _drift_setup_text(first: dict) -> str:
    if first.get("setup", "small") == "small":
        bench = "Small optical bench (4×5 macropixels, 16×16 camera pixels pooled 2×2), vowels"
    else:
        bench = ("S6's optical bench (16×16 phase macropixels, 64×64 camera pixels pooled 2×2), "
                 "digits")  # fmt: skip
    media = (
        "a different simulated medium and drift path per seed"
        if first.get("medium_seed") is not None
        else "one simulated medium and drift path for every seed (the station's)"
    )
    return f"{bench}, {media}, PhyLL without skip, mini-batches of {first.get('batch_size', 16)}"


def _drift_table(label: str, runs: list[dict], headline: dict) -> list[str]:
    def tail(values: list[float]) -> float:
        return float(np.mean(values[-3:]))

    first = runs[0]
    epochs = len(next(iter(first["halvings"].values()))["online"])
    static_corr = np.mean([r["speckle_correlation_static"] for r in runs])
    nrmse = [r["twin_nrmse"] for r in runs if r.get("twin_nrmse") is not None]
    twin = (
        "the physics twin built from its calibrated TM (`TransmissionMatrixTwin`)"
        if first.get("twin_kind") == "tm"
        else "an MLP twin fitted on measured pairs"
    )
    insilico = (
        f"in-silico trained on {twin} of the static bench (validation NRMSE {np.mean(nrmse):.3f})"
        if nrmse
        else "no in-silico model"
    )
    if first.get("jumps"):
        how = (
            "The medium changes in one AR(1) step per cycle (SCIENCE.md's "
            "T_{t+1} = ρ T_t + sqrt(1-ρ²) G_t with t counting epochs; continuous drift is the "
            "same model on a grid of about 1 % decorrelation), "
            f"{100 * first.get('step_phase', 0.01):.0f} % into each cycle. At 1 % that is early "
            "in the training epoch, the placement most favourable to online training: an epoch "
            "on the new medium, then scored on it. ρ is set so that the speckle (intensity) "
            "correlation halves every h epochs"
        )
    else:
        how = (
            "The TM's field correlation decays continuously at ln 2 / (2h cycles), so the speckle "
            "(intensity) correlation halves every h epochs"
        )
    lines = [
        "", f"## S9: {label}", "",
        f"{_drift_setup_text(first)}, trained {len(first['pretrain'])} epochs on a static "
        f"medium; {insilico}. Then the medium drifts from where it was. One epoch of drift "
        "time = one online PhyLL cycle (training epoch + test evaluation) = "
        f"{first['cycle_s']:.1f} s of bench time. {how} (S9 asks h = 1); the column "
        "'speckle corr.' is measured on the bench: the mean Pearson correlation of intensity "
        f"patterns of fixed inputs one cycle apart (static medium: {static_corr:.3f}, the noise "
        "floor). 'Re-centred': the bench outputs are centred on a running mean of the last ~64 "
        "measured rows (`LabLayer(recentre=True)`; no labels, no extra queries; evaluations "
        "update the centre too). Every model's scoring ends when the online model's does, at "
        f"the end of each cycle. Under drift: mean of the last 3 of {epochs} epochs; loss = "
        f"static accuracy minus that; {len(runs)} seed(s).", "",
        "| h (epochs per halving) | speckle corr. after 1 epoch | model | static (%) | "
        "under drift (%) | loss (points) |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    prefix = "S9" if label == "drift" else f"S9:{label}"
    per_seed: list[str] = []
    for h in first["halvings"]:
        corr = [r["halvings"][h]["speckle_correlation_1_epoch"] for r in runs]
        for key, name, start_key in DRIFT_MODELS:
            if key not in first["halvings"][h]:
                continue
            start = [r["static"][start_key] for r in runs]
            end = [tail(r["halvings"][h][key]) for r in runs]
            loss = np.subtract(start, end)
            lines.append(f"| {h} | {np.mean(corr):.2f} ± {np.std(corr):.2f} | {name} | "
                         f"{mean_std(start)} | {mean_std(end)} | "
                         f"{100 * loss.mean():.1f} ± {100 * loss.std():.1f} |")  # fmt: skip
            headline[f"{prefix}:h={h}:{name}:loss"] = {
                "mean": float(loss.mean()),
                "std": float(loss.std()),
            }
            if key in ("online_recentred", "frozen_insilico"):
                seeds = ", ".join(f"{100 * v:.1f}" for v in loss)
                per_seed.append(f"h = {h}, {name}: {seeds}")
    return [*lines, "", f"Loss per seed (points): {'; '.join(per_seed)}."]


def _plots(groups: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def mean_curve(runs: list[dict], x: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xs = np.mean([[p[x] for p in r["curve"]] for r in runs], axis=0)
        ys = np.array([[p["test_accuracy"] for p in r["curve"]] for r in runs])
        return xs, ys.mean(axis=0), ys.std(axis=0)

    # accuracy against epochs, queries and FLOPs, per experiment
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for (group, label), runs in sorted(groups.items()):
        if (group, label) not in MAIN:  # ablations get their own figure
            continue
        for ax, x in zip(axes, ("epoch", "queries", "digital_flops")):
            xs, mean, std = mean_curve(runs, x)
            ax.plot(xs, mean, "o-", ms=3, label=f"{group} {label}")
            ax.fill_between(xs, mean - std, mean + std, alpha=0.15)
    for ax, x in zip(axes, ("epochs", "hardware queries (incl. twin data, evaluation)",
                            "digital FLOPs")):  # fmt: skip
        ax.set(xlabel=x, ylabel="test accuracy", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        if x != "epochs":
            ax.set_xscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=110)
    plt.close(fig)

    # PhyLL vs PAT vs in-silico on the acoustic bench
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for key, name in ((("S4", "acoustic"), "PhyLL"), (("S7", "pat"), "PAT"),
                      (("S7", "insilico"), "in-silico")):  # fmt: skip
        runs = groups.get(key, [])
        if runs:
            for ax, x in zip(axes, ("epoch", "queries")):
                xs, mean, std = mean_curve(runs, x)
                ax.errorbar(xs, mean, std, marker="o", ms=3, capsize=2, label=name)
    axes[0].set(xlabel="epoch", ylabel="test accuracy", title="acoustic bench, vowels")
    axes[1].set(xlabel="hardware queries", ylabel="test accuracy", xscale="log")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "methods.png", dpi=110)
    plt.close(fig)

    # S4 ablations
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (group, label), runs in sorted(groups.items()):
        if group in ("S4", "S6"):
            xs, mean, std = mean_curve(runs, "epoch")
            ax.plot(xs, mean, "o-", ms=3, label=f"{group} {label}")
    ax.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1.02), title="ablations")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ablations.png", dpi=110)
    plt.close(fig)

    # S9 drift: a row of panels (one per h) per variant
    from labpnn.reports import count_ticks

    variants = _drift_labels(groups)
    if variants:
        columns = max(len(groups[("S9", v)][0]["halvings"]) for v in variants)
        fig, axes = plt.subplots(len(variants), columns, figsize=(5 * columns, 4.5 * len(variants)),
                                 squeeze=False)  # fmt: skip
        for row, label in zip(axes, variants):
            runs = groups[("S9", label)]
            halvings = list(runs[0]["halvings"])
            for ax in row[len(halvings) :]:
                ax.set_visible(False)
            for ax, h in zip(row, halvings):
                static = np.mean([r["static"]["phyll"] for r in runs])
                ax.axhline(static, color="grey", ls=":", label="PhyLL, static medium")
                for key, name, _ in DRIFT_MODELS:
                    if key not in runs[0]["halvings"][h]:
                        continue
                    ys = np.asarray([r["halvings"][h][key] for r in runs])
                    epochs = np.arange(1, ys.shape[1] + 1)
                    ax.errorbar(epochs, ys.mean(axis=0), ys.std(axis=0), marker="o", ms=3,
                                capsize=2, label=name)  # fmt: skip
                ax.set(xlabel="epochs of drift", ylabel="test accuracy", ylim=(0, 1.02),
                       title=f"S9 {label}:\ncorrelation halves every {h} epoch(s)")  # fmt: skip
                ax.title.set_fontsize(9)
                count_ticks(ax.xaxis)
                ax.grid(alpha=0.3)
                ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "drift.png", dpi=110)
        plt.close(fig)


def load_results(out: Path) -> list[dict]:
    sink = out / "results.jsonl"
    if not sink.exists():
        return []
    return [json.loads(line) for line in sink.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="reduced")
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/out/<mode>")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--only", default="", help="comma-separated groups, e.g. S4,S7")
    parser.add_argument("--report-only", action="store_true", help="re-report results.jsonl")
    parser.add_argument(
        "--keep", action="store_true", help="keep results.jsonl and run only what is missing"
    )
    args = parser.parse_args(argv)
    out = args.out or REPO / "benchmarks" / "out" / args.mode
    out.mkdir(parents=True, exist_ok=True)
    only = {g.strip().upper() for g in args.only.split(",") if g.strip()} or None
    start = time.perf_counter()
    if not args.report_only:
        if (out / "results.jsonl").exists() and not args.keep:
            (out / "results.jsonl").unlink()
        jobs = plan(args.mode, only)
        if args.keep:  # finish an interrupted study: skip what already succeeded
            done = {
                (r["group"], r["label"], r["kwargs"]["seed"])
                for r in load_results(out)
                if r["status"] == "ok"
            }
            jobs = [j for j in jobs if (j["group"], j["label"], j["kwargs"]["seed"]) not in done]
        print(f"{len(jobs)} experiments, {args.workers} worker(s) -> {out}", flush=True)
        execute(jobs, out, args.workers)
    headline = report(load_results(out), out, args.mode,
                      None if args.report_only else time.perf_counter() - start)  # fmt: skip
    print((out / "README.md").read_text())
    return 0 if headline else 1


if __name__ == "__main__":
    sys.exit(main())
