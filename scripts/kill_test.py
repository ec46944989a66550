#!/usr/bin/env python
"""kill -9 runs at random moments, N times (default 100), and check what survives.

Every run file must open with plain h5py (``swmr=True``) and hold every frame the run
had flushed, and every killed run must be marked ``crashed`` in the ledger at the next
labpnn start. Uses the fake bench of ``tests/overnight`` in fresh temporary state and
data directories (``--keep`` leaves them for inspection). Exit 0 when all hold.

    python scripts/kill_test.py            # 100 trials, about 3 minutes
    python scripts/kill_test.py -n 20 --seed 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="labpnn-kill-"))
    data, state = root / "data", root / "state"
    data.mkdir()
    state.mkdir()
    os.environ["LABPNN_DATA_DIR"] = str(data)
    os.environ["LABPNN_STATE_DIR"] = str(state)
    from tests.overnight.fakebench import station_yaml, subprocess_env
    from tests.overnight.killing import kill_trials

    os.environ.update(subprocess_env())
    station = station_yaml(root, "kill-bench", "fake")
    t0 = time.monotonic()

    def progress(i: int, n: int, trial) -> None:
        mark = "" if trial.readable_at_once else " (killed inside a structural change)"
        print(
            f"[{i:3d}/{n}] killed {trial.killed_after_s:.2f} s after the first flush{mark}",
            flush=True,
        )

    report = kill_trials(args.trials, str(station), data, dict(os.environ), args.seed, progress)
    print()
    print("\n".join(report.lines()))
    print(
        f"took {time.monotonic() - t0:.0f} s; state and data in {root}"
        + ("" if args.keep else " (removed)")
    )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
