"""``python -m labpnn.gui.screenshots DIR``: pictures of the GUI for the README and docs.

It drives the real window on the simulated optical bench, in a fresh temporary data
and state directory (so the pictures never show a user's own runs):

* ``gui-idle.png``: connected for alignment, live camera speckle, a grating on the SLM;
* ``gui-running.png``: a real ``calibrate-tm`` run on ``optical-sim``, mid-run;
* ``gui-browser.png``: the run browser with that finished run opened.

``--procedure`` and ``--station`` picture another run (e.g. ``train-phyll`` on
``acoustic-sim``); the alignment tools are only set up on an optical bench.

Run it with ``QT_QPA_PLATFORM=offscreen`` on a machine without a display (``make
screenshots`` does).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

STATION = "optical-sim"
PROCEDURE = "calibrate-tm"
PARAMETERS: dict[str, str] = {}  # the procedure's defaults: a full-size calibration


def wait(app, condition, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"screenshots: gave up waiting for {what} after {timeout_s:g} s")
        app.processEvents()
        time.sleep(0.01)


def pause(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def take(
    out: Path, procedure: str, station: str, params: dict[str, str], mid_run_fraction: float
) -> list[Path]:
    from labpnn.gui.app import make_app
    from labpnn.gui.main_window import MainWindow

    app = make_app()
    window = MainWindow(station, confirm=False)
    window.resize(1600, 980)
    window.show()
    pause(app, 0.5)
    saved = []

    def save(name: str) -> None:
        # another run's pictures never overwrite the README's calibrate-tm ones
        if procedure != PROCEDURE:
            name = name.replace("gui-", f"gui-{procedure}-", 1)
        path = out / name
        window.grab().save(str(path))
        saved.append(path)
        print(f"saved {path}", file=sys.stderr)

    from labpnn.station import StationConfig

    optical = StationConfig.load(station).bench.kind == "optical"
    # idle: aligning by hand (the SLM and camera tools are the optical bench's)
    window.launcher.select(procedure)
    for key, value in params.items():
        window.launcher.form.set_text(key, value)
    if window.station_panel.connect_station() and optical:
        window.slm.kind.setCurrentText("grating")
        window.slm.size.setValue(32)
        window.slm._request()
        window.camera.roi_box.setChecked(True)
        window.camera.crosshair.setChecked(True)
        window.camera.live_button.setChecked(True)
        wait(app, lambda: window.camera.frames_shown >= 20, 60, "live camera frames")
        window.camera.live_button.setChecked(False)
        pause(app, 0.3)
    save("gui-idle.png")

    # mid-run
    if optical:
        window.camera.roi_box.setChecked(False)
        window.camera.crosshair.setChecked(False)
    if not window.run_from_launcher():
        raise RuntimeError(f"could not start {procedure}: {window.launcher.problem.text()}")
    wait(
        app,
        lambda: (
            (
                window.progress.value() >= 1000 * mid_run_fraction
                and (window.camera.frames_shown >= 5 or not optical)
            )
            # a short run may end before the picture: take it then rather than wait forever
            or (not window.controller.running and bool(window.controller.history))
        ),
        600,
        "the run to get going",
    )
    if not window.controller.running:
        print("screenshots: the run ended before mid-run; gui-running shows its end",
              file=sys.stderr)  # fmt: skip
    pause(app, 0.5)
    save("gui-running.png")

    # the run browser, with that run open
    wait(app, lambda: not window.controller.running, 1800, "the run to finish")
    window.tabs.setCurrentWidget(window.browser)
    window.browser.refresh()
    _, status, path = window.controller.history[-1]
    if path:
        window.browser.select_paths([path])
    pause(app, 0.5)
    save("gui-browser.png")
    print(f"the run ended {status}", file=sys.stderr)
    window.shutdown()
    window.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="docs/images")
    parser.add_argument("--procedure", default=PROCEDURE)
    parser.add_argument("--station", default=STATION)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--mid-run",
        type=float,
        default=0.4,
        help="progress fraction at which the mid-run picture is taken",
    )
    args = parser.parse_args(argv)
    params = dict(PARAMETERS)
    params.update(dict(s.split("=", 1) for s in args.sets))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="labpnn-screenshots-") as tmp:
        os.environ["LABPNN_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["LABPNN_STATE_DIR"] = str(Path(tmp) / "state")
        take(out, args.procedure, args.station, params, args.mid_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
