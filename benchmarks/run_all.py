"""Run every benchmark script and collect their JSON into benchmarks/out/results.json.

Each benchmark compares against a baseline measured in the same process and reports a
ratio; nothing here asserts a time. Usage: python benchmarks/run_all.py [names...]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "out"


def main(names: list[str]) -> None:
    OUT.mkdir(exist_ok=True)
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if any(n in s.stem for n in names)]
    results = {}
    for script in scripts:
        t0 = time.time()
        print(f"== {script.name}", flush=True)
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        text = proc.stdout
        try:
            results[script.stem] = json.loads(text[text.index("{") : text.rindex("}") + 1])
        except ValueError:
            results[script.stem] = {"error": proc.stderr[-2000:] or text[-2000:]}
        results[script.stem]["wall_s"] = round(time.time() - t0, 1)
        print(json.dumps(results[script.stem], indent=2), flush=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {OUT / 'results.json'}")


if __name__ == "__main__":
    main(sys.argv[1:])
