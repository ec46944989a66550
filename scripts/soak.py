#!/usr/bin/env python
"""A simulated week of nightly schedules in compressed time; prints the counts.

Three fake benches (optical, acoustic and microwave kinds; their instruments inject
faults at random: transient timeouts, hangs, crashes, instrument errors, NaN data),
each with a nightly calibration and a nightly check at 02:00 and a weekly job on
Sundays; on the bundled optical-sim, acoustic-sim and microwave-sim stations, the
real calibrate-camera, calibrate-tm, validate-focus and calibrate-audio every night,
plus VNA sweeps with a hanging simulated VNA every other night. A GUI thread holds
random benches at random; the scheduler runs on a fake clock and is dropped with runs
in flight every night (as by kill -9) and restarted, sometimes after hours down. Requires 0 runs lost, 0
overlapping runs on one bench and 0 unreadable files; exit 1 otherwise.

    python scripts/soak.py                 # 7 nights, about 5 minutes
    python scripts/soak.py --nights 14 --seed 5 --keep
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--restart-p",
        type=float,
        default=0.25,
        help="chance of a downtime after each scheduler restart",
    )
    parser.add_argument(
        "--sim",
        choices=("none", "light", "real"),
        default="real",
        help="what runs on the bundled simulated stations: nothing; short "
        "runs; or also the real calibration procedures (default)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="labpnn-soak-"))
    for sub in ("data", "state", "benches"):
        (root / sub).mkdir()
    os.environ["LABPNN_DATA_DIR"] = str(root / "data")
    os.environ["LABPNN_STATE_DIR"] = str(root / "state")
    from tests.overnight.fakebench import subprocess_env

    os.environ.update(subprocess_env())
    from tests.overnight.soaking import soak

    def progress(now: float, start: float, end: float) -> None:
        print(
            f"  simulated {dt.datetime.fromtimestamp(now):%a %Y-%m-%d %H:%M} "
            f"({(now - start) / (end - start):.0%})",
            flush=True,
        )

    report = soak(
        root / "benches", args.nights, args.seed, args.restart_p, sim=args.sim, progress=progress
    )
    print()
    print("\n".join(report.lines()))
    print(f"state and data in {root}" + ("" if args.keep else " (removed)"))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
