"""How often interleaved, paired comparisons give a false verdict, and how often they find a real change.

Each try trains a small grid of MLP runs (3 epochs, patience off) in one interleave group, then compares
the two variants the way `mnistbench compare DIR --by KEY` does:

  A/A          seeds 0 and 1, same configuration: any "slower" / "faster" is a false verdict
  threads      --threads 1 against 2: a real change
  hidden       hidden 600,128 against 512,128 (+17 % FLOPs): a real change
  A/A apart    the A/A pair trained one after the other, not interleaved, compared unpaired

    python scripts/interleave_power.py --tries 20 [--data-root DIR] [--epochs 3] [--out power.md]

It prints one Markdown row per scenario: verdict counts, false or detection rate, median ratio, seconds
per try, with the CPU and torch version it ran on.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

import mnistbench
from mnistbench import env
from mnistbench.executors import Executor
from mnistbench.reporting import compare

SCENARIOS = {
    "A/A (seed 0 vs 1)": ({"seed": [0, 1]}, "seed", True),
    "--threads 1 vs 2": ({"threads": [1, 2]}, "threads", True),
    "hidden 512,128 vs 600,128": ({"hidden": [(512, 128), (600, 128)]}, "hidden", True),
    "A/A apart (unpaired)": ({"seed": [0, 1]}, "seed", False),
}


def one_try(axes: dict, by: str, interleaved: bool, epochs: int, data_root, order_seed: int):
    with tempfile.TemporaryDirectory() as folder:
        executor = Executor("interleave", order_seed=order_seed) if interleaved else None
        started = time.perf_counter()
        mnistbench.sweep("mlp", "manual", epochs=epochs, patience=100, out=folder, data_root=data_root,
                         executor=executor, **axes)
        seconds = time.perf_counter() - started
        row = compare.compare(Path(folder), by=by).iloc[0]
    return row["verdict"], row["ratio"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--only", help="run only the scenarios whose name contains this text")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args()
    lines = [f"CPU: {env.cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
             f"{args.tries} tries of {args.epochs} epochs each.", "",
             "| scenario | verdicts | false / detected | median ratio | s per try |", "| --- | --- | --- | --- | --- |"]
    for name, (axes, by, interleaved) in SCENARIOS.items():
        if args.only and args.only not in name:
            continue
        outcomes = [one_try(axes, by, interleaved, args.epochs, args.data_root, seed) for seed in range(args.tries)]
        verdicts = Counter(v for v, _, _ in outcomes)
        decided = verdicts["slower"] + verdicts["faster"]
        rate = (f"false {decided}/{args.tries}" if name.startswith("A/A")
                else f"detected {verdicts['slower'] if 'hidden' in name else verdicts['faster']}/{args.tries}")
        ratio = statistics.median(r for _, r, _ in outcomes)
        seconds = statistics.median(s for _, _, s in outcomes)
        tally = ", ".join(f"{n} {v}" for v, n in verdicts.most_common())
        lines.append(f"| {name} | {tally} | {rate} | {ratio:.3f} | {seconds:.1f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
