"""calibrate-vna: one-port or SOLT calibration of the VNA with scikit-rf.

The standards are connected by whoever can: a person (terminal prompt or GUI dialog),
an electronic calibration unit, or, on a simulated bench, the world itself. The error
terms go into the calibration registry, from which later sweeps are corrected. On a
simulated bench the corrected device is compared with the simulator's truth
(``max_error``), which proves the hidden error boxes are removed.
"""

from __future__ import annotations

import numpy as np

from labpnn.bench.microwave import DEFAULT_SWEEP
from labpnn.calibration.vna import (
    build_one_port,
    build_solt,
    calibration_arrays,
    max_error,
    measure_standards,
    operator_connect,
)
from labpnn.procedure import Estimate, FloatParameter, LabProcedure, ListParameter
from labpnn.procedures.calibration.summary_docs import VNA

COMPLEX_S = "1 (complex S-parameter, linear)"


class CalibrateVNA(LabProcedure):
    """One-port or SOLT VNA calibration from measured standards (scikit-rf)."""

    name = "calibrate-vna"
    bench_kinds = ("microwave",)
    roles = ("vna",)
    default_station = "microwave-sim"
    watchdog_s = 3600.0  # a person may take a while to connect a standard

    method = ListParameter("Calibration", choices=["solt", "one-port"], default="solt")
    valid_for_h = FloatParameter("Valid for", units="h", default=24.0, minimum=0.01, maximum=1e4)

    def estimate(self) -> Estimate:
        sweeps = 5 if self.method == "solt" else 4
        sweep = {**DEFAULT_SWEEP, **dict(self.station_config.bench.layout.get("vna") or {})}
        per_sweep = sweep["points"] / sweep["ifbw_hz"] * 1.2 + 0.01
        return Estimate(queries=sweeps, seconds=sweeps * per_sweep,
                        note="plus the time to connect each standard")  # fmt: skip

    def execute(self) -> None:
        vna = self.station["vna"]
        layout = self.station.bench.layout
        vna.configure(**{**DEFAULT_SWEEP, **dict(layout.get("vna") or {})})
        vna.rf_on = True
        ports = (1, 2) if self.method == "solt" else (1,)
        steps = iter(range(1, 6))
        measured = measure_standards(
            vna, operator_connect(self.operator), ports=ports,
            progress=lambda what: self.progress(next(steps, 5), 6, step=what),
        )  # fmt: skip
        kit = layout.get("cal_kit") or {}
        cal = build_solt(measured, kit) if ports == (1, 2) else build_one_port(measured, 1, kit)
        cal.run()
        arrays = calibration_arrays(cal)
        for name, network in measured.items():
            self.run.write_array(
                f"calibration/standards/{name}", network.s, unit=COMPLEX_S,
                description=f"raw measured S-parameters of the {name} standard (no correction), "
                "[frequency, receiving port, driving port]; frequencies in "
                "calibration/error_terms/frequency_hz",
            )  # fmt: skip
        for key, values in arrays.items():
            self.run.write_array(
                f"calibration/error_terms/{key.replace(' ', '_')}", values,
                **({"unit": "Hz", "description": "frequency of each point of the sweep"}
                   if key == "frequency_hz" else
                   {"unit": COMPLEX_S, "description": f"scikit-rf error term '{key}' per frequency"}),
            )  # fmt: skip

        vna.apply_calibration(cal)
        vna.define_traces(["S11", "S21", "S12", "S22"] if ports == (1, 2) else ["S11"])
        corrected = vna.sweep()
        n_ports = corrected.s.shape[1]
        order = [f"S{i + 1}{j + 1}" for i in range(n_ports) for j in range(n_ports)]
        self.run.set_trace_axis("corrected", corrected.f, "Hz")
        self.run.append_trace(
            "corrected", corrected.s.reshape(len(corrected.f), -1), unit=COMPLEX_S,
            columns=order, description="the device swept through the new calibration: "
            f"[frequency, S-parameter], columns {', '.join(order)}; frequencies in corrected_x",
        )  # fmt: skip
        summary = {"method": self.method, "points": len(corrected.f), "queries": len(ports) * 0}
        truth = self.station.ground_truth
        if truth is not None:
            if ports == (1, 2):
                errors = [max_error(corrected.s[:, 1, 0], truth["s21"]),
                          max_error(corrected.s[:, 0, 0], truth["s11"])]  # fmt: skip
            else:
                errors = [max_error(corrected.s[:, 0, 0], truth["gamma_in_port1"])]
            summary["max_error"] = float(max(errors))
        summary["queries"] = len(measured) + 1
        self.run.set_summary(**summary)
        self.run.describe_summary(VNA)
        self.registry.save(
            "vna",
            arrays={**{k.replace(" ", "_"): v for k, v in arrays.items()}},
            metrics=summary,
            run_file=self.run.path,
            valid_for_s=self.valid_for_h * 3600,
        )
        self.progress(6, 6)
        if "max_error" in summary:
            self.log.info("calibrated (%s): max |corrected - true| = %.3g",
                          self.method, summary["max_error"])  # fmt: skip

    @classmethod
    def plot_report(cls, f, figure) -> None:
        f_hz = f["calibration/error_terms/frequency_hz"][()]
        ax = figure.add_subplot(1, 2, 1)
        terms = [
            (name, np.abs(f["calibration/error_terms"][name][()]))
            for name in f["calibration/error_terms"]
            if name != "frequency_hz"
        ]
        terms = [(n, v) for n, v in terms if v.max() > 1e-6]  # skip terms that are zero
        # 12 two-port terms outgrow the 10-colour cycle: one colour each from tab20
        colours = plt_colours(len(terms))
        for (name, values), colour in zip(terms, colours):
            ax.plot(f_hz / 1e9, 20 * np.log10(values), color=colour, label=name.replace("_", " "))
        ax.set_xlabel("frequency (GHz)")
        ax.set_ylabel("|error term| (dB)")
        # below the axes: inside, 12 entries cover the noise-level switch terms
        ax.legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1))
        ax.set_title("error terms")
        ax = figure.add_subplot(1, 2, 2)
        corrected = f["traces/corrected"][-1]
        column = 2 if corrected.shape[1] == 4 else 0
        ax.plot(f_hz / 1e9, 20 * np.log10(np.abs(corrected[:, column])))
        ax.set_xlabel("frequency (GHz)")
        ax.set_ylabel("|S21| dB" if column == 2 else "|S11| dB")
        ax.set_title("corrected device")


def plt_colours(n: int) -> list:
    """``n`` distinct colours (tab20, then repeating) for line plots with many series."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]
