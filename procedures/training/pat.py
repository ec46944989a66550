"""``train-pat``: physics-aware training, the bench in the forward pass and a twin in the backward.

The network is ``x -> D_0 -> P -> D_1 -> P -> ... -> readout`` (:class:`labpnn.learning.PhysicsAwareTrainer`):
every forward pass is measured on the bench and the gradient through each physical layer is the
twin's vector-Jacobian product at the measured activations. The twin is the latest one in the
calibration registry that fits the bench (``twin=auto``, or ``registry`` to insist on one), else it
is fitted first on ``twin_samples`` measured pairs and registered (``twin=fit`` always fits). The
twin's data are counted in the run's queries (``twin_queries``), as S8 requires.

Example::

    labpnn run fit-twin --station acoustic-sim
    labpnn run train-pat --station acoustic-sim --set epochs=100
"""

from __future__ import annotations

from typing import Any, ClassVar

from labpnn.errors import BadInput
from labpnn.learning import PhysicsAwareTrainer, Trainer
from labpnn.procedure import ListParameter
from labpnn.procedures.training.common import PhysicalTrainingProcedure, book_costs
from labpnn.procedures.training.twin import (
    TWIN_KIND,
    TwinParameters,
    blank_twin,
    fit_bench_twin,
    load_twin,
    save_twin,
    warn_if_poor_twin,
)

__all__ = ["TrainPAT", "TwinTrainingProcedure"]


# the twin_* parameters and the keys a fitted twin's description records them under
TWIN_FIT_FIELDS = {
    "twin_samples": "samples",
    "twin_epochs": "epochs",
    "twin_lr": "lr",
    "twin_hidden": "hidden",
}
# the same for a TM twin (twin_model=tm), whose fitting is its output map's pairs
TM_TWIN_FIELDS = {"tm_pairs": "samples"}


class TwinTrainingProcedure(TwinParameters, PhysicalTrainingProcedure):
    """Training that needs a digital twin of the bench: PAT and in-silico."""

    family: ClassVar[str] = "pat"
    trainer_class: ClassVar[type] = PhysicsAwareTrainer

    twin = ListParameter(
        "Twin (auto = latest registered else fit one, registry = must exist, fit = fit anew)",
        choices=["auto", "registry", "fit"],
        default="auto",
    )
    # "auto" (= off) as PhyLL's skip spells its default, so that `run train-pat --from` a PhyLL
    # run (skip=auto) is accepted and `run train-phyll --from` a PAT run keeps the bench's skip
    skip = ListParameter(
        "Skip concatenation [P(a), a], as PhyLL's (auto = off, the PAT of Wright et al. 2022)",
        choices=["auto", "off", "on"],
        default="auto",
    )

    def validate(self) -> None:
        super().validate()  # twin_hidden: TwinParameters.check_station_config
        if self.twin == "fit":
            self.require_tm_if_needed()  # before the standardisation probes are spent
        if self.twin == "registry" and self.registry.latest(TWIN_KIND) is None:
            raise BadInput(
                f"{self.name}: twin=registry but station '{self.station.name}' has no registered "
                f"twin; run `labpnn run fit-twin --station {self.station.name}` first, or use "
                "twin=auto to fit one in this run"
            )

    def default(self, key: str) -> Any:
        if key == "skip":
            return "off"
        return super().default(key)

    def obtain_twin(self, resume_meta: dict | None) -> tuple[Any, dict]:
        """(twin, its description) for a fresh start or a resume; its report holds its cost."""
        layer = self.physical_layer()
        if resume_meta is not None:  # the checkpoint holds the twin's tensors
            meta = resume_meta["extra"]["twin"]
            return blank_twin(meta), meta
        if self.twin != "fit":
            model = self.twin_model_for(self.bench_kind)
            found = load_twin(self.registry, layer, self.standardised, model)
            if found is not None:
                twin, meta = found
                meta["reused"] = True  # fitted by another run: this run's twin_* did nothing
                self.record_calibration(meta.pop("calibration", None))
                self.log.info(
                    "using registered twin #%s (validation NRMSE %.3f, %.0f s old)",
                    meta["registry_id"], meta.get("validation_nrmse") or float("nan"), meta["age_s"],
                )  # fmt: skip
                nrmse = meta.get("validation_nrmse")
                warn_if_poor_twin(
                    self, None if nrmse is None else float(nrmse),
                    f"registered twin #{meta['registry_id']}", meta.get("model", "mlp"),
                )  # fmt: skip
                return twin, meta
            if self.twin == "registry":
                other = "mlp" if model == "tm" else "tm"
                raise BadInput(
                    f"no registered {model} twin fits this bench ({layer.n_in}->{layer.n_out}"
                    + (", fitted after the latest TM at this exposure" if model == "tm" else "")
                    + f"); run fit-twin with twin_model={model}, or ask for "
                    f"twin_model={other}"
                )
        probe_cost = self.standardise_on_probes()
        twin, meta = fit_bench_twin(self, layer, probe_cost)
        meta["registry_id"] = save_twin(self, twin, meta, layer)
        return twin, meta

    def build(self, task: Any, resume_meta: dict | None) -> Trainer:
        twin, meta = self.obtain_twin(resume_meta)
        self.twin_meta = {k: v for k, v in meta.items() if k not in ("age_s",)}
        stack = self.physical_stack()
        trainer = self.trainer_class(
            stack,
            [twin] * len(stack),
            n_classes=task.n_classes,
            lr=float(self.setting("lr")),
            batch_size=self.batch,
            standardise=self.trainer_standardises(resume_meta),
            skip=self.setting("skip") == "on",
            seed=int(self.seed),
            divergence_bound=float(self.divergence_bound),
        )
        if resume_meta is None and len(stack) > 1:
            # The twin's data were booked once per physical layer; the layers share one twin.
            report = getattr(twin, "report", {})
            book_costs(
                trainer,
                queries=-(len(stack) - 1) * int(report.get("queries", 0)),
                hardware_s=-(len(stack) - 1) * float(report.get("hardware_s", 0.0)),
                digital_flops=-(len(stack) - 1) * float(report.get("digital_flops", 0.0)),
                twin=True,
            )
        return trainer

    def trainer_standardises(self, resume_meta: dict | None) -> bool:
        """Whether the trainer standardises the physical outputs.

        The bench layer standardises on random probes (LabLayer) where the bench's default
        says so; elsewhere (microwave) the trainer must, or raw |S21| of a few hundredths
        leaves the readout at chance. A resume builds the trainer as its checkpoint was
        (those from before the trainer standardised here trained without it).
        """
        if resume_meta is not None:
            return bool(resume_meta["trainer"].get("config", {}).get("standardise", False))
        return not self.standardised

    def checkpoint_extra(self) -> dict:
        return {"twin": self.twin_meta}

    def effective_settings(self) -> dict[str, Any]:
        """With a registered twin reused, its own fitting settings replace this run's
        ``twin_*`` parameters (which fitted nothing); those it does not record are left out."""
        settings = super().effective_settings()
        meta = getattr(self, "twin_meta", None) or {}
        if meta and "twin_model" in settings:
            settings["twin_model"] = meta.get("model", "mlp")  # auto, resolved
        if meta.get("reused"):
            model = meta.get("model", "mlp")
            for key in (*TWIN_FIT_FIELDS, *TM_TWIN_FIELDS):
                settings.pop(key, None)
            settings["twin_model"] = model
            for key, field in (TM_TWIN_FIELDS if model == "tm" else TWIN_FIT_FIELDS).items():
                if field in meta:
                    value = meta[field]
                    settings[key] = ",".join(map(str, value)) if key == "twin_hidden" else value
        return settings

    def setup_queries(self) -> int:
        if self.twin == "registry":
            return 0
        return super().setup_queries() + self.twin_pairs()

    def queries_per_epoch(self, n_train: int, n_classes: int) -> int:
        return n_train * self.n_layers  # one measured forward pass per sample

    def queries_per_evaluation(self, n_rows: int, n_classes: int) -> int:
        return n_rows * self.n_layers


class TrainPAT(TwinTrainingProcedure):
    """Physics-aware training of the digital maps around the bench's physical layers."""

    name: ClassVar[str] = "train-pat"
    default_station: ClassVar[str] = "acoustic-sim"
