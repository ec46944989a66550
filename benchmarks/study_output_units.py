"""Does PhyLL care about the units of a measurement? Raw against standardised physical outputs.

The same physics in other units (power in W instead of normalised intensity, a common-mode
offset, a camera's dark level, a small gain) should train equally well. This trains PhyLL on
the vowels through two fixed physical layers, for each transform of the output, with
``standardise=False`` and ``True``, and prints a Markdown table of the final test accuracy
(mean ± std over seeds). It is an accuracy study, not a speed benchmark.

Run: ``.venv/bin/python benchmarks/study_output_units.py`` (about 3 minutes on one core;
``--seeds 3 --epochs 200`` are the defaults, the numbers in docs/training.md).
"""

from __future__ import annotations

import argparse
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from labpnn.datasets import vowels  # noqa: E402
from labpnn.learning import PhyLL  # noqa: E402
from labpnn.physical import FunctionLayer  # noqa: E402


def physics() -> dict:
    generator = torch.Generator().manual_seed(1)
    tm = torch.randn(20, 20, generator=generator, dtype=torch.cfloat) / 20**0.5
    mixing = torch.randn(20, 20, generator=torch.Generator().manual_seed(2)) / 20**0.5

    def speckle(x):
        return (torch.exp(1j * x) @ tm).abs() ** 2

    def tanh(x):
        return torch.tanh(x @ mixing)

    return {
        "speckle, intensity of exp(ix)·T": speckle,
        "speckle × 1e-6 (power in W)": lambda x: 1e-6 * speckle(x),
        "speckle × 1e4": lambda x: 1e4 * speckle(x),
        "speckle + 1000": lambda x: 1000 + speckle(x),
        "3000 + 50 × speckle (dark level)": lambda x: 3000 + 50 * speckle(x),
        "tanh(xM)": tanh,
        "tanh × 1e-4": lambda x: 1e-4 * tanh(x),
        "tanh + 10": lambda x: 10 + tanh(x),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    ds = vowels(seed=0)
    print(f"vowels ({ds.meta.get('source', 'csv')}), 2 layers 20->20, {args.epochs} epochs, "
          f"{args.seeds} seeds: final test accuracy, mean ± std\n")  # fmt: skip
    print("| skip | physical output | raw | standardised |\n|---|---|---|---|")
    for skip in (False, True):
        for name, fn in physics().items():
            cells = []
            for standardise in (False, True):
                accuracies = []
                for seed in range(args.seeds):
                    layers = [FunctionLayer(fn, 20, 20), FunctionLayer(fn, 20, 20)]
                    model = PhyLL(layers, n_classes=7, skip=skip, seed=seed,
                                  standardise=standardise)  # fmt: skip
                    model.fit(ds, epochs=args.epochs, eval_every=args.epochs)
                    accuracies.append(model.evaluate(ds.x_test, ds.y_test))
                cells.append(f"{np.mean(accuracies):.2f} ± {np.std(accuracies):.2f}")
            print(f"| {'on' if skip else 'off'} | {name} | {cells[0]} | {cells[1]} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
