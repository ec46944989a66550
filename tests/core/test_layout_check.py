"""``bench.layout`` is checked before a station connects: unknown keys and bad values name the key."""

from __future__ import annotations

import pytest

from labpnn.bench import check_layout, layout_keys
from labpnn.errors import ConfigError
from labpnn.paths import bundled_stations
from labpnn.station import StationConfig


def test_every_bundled_station_layout_passes():
    for name in bundled_stations():
        config = StationConfig.load(name)
        check_layout(config.bench.kind, config.bench.layout)


def test_a_misspelt_key_is_refused_with_the_known_keys():
    hint = r"unknown key\(s\) n_tone \(did you mean 'n_tones'\?\) for the acoustic bench"
    with pytest.raises(ConfigError, match=hint) as error:
        check_layout("acoustic", {"n_tone": 10})
    assert all(key in str(error.value) for key in layout_keys("acoustic"))
    with pytest.raises(ConfigError, match=r"bench.layout.vna: unknown key\(s\) point;"):
        check_layout("microwave", {"vna": {"point": 201}})
    with pytest.raises(ConfigError, match="bench.layout.pool: unknown key"):
        check_layout("optical", {"pool": {"kernal": 2}})


@pytest.mark.parametrize(
    ("kind", "layout", "message"),
    [
        ("acoustic", {"n_tones": "twenty"}, "bench.layout.n_tones must be an integer >= 1, got 'twenty'"),
        ("acoustic", {"duration_s": -1}, "bench.layout.duration_s must be a number > 0"),
        ("acoustic", {"spacing": "cubic"}, "bench.layout.spacing must be one of linear, log"),
        ("microwave", {"vna": {"points": 1.5}}, "bench.layout.vna.points must be an integer"),
        ("optical", {"camera_roi": [0, 0, 64]}, "bench.layout.camera_roi must be [x, y, width, height]"),
        ("optical", {"macropixels": [16, "x"]}, "bench.layout.macropixels must be an integer"),
    ],
)  # fmt: skip
def test_a_bad_value_names_its_key(kind, layout, message):
    with pytest.raises(ConfigError) as error:
        check_layout(kind, layout)
    assert message in str(error.value)


def test_unknown_bench_kinds_are_not_checked():
    check_layout("fake", {"pixels": 64})


def test_the_cli_refuses_a_misspelt_layout_key_before_connecting(labpnn, lab_dirs):
    res = labpnn("run", "train-ff", "--station-set", "bench.layout.n_tone=10", "--no-progress")
    assert res.returncode == 2, res.stderr
    assert "n_tone" in res.stderr and "n_tones" in res.stderr
    assert list(lab_dirs[0].rglob("*.h5")) == []
    check = labpnn("station", "check", "acoustic-sim", "--station-set", "bench.layout.n_tone=10")
    assert check.returncode == 2 and "unknown key(s) n_tone" in check.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("bench.simulation.cavity.decay_s=-1", "cavity: decay_s must be > 0, got -1"),
        ("bench.simulation.cavity.membranes=two", "membranes must be >= 0, got 'two'"),
    ],
)
def test_station_check_builds_a_simulated_world_and_names_a_bad_simulation_value(override, message):
    from click.testing import CliRunner

    from labpnn.cli import main

    result = CliRunner().invoke(
        main, ["station", "check", "acoustic-sim", "--station-set", override]
    )
    assert result.exit_code == 2 and message in result.output, result.output
    good = CliRunner().invoke(main, ["station", "check", "acoustic-sim"])
    assert good.exit_code == 0 and "simulated world and drivers built" in good.output
    with pytest.raises(ConfigError, match="bench.simulation.cavity: "):
        StationConfig.load("acoustic-sim", [override]).connect()


def test_a_value_a_simulated_world_chokes_on_is_bad_config_not_a_crash():
    """Whatever a simulator raises on a bad value becomes a ConfigError saying where to look."""
    with pytest.raises(ConfigError, match="optical world rejects a value under bench.simulation"):
        StationConfig.load(
            "optical-sim", ["bench.simulation.modes=many", "bench.simulation.medium=fiber"]
        ).connect()


def test_a_layout_may_be_named_and_the_name_keys_its_calibrations():
    check_layout("optical", {"name": "fibre B, 50 um core"})
    with pytest.raises(ConfigError, match="bench.layout.name must be text"):
        check_layout("acoustic", {"name": 3})
    a = StationConfig.load("optical-sim", ["bench.layout.name=fibre A"]).bench.layout_hash()
    b = StationConfig.load("optical-sim", ["bench.layout.name=fibre B"]).bench.layout_hash()
    assert a != b


def test_every_layout_key_the_code_reads_is_in_the_table():
    """The table of known keys is kept by hand: a key a parser reads but the table lacks
    would refuse every station that sets it. Read the parsers' own source to keep them in step."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readers = {
        "acoustic": ["labpnn/excitation.py"],
        "microwave": ["labpnn/bench/microwave.py", "mock_instruments/microwave_world.py",
                      "procedures/calibration/metasurface.py", "procedures/calibration/vna.py"],
        "optical": ["labpnn/bench/optical.py", "labpnn/bench/macropixels.py",
                    "mock_instruments/optical_world.py", "mock_instruments/physics/optics.py",
                    "procedures/calibration/tm.py", "procedures/control/common.py",
                    "procedures/control/tm.py"],
    }  # fmt: skip
    readers["any"] = ["procedures/training/common.py"]  # reads every kind's keys
    known = {kind: set(layout_keys(kind)) for kind in readers if kind != "any"}
    known["any"] = set().union(*known.values())
    pattern = re.compile(r"layout(?:\.get\(|\[)\"([a-z_]+)\"")
    for kind, files in readers.items():
        read = {key for f in files for key in pattern.findall((root / f).read_text())}
        assert read, kind
        assert read <= known[kind], (kind, sorted(read - known[kind]))


@pytest.mark.parametrize(
    "override, message",
    [
        ("bench.layout.vna.points=1", r"bench.layout.vna.points: vna: points=1 is outside"),
        ("bench.layout.vna.power_dbm=10", r"power_dbm=10 dBm is outside the lab limit -40..0"),
        ("bench.layout.vna.start_hz=3e9", r"start_hz \(3e\+09\) must be below stop_hz"),
    ],
)
def test_a_sweep_the_vna_or_the_lab_refuses_is_bad_input_before_any_file(
    labpnn, lab_dirs, override, message
):
    import re

    res = labpnn("run", "map-metasurface", "--station", "microwave-sim", "--station-set", override)
    assert res.returncode == 2, res.stderr
    assert re.search(message, res.stderr), res.stderr
    assert not list(lab_dirs[0].rglob("*.h5"))


def test_station_check_names_every_instrument_a_real_bench_lacks_here(monkeypatch):
    from click.testing import CliRunner

    from labpnn.cli import main
    from labpnn.drivers.camera.genicam import GenICamCamera
    from labpnn.drivers.slm.screen import ScreenSLM
    from labpnn.errors import MissingDependency

    def missing(what):
        def check(cls, options):
            raise MissingDependency(f"{what} is not installed")

        return classmethod(check)

    monkeypatch.setattr(ScreenSLM, "check_available", missing("the display"))
    monkeypatch.setattr(GenICamCamera, "check_available", missing("harvesters"))
    res = CliRunner().invoke(main, ["station", "check", "optical-lab.example"])
    assert res.exit_code == 2
    assert "NOT AVAILABLE here: slm: the display is not installed" in res.output
    assert "NOT AVAILABLE here: camera: harvesters is not installed" in res.output  # not hidden


def test_did_you_mean_names_only_close_matches():
    from labpnn.errors import did_you_mean

    known = ["epochs", "eval_every", "lr", "seed"]
    assert did_you_mean(["epoch"], known) == " (did you mean 'epochs'?)"
    assert did_you_mean(["epoch", "sed"], known) == " (did you mean 'epochs' or 'seed'?)"
    assert did_you_mean(["zzz"], known) == ""
    assert did_you_mean("epoch", known) == " (did you mean 'epochs'?)"  # a bare name
    assert did_you_mean([3], {"3x": 1, "lr": 2}) == ""  # non-string keys are compared as text
