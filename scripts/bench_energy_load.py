"""Does a sweep's energy ranking survive a loaded machine? The same sweep quiet, quiet again, and beside an
intermittent neighbour, measured.

A neighbour process keeps one core busy for 2-6 s, then rests 2-6 s (seeded), for the whole of the loaded
sweep: load that comes and goes across the sweep, as other users' jobs do on a shared machine. The sweeps run
quiet, loaded, quiet again. For each cost figure the script prints the median change per run from the first
quiet sweep and Kendall's tau (`scipy.stats.kendalltau`) between the variants' rankings (median over seeds)
there and in the other sweep, with the number of variant pairs whose order changed. The second quiet sweep
is the noise floor: more reordered pairs than there means the load changed the ranking.

    python scripts/bench_energy_load.py [--epochs 10] [--seeds 3] [override ...]    # e.g. threads=1
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from itertools import combinations
from pathlib import Path

import pandas as pd
from scipy.stats import kendalltau

from lossbench.results import load_runs

VARIANTS = ["loss=ce,harmonic", "distance=euclidean,minkowski,canberra"]  # default CNN: 4 variants, costs within 25 %
FIGURES = {
    "energy_kwh": "lossbench energy (CPU time x per-core power + RAM share)",
    "codecarbon_energy_kwh": "CodeCarbon's energy (power x wall time)",
    "cpu_time_s": "CPU time",
    "duration_s": "wall time",
    "flops": "FLOPs",
}
NEIGHBOUR = """
import random, time
rng = random.Random(0)
while True:
    end = time.monotonic() + rng.uniform(2, 6)
    while time.monotonic() < end:
        pass
    time.sleep(rng.uniform(2, 6))
"""


def sweep(results: Path, epochs: int, seeds: int, overrides: list[str]) -> pd.DataFrame:
    """Run the sweep (the basic launcher and default tracker unless `overrides` say otherwise); its rows."""
    seed_list = ",".join(map(str, range(seeds)))
    cmd = [sys.executable, "-m", "lossbench", "run", "-m", *VARIANTS, f"seed={seed_list}",
           f"trainer.epochs={epochs}", "trainer.progress=false", f"results_dir={results}", *overrides]
    with open(results.with_suffix(".log"), "w") as log:
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=log, check=True)
    return load_runs(results)


def compare(quiet: pd.DataFrame, other: pd.DataFrame, column: str) -> str:
    """"median per-run change from `quiet` | Kendall's tau of the variants' medians | pairs reordered"."""
    a = quiet.set_index(["variant", "seed"])[column].astype(float)
    b = other.set_index(["variant", "seed"])[column].astype(float).reindex(a.index)
    change = float(((b - a) / a).median())
    ma, mb = a.groupby("variant").median(), b.groupby("variant").median()
    mb = mb.reindex(ma.index)
    tau = float(kendalltau(ma, mb).statistic)
    pairs = list(combinations(ma.index, 2))
    flipped = sum((ma[u] - ma[v]) * (mb[u] - mb[v]) < 0 for u, v in pairs)
    return f"{change:+.1%} | {tau:.2f} | {flipped}/{len(pairs)}"


def main() -> None:
    """Run the three sweeps and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="more overrides for every run, e.g. threads=1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        quiet = sweep(root / "quiet", args.epochs, args.seeds, args.overrides)
        neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR])
        try:
            loaded = sweep(root / "loaded", args.epochs, args.seeds, args.overrides)
        finally:
            neighbour.kill()
            neighbour.wait()
        again = sweep(root / "again", args.epochs, args.seeds, args.overrides)
    n = quiet.variant.nunique()
    print(f"`python scripts/bench_energy_load.py {' '.join(sys.argv[1:])}` ({len(os.sched_getaffinity(0))} CPUs; "
          f"MNIST-1D, default CNN, {n} variants x {args.seeds} seeds, {args.epochs} epochs: {' '.join(VARIANTS)} "
          f"{' '.join(args.overrides)}; energy sources: "
          f"{', '.join(sorted(set(quiet.cpu_energy_source) | set(quiet.ram_energy_source)))})\n")
    print("| figure | quiet again: change | tau | pairs reordered | loaded: change | tau | pairs reordered |\n"
          "|---|---|---|---|---|---|---|")
    for column, name in FIGURES.items():
        print(f"| {name} (`{column}`) | {compare(quiet, again, column)} | {compare(quiet, loaded, column)} |")
    threads = {name: sorted(set(rows.threads)) for name, rows in (("quiet", quiet), ("loaded", loaded))}
    print(f"\ntorch threads per run: quiet {threads['quiet']}, loaded {threads['loaded']}")


if __name__ == "__main__":
    main()
