"""The example plugin's hand-written momentum softmax against its twin and the plain-SGD built-in, on
real MNIST, through mnistbench's Python API alone. Prints the comparison table.

    pip install -e examples/mnistbench-momentum
    MNISTBENCH_DATA=/path/to/data python examples/compare_with_builtin.py --epochs 2
"""
from __future__ import annotations

import argparse
import sys

import pandas as pd

import mnistbench

IMPLS = ["momentum", "builtin_momentum", "builtin"]  # the plugin's two, then mnistbench's plain SGD
COLUMNS = ["impl", "status", "test_acc", "best_val_acc", "epochs_run", "train_seconds", "train_samples_per_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default="mnistbench-out", help="results folder (default mnistbench-out)")
    args = parser.parse_args()
    if "momentum" not in {e.name for e in mnistbench.implementations("softmax")}:
        print("the plugin is not installed: pip install -e examples/mnistbench-momentum", file=sys.stderr)
        return 2
    trained = mnistbench.run("softmax", IMPLS, epochs=args.epochs, out=args.out)
    table = pd.DataFrame([r.to_row() for r in trained])[COLUMNS]
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    acc = table.set_index("impl").test_acc
    print(f"\nmomentum - builtin_momentum (its twin): test acc {acc['momentum'] - acc['builtin_momentum']:+.4f}")
    print(f"momentum - builtin (plain SGD):         test acc {acc['momentum'] - acc['builtin']:+.4f}")
    written = mnistbench.report(args.out)
    print(f"\nreport with every run in {args.out}: {written['report']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
