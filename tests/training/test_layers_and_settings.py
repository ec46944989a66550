"""The pieces the training procedures stand on, checked in-process (no bench, no subprocess)."""

from __future__ import annotations

import pytest
import torch

from labpnn.errors import BadInput
from labpnn.learning import DigitalTwin, PhyLL
from labpnn.physical import FunctionLayer
from labpnn.procedures.training.layers import (
    FeatureLayer,
    FeatureTwin,
    LabLayer,
    PhaseInputs,
    input_representation_from,
)
from labpnn.procedures.training.pat import TrainPAT
from labpnn.procedures.training.phyll import TrainPhyLL
from labpnn.procedures.training.task import fit_task, load_task
from labpnn.station import StationConfig
from tests.training.conftest import VOWELS_CSV


def _physics(n_in: int = 20, n_out: int = 16):
    matrix = torch.randn(n_in, n_out, generator=torch.Generator().manual_seed(5)) / n_in**0.5
    return FunctionLayer(lambda x: 3.0 + torch.tanh(x @ matrix), n_in, n_out, name="tanh")


def test_vowels_are_scaled_into_the_bench_range_and_padded_to_its_width():
    ds = load_task("vowels", 0, str(VOWELS_CSV) if VOWELS_CSV.is_file() else "")
    fitted, meta = fit_task(ds, n_in=256, input_range=0.5)
    assert fitted.x_train.shape == (206, 256) and fitted.n_inputs == 256
    assert fitted.x_train.max() == pytest.approx(0.5) and fitted.x_train.min() >= 0
    assert torch.all(fitted.x_train[:, 20:] == 0) and torch.all(fitted.x_test[:, 20:] == 0)
    assert torch.equal(fitted.y_test, ds.y_test) and fitted.n_label_slots == 8
    assert meta["zero_padding"] == 236 and meta["input_range"] == 0.5
    assert meta["source"] in ("hillenbrand-csv", "synthetic")


def test_a_task_wider_than_the_bench_says_which_layout_would_fit():
    with pytest.raises(BadInput, match="74 inputs .* takes 20; choose a bench layout"):
        fit_task(load_task("digits", 0), n_in=20, input_range=1.0)


def test_a_missing_csv_names_the_path_the_variable_and_the_synthetic_default(tmp_path, monkeypatch):
    with pytest.raises(BadInput, match="dataset_path.*LABPNN_VOWELS_CSV.*synthetic"):
        load_task("vowels", 0, str(tmp_path / "absent.csv"))
    monkeypatch.setenv("LABPNN_VOWELS_CSV", str(tmp_path / "also-absent.csv"))
    with pytest.raises(BadInput, match="from LABPNN_VOWELS_CSV"):
        load_task("vowels", 0, "")
    monkeypatch.delenv("LABPNN_VOWELS_CSV")
    assert load_task("vowels", 0, "").meta["source"] == "synthetic"


def test_the_lab_layer_standardises_on_probes_and_checkpoints_its_statistics():
    layer = LabLayer(_physics())
    cost = layer.standardise(512, 0.0, 1.0, torch.Generator().manual_seed(0))
    assert cost["queries"] == 512 and cost["bad_probes"] == 0
    y = layer(torch.rand(2000, 20, generator=torch.Generator().manual_seed(1)))
    assert y.mean(dim=0).abs().max() < 0.15 and (y.std(dim=0) - 1).abs().max() < 0.15
    other = LabLayer(_physics())
    other.load_state_dict(layer.state_dict())
    x = torch.rand(5, 20)
    assert torch.allclose(other(x), layer(x))
    # a second use of the same bench shares it but owns no checkpoint state
    again = layer.alias()
    assert not hasattr(again, "state_dict") and torch.allclose(again(x), layer(x))


def test_recentring_follows_a_drifting_offset_that_fixed_statistics_do_not():
    offset = torch.zeros(16)
    inner = _physics()
    drifting = FunctionLayer(lambda x: inner(x) + offset, 20, 16)
    fixed, recentred = LabLayer(drifting), LabLayer(drifting, recentre=True)
    with pytest.raises(ValueError, match="recentre needs standardised outputs"):
        recentred(torch.rand(4, 20))
    for layer in (fixed, recentred):
        layer.standardise(512, 0.0, 1.0, torch.Generator().manual_seed(0))
    offset += torch.linspace(-2.0, 2.0, 16)  # the medium moves after standardisation
    x = torch.rand(64, 20, generator=torch.Generator().manual_seed(1))
    off_centre = fixed(x).mean(dim=0).abs().max()
    assert off_centre > 5  # several probe std off centre, and it stays there
    # a batch of 4 rows moves the running centre by 4 / (4 + 64) of the way only
    first = recentred(x[:4]).mean(dim=0).abs().max()
    assert first > 0.9 * fixed(x[:4]).mean(dim=0).abs().max()
    for _ in range(10):  # each batch of 64 rows halves what is left for the next one
        y = recentred(x)
    assert y.mean(dim=0).abs().max() < 0.01 * off_centre
    assert torch.allclose(y.std(dim=0), fixed(x).std(dim=0), atol=1e-4)  # same scale
    assert "re-centred" in repr(recentred)
    # a second use of the bench keeps its own centre, starting from the probes'
    deeper = recentred.alias()
    shifted = deeper(x + 0.3)
    assert not torch.allclose(recentred.centres[1], recentred.centres[0])
    assert torch.equal(recentred.mean, fixed.mean)  # the probes' statistics are untouched
    # the running centres are checkpointed with the layer, and the alias finds its own again
    restored = LabLayer(drifting, recentre=True)
    restored.load_state_dict(recentred.state_dict())
    restored_deeper = restored.alias()
    assert set(restored.centres) == {0, 1}
    assert torch.allclose(restored(x), recentred(x))
    assert torch.allclose(restored_deeper(x + 0.3), deeper(x + 0.3))
    assert shifted.shape == (64, 16)
    # causal: a row's output does not depend on the rest of its batch
    other = LabLayer(drifting, recentre=True)
    other.load_state_dict(restored.state_dict())
    assert torch.allclose(other(x[:4]), restored(x)[:4])


def test_a_nan_row_never_reaches_the_bench_and_comes_back_nan():
    sent = []
    inner = FunctionLayer(lambda x: (sent.append(x.clone()), x[:, :4])[1], 8, 4)
    layer = LabLayer(inner)
    x = torch.rand(3, 8)
    x[1, 2] = float("nan")
    y = layer(x)
    assert torch.isnan(y[1]).all() and torch.isfinite(y[[0, 2]]).all()
    assert sent[0].shape == (2, 8) and inner.queries == 2


def test_phyll_trains_on_a_lab_layer_stack_sharing_one_physical_layer():
    ds, _ = fit_task(load_task("vowels", 0, ""), 20, 1.0)
    layer = LabLayer(_physics(20, 20))
    layer.standardise(256, 0.0, 1.0, torch.Generator().manual_seed(0))
    model = PhyLL([layer, layer.alias()], 7, n_label_slots=8, lr=3e-3, seed=0)
    model.fit(ds, epochs=20, eval_every=20)
    assert model.history[-1]["test_accuracy"] > 0.6  # chance is 1/7
    arrays, _ = model.checkpoint_state()
    assert any(k.startswith("state.physical.0.mean") for k in arrays)
    assert not any(k.startswith("state.physical.1") for k in arrays)  # the alias: no second copy


def test_a_phase_twin_is_periodic_and_fits_on_angle_features():
    bench = FunctionLayer(lambda x: torch.cos(2 * torch.pi * x[:, :3]), 5, 3)
    features = FeatureLayer(bench, PhaseInputs(1.0))
    f = features.sample(4, torch.Generator().manual_seed(0))
    assert f.shape == (4, 10) and bench.queries == 0
    twin = FeatureTwin(DigitalTwin(10, 3, (16,)), PhaseInputs(1.0))
    x = torch.rand(6, 5)
    assert torch.allclose(twin(x), twin(x + 1.0), atol=1e-5)
    assert torch.allclose(twin(x), twin(x - 3.0), atol=1e-5)


@pytest.mark.parametrize(
    "station, expected",
    [
        (
            "acoustic-sim",
            {"layers": 2, "lr": 5e-4, "epochs": 200, "skip": "on", "input_range": 1.0},
        ),
        ("microwave-sim", {"layers": 3, "lr": 2.5e-4, "epochs": 100, "skip": "on"}),
        ("optical-sim", {"layers": 2, "skip": "off", "input_range": 0.5, "batch_size": 256}),
    ],
)
def test_zero_and_auto_parameters_mean_the_benchs_published_settings(station, expected):
    procedure = TrainPhyLL()
    procedure.station_config = StationConfig.load(station)
    for key, value in expected.items():
        assert procedure.setting(key) == value, key
    procedure.set_parameter("lr", "1e-3")
    assert procedure.setting("lr") == 1e-3  # an explicit value always wins


def test_pat_estimates_twin_data_training_and_evaluation_queries():
    procedure = TrainPAT()
    procedure.station_config = StationConfig.load("acoustic-sim")
    for key, value in {"epochs": 10, "eval_every": 5, "twin_samples": 1000}.items():
        procedure.set_parameter(key, value)
    estimate = procedure.estimate()
    # probes + twin pairs + 10 epochs x 206 x 2 layers + 2 evaluations x 258 rows x 2 layers
    assert estimate.queries == 256 + 1000 + 10 * 206 * 2 + 2 * 258 * 2
    assert estimate.seconds == pytest.approx(estimate.queries * 0.3)


def test_recentring_without_standardisation_is_bad_input_that_says_what_to_set():
    procedure = TrainPhyLL()
    config = StationConfig.load("microwave-sim", ["bench.simulation.transport=direct"])
    procedure.station_config, procedure.station = config, config.connect()
    try:
        procedure.set_parameter("recentre", True)  # microwave-sim: standardise is off
        with pytest.raises(BadInput, match="recentre=true needs .* standardise=on"):
            procedure.validate()
        procedure.set_parameter("standardise", "on")
        procedure.validate()
    finally:
        procedure.station.close()


@pytest.mark.parametrize("smooth", [True, False])
def test_a_twin_that_explains_little_of_the_bench_is_reported_as_such(smooth, caplog):
    import logging
    from types import SimpleNamespace

    from labpnn.procedures.training.common import BENCH_DEFAULTS
    from labpnn.procedures.training.twin import fit_bench_twin

    noise = torch.Generator().manual_seed(2)
    physics = _physics(20, 16)
    layer = LabLayer(
        FunctionLayer(physics if smooth else (lambda x: torch.rand(x.shape[0], 16, generator=noise)),
                      20, 16)
    )  # fmt: skip
    procedure = SimpleNamespace(
        bench_defaults=BENCH_DEFAULTS["acoustic"], bench_kind="acoustic", twin_hidden="64",
        twin_samples=1500, twin_epochs=60, twin_lr=3e-3, seed=0,
        log=logging.getLogger("twin-test"), progress=lambda *a, **k: None,
        twin_model_for=lambda kind: "mlp",
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="twin-test"):
        _, report = fit_bench_twin(procedure, layer, {})
    assert (report["validation_nrmse"] < 0.5) == smooth
    assert ("explains little" in caplog.text) == (not smooth)


class _CodedCavity:
    """Four inputs written as 2-bit codes onto 8 elements; |linear response| (first-order cavity)."""

    n_in, n_out = 4, 6

    def __init__(self):
        from labpnn.bench.microwave import code_table

        g = torch.Generator().manual_seed(0)
        self.input_code = code_table(2)
        self.response = torch.randn(8, 6, generator=g) + 1j * torch.randn(8, 6, generator=g)

    def __call__(self, x):
        from labpnn.bench.microwave import quantise

        bits = torch.from_numpy(quantise(x.numpy(), 2)).to(torch.complex64)
        return (bits @ self.response + 1.0).abs()


def test_code_inputs_are_the_bits_the_bench_writes_and_mix_between_level_centres():
    from labpnn.bench.microwave import code_table, quantise
    from labpnn.procedures.training.layers import CodeInputs

    inputs = CodeInputs(code_table(2))
    features = inputs.sample(50, 4, torch.Generator().manual_seed(1))
    x = inputs.from_features(features)
    # what the features say is what the bench would write for the recovered inputs
    written = torch.from_numpy(quantise(x.numpy(), 2)).float()
    assert torch.equal(written, features) and torch.equal(inputs.features(x), features)
    # the value is always the code the bench writes; the gradient is that of the codes mixed
    # between neighbouring level centres, so an input can move towards the next level
    x = torch.tensor([[0.45]], requires_grad=True)  # level 1 (10), towards level 2 (01)
    written = inputs.features(x)
    assert torch.equal(written.detach(), torch.tensor([[1.0, 0.0]]))
    written[0, 1].backward()
    assert x.grad.item() == pytest.approx(4.0)  # one level per 1/4 of the input range
    # below the first level centre: the end code, with a gradient inwards; beyond [0, 1]: none
    x = torch.tensor([[0.05, -2.0, 3.0]], requires_grad=True)
    ends = inputs.features(x)
    assert torch.equal(ends.detach(), torch.tensor([[0.0, 0, 0, 0, 1, 1]]))
    ends[0, 0].backward()
    assert x.grad.tolist() == [[4.0, 0.0, 0.0]]
    # every input, not only level centres, is seen as what the bench writes (in-silico trains
    # on the twin's forward pass)
    x = torch.rand(200, 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(inputs.features(x), torch.from_numpy(quantise(x.numpy(), 2)).float())


def test_a_twin_of_a_coded_bench_fits_on_its_code_far_better_than_on_the_raw_inputs():
    from labpnn.learning import fit_twin
    from labpnn.procedures.training.layers import input_representation

    bench = _CodedCavity()
    inputs = input_representation(LabLayer(bench))  # found on the bench inside the lab layer
    assert inputs is not None and inputs.describe() == {
        "input_code": [[0, 0], [1, 0], [0, 1], [1, 1]]
    }
    raw = fit_twin(bench, 1500, lambda n, g: torch.rand(n, 4, generator=g), hidden=(64, 64),
                   epochs=60, seed=0)  # fmt: skip
    coded = FeatureLayer(bench, inputs)
    code = fit_twin(coded, 1500, coded.sample, hidden=(64, 64), epochs=60, seed=0)
    # measured: 0.10 on the code, 0.71 on the raw inputs
    assert code.report["validation_nrmse"] < 0.3 < 0.5 < raw.report["validation_nrmse"]
    twin = FeatureTwin(code, inputs)
    x = torch.rand(20, 4, generator=torch.Generator().manual_seed(2))
    centres = (torch.floor(x * 4) + 0.5) / 4
    error = (twin(centres) - bench(centres)).pow(2).mean() / bench(centres).var()
    assert error.sqrt() < 0.3


def test_a_coded_bench_reuses_only_a_twin_registered_with_its_code():
    from types import SimpleNamespace

    from labpnn.procedures.training.twin import load_twin

    def registered(meta):
        twin = DigitalTwin(8 if meta.get("input_code") else 4, 6, (8,))
        arrays = {f"twin.{k}": v.numpy() for k, v in twin.state_dict().items()}
        base = {"n_in": 4, "n_out": 6, "hidden": [8], "standardised": False}
        return SimpleNamespace(metrics={**base, **meta}, expired=False, arrays=lambda: arrays,
                               id=1, run_file="", age_s=0.0)  # fmt: skip

    layer = LabLayer(_CodedCavity())
    raw = registered({"input_period": None})  # fitted on the raw inputs (before the code)
    other = registered({"input_code": [[0], [1]]})  # another layout's code
    assert load_twin(SimpleNamespace(history=lambda kind: [raw, other]), layer, False) is None
    coded = registered({"input_code": [[0, 0], [1, 0], [0, 1], [1, 1]]})
    found = load_twin(SimpleNamespace(history=lambda kind: [coded, raw]), layer, False)
    assert found is not None and isinstance(found[0], FeatureTwin)


def test_pat_standardises_in_the_trainer_where_the_bench_layer_does_not():
    config = StationConfig.load("microwave-sim", ["bench.simulation.transport=direct"])
    for standardise, in_trainer in (("auto", True), ("on", False)):  # microwave: auto is off
        procedure = TrainPAT()
        procedure.set_parameter("standardise", standardise)
        procedure.station = config.connect()
        try:
            twin = FeatureTwin(
                DigitalTwin(40, 20, (8,)),
                input_representation_from({"input_code": [[0, 0], [1, 0], [0, 1], [1, 1]]}),
            )
            procedure.obtain_twin = lambda meta, twin=twin: (twin, {})
            task, _ = fit_task(load_task("vowels", 0, ""), 20, 1.0)
            trainer = procedure.build(task, None)
            assert bool(trainer.network.standardisers) is in_trainer
            # a resume builds the trainer as its checkpoint says, e.g. one from before this
            # standardised in the trainer
            for saved in (False, True):
                resume_meta = {"trainer": {"config": {"standardise": saved}}}
                resumed = procedure.build(task, resume_meta)
                assert bool(resumed.network.standardisers) is saved
            assert not procedure.build(task, {"trainer": {"config": {}}}).network.standardisers
        finally:
            procedure.station.close()


def test_pat_skip_auto_means_off_and_takes_phylls_spelling():
    # `labpnn run train-pat --from` a PhyLL run brings skip=auto; it must mean PAT's own default
    procedure = TrainPAT()
    procedure.station_config = StationConfig.load("acoustic-sim")
    procedure.set_parameter("skip", "auto")
    assert procedure.setting("skip") == "off"
    assert procedure.effective_settings()["skip"] == "off"
    procedure.set_parameter("skip", "on")
    assert procedure.setting("skip") == "on"
    # and a PhyLL run `--from` a PAT run at its default keeps the bench's skip
    phyll = TrainPhyLL()
    phyll.station_config = procedure.station_config
    phyll.set_parameter("skip", TrainPAT().skip)
    assert phyll.setting("skip") == "on"
