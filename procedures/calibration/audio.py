"""calibrate-audio: the sound card's loop latency and the cavity's transfer function.

Playback-to-record latency changes from call to call on real sound cards, so every
measurement is aligned on the wired loopback; this procedure reports how much it
varies, and the linear transfer at the bench's working tones, for drift tracking.
"""

from __future__ import annotations

import numpy as np

from labpnn.calibration.audio import measure_latency, transfer_function
from labpnn.excitation import MultitonePlan
from labpnn.procedure import Estimate, FloatParameter, IntegerParameter, LabProcedure
from labpnn.procedures.calibration.summary_docs import AUDIO

IMPULSE_RESPONSE = (
    "impulse response of speaker, cavity and microphone, aligned on the wired loopback "
    "(sample 0 = the moment the sound card's output starts): microphone full scale per unit "
    "of speaker drive, per sample"
)


class CalibrateAudio(LabProcedure):
    """Loop latency (chirp cross-correlation) and transfer function at the working tones."""

    name = "calibrate-audio"
    bench_kinds = ("acoustic",)
    roles = ("audio",)
    default_station = "acoustic-sim"
    watchdog_s = 120.0

    n_calls = IntegerParameter("Latency measurements", default=20, minimum=2, maximum=10000)
    chirp_amplitude = FloatParameter(
        "Chirp amplitude", units="FS", default=0.1, minimum=1e-4, maximum=1.0
    )
    n_average = IntegerParameter("Transfer-function repeats", default=4, minimum=1, maximum=1000)
    valid_for_h = FloatParameter("Valid for", units="h", default=24.0, minimum=0.01, maximum=1e4)

    def _plan(self, layout) -> MultitonePlan:
        return MultitonePlan.from_layout(layout)

    def estimate(self) -> Estimate:
        plan = self._plan(self.station_config.bench.layout)
        per_call = 0.1 + 0.05  # chirp + margin, s
        per_tf = plan.window_s + plan.settle_s + 2 * plan.fade_s
        return Estimate(
            queries=self.n_calls + self.n_average,
            seconds=self.n_calls * per_call + self.n_average * per_tf,
        )

    def execute(self) -> None:
        card = self.station["audio"]
        plan = self._plan(self.station.bench.layout)
        total = self.n_calls + self.n_average

        samplerate = int(card.samplerate)

        def keep(call: int, lat: int, delay: int, ir: np.ndarray) -> None:
            self.run.append_row(call=call, latency_samples=lat, acoustic_delay_samples=delay)
            if call == 0:
                self.run.set_trace_axis("impulse_response", np.arange(len(ir)) / samplerate, "s")
            self.run.append_trace(
                "impulse_response", ir.astype(np.float32), unit="FS/FS", samplerate=samplerate,
                description=f"{IMPULSE_RESPONSE}; one per latency call; samplerate in Hz, "
                "time axis (s) in impulse_response_x",
            )  # fmt: skip

        latency = measure_latency(
            card,
            n_calls=self.n_calls,
            amplitude=self.chirp_amplitude,
            progress=lambda i, n: self.progress(i, total, stage="latency"),
            on_call=keep,
        )
        transfer = transfer_function(
            card,
            plan.tones_hz,
            n_average=self.n_average,
            progress=lambda i, n: self.progress(self.n_calls + i, total, stage="transfer"),
        )
        self.run.write_array("calibration/tones_hz", transfer.tones_hz, unit="Hz",
                             description="the working tones (on the analysis window's bins)")  # fmt: skip
        self.run.write_array("calibration/transfer", transfer.transfer, unit="FS/FS",
                             description="complex H at each tone: recorded over played amplitude "
                             "(microphone over speaker full scale), mean over the repeats")  # fmt: skip
        self.run.write_array("calibration/transfer_std", transfer.transfer_std, unit="FS/FS",
                             description="std of |transfer| between the repeats at each tone "
                             "(noise)")  # fmt: skip
        self.run.write_array(
            "calibration/impulse_response", latency.impulse_response,
            samplerate=latency.samplerate, unit="FS/FS",
            description=f"{IMPULSE_RESPONSE}; mean over the latency calls; sample k is at "
            "k / samplerate s (samplerate in Hz)",
        )  # fmt: skip
        gain_db = float(np.mean(transfer.magnitude_db))
        summary = {**latency.summary(), "gain_db": gain_db, "queries": total}
        self.run.set_summary(**summary)
        self.run.describe_summary(AUDIO)
        self.registry.save(
            "audio",
            arrays={
                "latency_samples": latency.latency_samples,
                "tones_hz": transfer.tones_hz,
                "transfer": transfer.transfer,
            },
            metrics=summary,
            run_file=self.run.path,
            valid_for_s=self.valid_for_h * 3600,
        )
        self.log.info(
            "latency %.1f ± %.1f samples; mean gain %.1f dB",
            latency.mean,
            latency.std,
            gain_db,
        )

    @classmethod
    def plot_report(cls, f, figure) -> None:
        from labpnn.reports import count_ticks

        ax = figure.add_subplot(1, 2, 1)
        ax.plot(f["results/latency_samples"][()], marker=".")
        ax.set_xlabel("call")
        count_ticks(ax.xaxis)
        ax.set_ylabel("loop latency (samples)")
        ax.set_title("latency per call (aligned on the loopback)")
        ax = figure.add_subplot(1, 2, 2)
        tones = f["calibration/tones_hz"][()]
        transfer = f["calibration/transfer"][()]
        ax.plot(tones, 20 * np.log10(np.abs(transfer)), marker="o")
        ax.set_xlabel("tone (Hz)")
        ax.set_ylabel("|H| (dB)")
        ax.set_title("transfer at the working tones")
