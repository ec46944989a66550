"""What the calibration procedures' ``/summary`` keys mean: ``{key: (units, description)}``.

Each procedure hands its table to ``RunWriter.describe_summary``, which writes them as the
``/summary/units`` and ``/summary/description`` attributes (as training runs do).
"""

from __future__ import annotations

_SIMULATED = "; simulated stations only (needs the simulator's ground truth)"
COST: dict[str, tuple[str, str]] = {
    "queries": ("count", "hardware queries of the run (frames, sweeps or playbacks)"),
    "hardware_s": (
        "s",
        "bench time on the station's clock (simulated time on a simulated bench, not wall time)",
    ),
}
CAMERA: dict[str, tuple[str, str]] = {
    "exposure_s": ("s", "exposure that keeps the brightest speckle below the ceiling"),
    "dark_level_adu": ("ADU", "mean over the ROI of the dark frame (zero-exposure intercept)"),
    "peak_fraction": ("fraction 0..1", "brightest pixel of the check frames over full scale"),
    "mean_signal_adu": ("ADU", "mean of the check frames minus the dark frame"),
    "dark_error_adu": ("ADU", "mean dark level minus the simulator's black level" + _SIMULATED),
    **COST,
}
TM: dict[str, tuple[str, str]] = {
    "n_modes": ("count", "modes (Hadamard basis size, columns of calibration/tm)"),
    "saturated_pixels": ("count", "ROI pixels that reached full scale during phase stepping"),
    "prediction_pearson": (
        "1 (Pearson r)",
        "mean Pearson between held-out speckle frames and the TM's prediction of them",
    ),
    "pearson": (
        "1 (|Pearson r|)",
        "mean column |Pearson| of the TM against the simulator's true TM" + _SIMULATED,
    ),
    "pearson_min": ("1 (|Pearson r|)", "lowest column |Pearson| of the same" + _SIMULATED),
    "exposure_s": ("s", "camera exposure of the phase-stepping frames"),
    **COST,
}
FOCUS: dict[str, tuple[str, str]] = {
    "enhancement": (
        "1 (ratio)",
        "focus intensity over the mean speckle intensity at that pixel, mean over the targets, "
        "all n_modes controlled",
    ),
    "enhancement_std": ("1 (ratio)", "std of the enhancement over the targets"),
    "enhancement_theory": ("1 (ratio)", "(π/4)(N−1)+1 for phase-only control of N = n_modes"),
    "enhancement_ratio": ("1 (ratio)", "enhancement over enhancement_theory"),
    "n_modes": ("count", "modes of the TM used (N)"),
    **COST,
}


def focus_docs(subsets: list[int]) -> dict[str, tuple[str, str]]:
    """FOCUS plus the ``enhancement_ratio_<N>`` keys of the smaller mode subsets."""
    return {
        **FOCUS,
        **{
            f"enhancement_ratio_{n}": ("1 (ratio)", f"enhancement over theory with {n} modes")
            for n in subsets
        },
    }


VNA: dict[str, tuple[str, str]] = {
    "method": ("", "calibration: solt (two-port, 12 terms) or one-port"),
    "points": ("count", "frequency points of the sweep"),
    "max_error": (
        "1 (linear S-parameter)",
        "largest |corrected − true| complex S-parameter deviation over frequency (S21 and S11 "
        "for SOLT, S11 for one-port)" + _SIMULATED,
    ),
    "queries": ("count", "sweeps: one per standard plus the corrected device"),
}
AUDIO: dict[str, tuple[str, str]] = {
    "latency_samples": (
        "samples",
        "mean playback-to-record loop latency over the calls, found on the wired loopback",
    ),
    "latency_std_samples": ("samples", "std of that latency between calls"),
    "gain_db": ("dB", "mean of 20·log10|H| over the working tones (H in FS/FS)"),
    "queries": ("count", "playbacks: latency calls plus transfer-function repeats"),
}
METASURFACE: dict[str, tuple[str, str]] = {
    "mean_s21": ("1 (linear |S21|)", "mean |S21| over configurations, repeats and frequency"),
    "config_spread": (
        "1 (linear |S21|)",
        "mean over frequency of calibration/between_configs (spread between configurations)",
    ),
    "noise_floor": (
        "1 (linear |S21|)",
        "mean over frequency of calibration/within_repeats (spread between repeats)",
    ),
    "snr_median": ("1 (ratio)", "median over frequency of between_configs / within_repeats"),
    "repeatability": (
        "1 (ratio)",
        "mean over frequency of within_repeats over the mean |S21| there",
    ),
    "queries": ("count", "sweeps"),
}
