"""Station configs: loading, overrides, limits and clear errors for bad config."""

from pathlib import Path

import numpy as np
import pytest

from labpnn.errors import ConfigError, LimitError
from labpnn.station import StationConfig

HERE = Path(__file__).parent
FAKE = HERE / "fake-station.yaml"


def test_fake_station_connects_and_snapshots_with_units_and_limits():
    cfg = StationConfig.load(FAKE)
    with cfg.connect() as st:
        snap = st.snapshot()
        param = snap["components"]["detector"]["parameters"]["exposure_s"]
        assert param["unit"] == "s"
        assert "1e-05" in param["vals"] and "0.1" in param["vals"]
        assert snap["labpnn"]["bench"]["kind"] == "fake"


def test_lab_limit_is_enforced_in_the_driver_setter_with_a_clear_message():
    with StationConfig.load(FAKE).connect() as st:
        with pytest.raises(LimitError) as err:
            st["detector"].exposure_s = 0.5
        msg = str(err.value)
        assert "detector" in msg and "exposure_s=0.5" in msg and "lab limit 1e-05..0.1 s" in msg
        with pytest.raises(LimitError, match="outside this FakeDetector's 0..24 dB"):
            st["detector"].gain_db = 30


def test_station_set_overrides_one_entry():
    cfg = StationConfig.load(FAKE, ["bench.layout.pixels=128", "bench.simulation.seed=3"])
    assert cfg.bench.layout["pixels"] == 128
    assert cfg.bench.simulation["seed"] == 3


@pytest.mark.parametrize(
    "override, refused",
    [
        ("instruments.detector.limits.exposure_s=[1.0e-5, 0.05]", False),  # tighter: fine
        ("instruments.detector.limits.gain_db=[0, 6]", False),  # a new limit: tighter
        ("instruments.detector.limits.exposure_s=[1.0e-5, 0.5]", True),  # wider
        ("instruments.detector.limits.exposure_s=[1.0e-6, 0.1]", True),
        ("instruments.detector.limits.exposure_s=null", True),  # dropped
        ("instruments.detector.limits={}", True),
    ],
)
def test_a_command_line_may_tighten_a_lab_limit_but_never_widen_it(override, refused):
    if not refused:
        StationConfig.load(FAKE, [override])
        return
    with pytest.raises(ConfigError, match="may only tighten a lab limit"):
        StationConfig.load(FAKE, [override])


def test_layout_hash_changes_with_layout_only():
    a = StationConfig.load(FAKE).bench.layout_hash()
    b = StationConfig.load(FAKE, ["bench.simulation.seed=3"]).bench.layout_hash()
    c = StationConfig.load(FAKE, ["bench.layout.pixels=32"]).bench.layout_hash()
    assert a == b != c


def test_a_calibration_is_valid_for_one_simulated_world_only(lab_dirs):
    """A TM measured on the world of seed 3 must not focus the world of seed 1."""
    from labpnn.ledger import Ledger
    from labpnn.registry import CalibrationRegistry

    def key(*overrides):
        return StationConfig.load("optical-sim", list(overrides)).calibration_hash()

    default = key()
    assert key("bench.simulation.seed=3") != default
    assert key("bench.simulation.transport=direct") == default  # how it is reached: same world
    assert key("bench.simulation.clock=real-time") == default
    assert key("bench.simulation.faults.nan_after_frames=20") == default  # a fault drill
    real = StationConfig.load(FAKE)  # a real bench: a stray simulation section means nothing
    real.bench.simulation = {"seed": 5}
    assert real.calibration_hash() == real.bench.layout_hash()  # its entries stay put
    ledger = Ledger()
    try:
        seeded = StationConfig.load("optical-sim", ["bench.simulation.seed=3"])
        CalibrationRegistry.for_config(ledger, seeded).save("tm", {"tm": np.ones((2, 2))})
        assert CalibrationRegistry.for_config(ledger, seeded).latest("tm") is not None
        plain = CalibrationRegistry.for_config(ledger, StationConfig.load("optical-sim"))
        assert plain.latest("tm") is None
    finally:
        ledger.close()


def test_a_simulated_calibration_never_satisfies_the_real_bench_of_the_same_name(lab_dirs):
    """Same name, same layout, no bench.simulation: only `simulated: true` differs."""
    import copy

    from labpnn.ledger import Ledger
    from labpnn.registry import CalibrationRegistry

    raw = StationConfig.load("microwave-sim").raw
    raw["bench"].pop("simulation")
    real_raw = copy.deepcopy(raw)
    for spec in real_raw["instruments"].values():
        spec["simulated"] = False
    simulated = StationConfig(raw, "bench")
    real = StationConfig(real_raw, "bench")
    assert simulated.simulated and not real.simulated
    assert real.calibration_hash() == real.bench.layout_hash()  # real entries stay valid
    assert simulated.calibration_hash() != real.calibration_hash()
    # a run that measures nothing still uses the simulated station's calibrations
    assert simulated.without_instruments().calibration_hash() == simulated.calibration_hash()
    ledger = Ledger()
    try:
        CalibrationRegistry.for_config(ledger, simulated).save("vna", {"e": np.ones(3)})
        assert CalibrationRegistry.for_config(ledger, simulated).latest("vna") is not None
        assert CalibrationRegistry.for_config(ledger, real).latest("vna") is None
    finally:
        ledger.close()


@pytest.mark.parametrize(
    "text, message",
    [
        ("instruments: {a: [1, 2\n", "malformed YAML at line 2"),
        (
            "instruments:\n  cam: {driver: labpnn.drivers.nope.Camera}\nbench: {kind: x}\n",
            "unknown driver class 'labpnn.drivers.nope.Camera'",
        ),
        ("bench: {kind: x}\n", "'instruments' must map roles"),
        (
            "instruments:\n  d: {driver: tests.core.fakes.FakeDetector, limits: {volume: [0, 1]}}\n"
            "bench: {kind: fake}\n",
            "limit 'volume' is not a setting",
        ),
    ],
)
def test_bad_station_files_give_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        StationConfig.load(path).check()


def test_identity_mismatch_is_refused():
    cfg = StationConfig.load(FAKE, ["instruments.detector.serial=999"])
    with cfg.connect() as st, pytest.raises(ConfigError, match="expects '1234'"):
        st.check_identities()


def test_locks_exclude_a_second_holder():
    from labpnn.errors import BenchBusy

    cfg = StationConfig.load(FAKE)
    with cfg.connect() as a, cfg.connect() as b:
        with a.locked():
            with pytest.raises(BenchBusy, match="bench busy"):
                with b.locked(timeout_s=0.05):
                    pass
        with b.locked():
            pass


@pytest.mark.parametrize("kind", ["acoustic", "microwave"])
def test_persist_continues_every_simulated_world_where_it_stopped(kind):
    """Not only the optics: any bundled world keeps its clock (and so its drift) across runs."""
    import time

    from labpnn import paths

    persist = ["bench.simulation.persist=true"]
    first = StationConfig.load(f"{kind}-sim", persist).connect()
    first.world.elapse(3600.0)
    before = first.clock.now()
    first.close()
    assert len(list((paths.state_dir() / "worlds").glob(f"{kind}-sim-*.npz"))) == 1
    started = time.time()
    second = StationConfig.load(f"{kind}-sim", persist).connect()
    try:
        assert second.clock.now() >= before >= 3600.0
        assert second.clock.now() - before <= time.time() - started + 60.0
    finally:
        second.close()
    fresh = StationConfig.load(f"{kind}-sim").connect()
    try:
        assert fresh.clock.now() < 3600.0
    finally:
        fresh.close()


@pytest.mark.parametrize(
    "raw, expected", [("off", False), ("ON", True), ("false", False), (1, True), (False, False)]
)
def test_a_switch_setting_reads_words_not_python_truthiness(raw, expected):
    from labpnn.drivers.vna import KeysightENA

    assert KeysightENA.check(_bare(KeysightENA), "rf_on", raw) is expected


@pytest.mark.parametrize("raw", ["maybe", "", 2])
def test_a_switch_setting_refuses_what_it_cannot_read(raw):
    from labpnn.drivers.vna import KeysightENA
    from labpnn.errors import LimitError

    with pytest.raises(LimitError, match="is not a bool .use true/false or on/off"):
        KeysightENA.check(_bare(KeysightENA), "rf_on", raw)


@pytest.mark.parametrize(
    "raw, expected", [("no", False), ("off", False), ("Yes", True), (True, True), (0, False)]
)
def test_simulated_in_a_station_file_reads_words(raw, expected):
    vna = {"driver": "labpnn.drivers.vna.KeysightENA", "simulated": raw}
    config = StationConfig({"instruments": {"vna": vna}, "bench": {"kind": "microwave"}}, "s")
    assert config.instruments["vna"].simulated is expected
    assert config.simulated is expected


@pytest.mark.parametrize("raw", ["maybe", "", 2, None])
def test_simulated_that_is_not_a_switch_is_refused(raw):
    vna = {"driver": "labpnn.drivers.vna.KeysightENA", "simulated": raw}
    with pytest.raises(ConfigError, match=r"instrument 'vna': simulated=.* is not a switch"):
        StationConfig({"instruments": {"vna": vna}, "bench": {"kind": "microwave"}}, "s")


def _bare(cls):
    """An instance without a connection, enough to check settings."""
    driver = cls.__new__(cls)
    driver.label = "vna"
    return driver


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"expect": ["Keysight"]}, "'expect' must be a mapping"),
        ({"settings": ["power_dbm"]}, "'settings' must be a mapping"),
        ({"settings": {"powr": 3}}, "has no setting 'powr' .it has: .*power_dbm"),
        ({"driver": "os.path"}, "driver 'os.path' is a module, not a class"),
    ],
)
def test_malformed_instrument_entries_are_config_errors_naming_the_problem(entry, message):
    from labpnn.errors import ConfigError
    from labpnn.station import StationConfig

    vna = {"driver": "labpnn.drivers.vna.KeysightENA", "address": "TCPIP::x::SOCKET", **entry}
    with pytest.raises(ConfigError, match=message):
        StationConfig({"instruments": {"vna": vna}, "bench": {"kind": "microwave"}}, "s").check()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["instruments"]["vna"].update(adress="x"), "unknown option.s. adress"),
        (lambda r: r["instruments"]["vna"].update(timeout_s="five"), "timeout_s='five' must be a number"),
        (lambda r: r["instruments"]["vna"].update(timeout_s=-1), "timeout_s=-1 must be more than 0 s"),
        (lambda r: r["instruments"]["vna"].update(limits={"power_dbm": "05"}), "must be .low, high."),
        (lambda r: r.update(foo=1), r"unknown key\(s\) foo"),
        (lambda r: r["bench"].update(layoutt={}), r"bench: unknown key\(s\) layoutt"),
    ],
)  # fmt: skip
def test_station_check_catches_typos_of_a_real_station_before_connecting(change, message):
    from labpnn.errors import ConfigError
    from labpnn.station import StationConfig

    raw = {
        "instruments": {
            "vna": {"driver": "labpnn.drivers.vna.KeysightENA", "address": "TCPIP::x::SOCKET"}
        },
        "bench": {"kind": "microwave"},
    }
    change(raw)
    with pytest.raises(ConfigError, match=message):
        StationConfig(raw, "typos").check()
