"""How lossbench reads a results folder at paper scale: N synthetic runs (lossbench.testing) of V variants x D
datasets x 5 seeds, each with a 10-point history, then the time of `lossbench status` (a fresh process, as a
user runs it) before and after the compacted copy exists, of `load_runs` and `load_history` in this process
(history before and after its compacted copy exists), and of `lossbench report` (only up to --report-max runs).

    python scripts/bench_results_scale.py                 # N = 1000, 5000, 20000
    python scripts/bench_results_scale.py --sizes 2000 --variants 40 --report-max 2000

Prints one markdown table; timings are wall-clock seconds on this machine (compare them as ratios within one
invocation, never against another day's).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lossbench.compacted import COMPACTED
from lossbench.results import load_history, load_runs
from lossbench.testing import synthetic_row, write_synthetic

log = logging.getLogger("bench_results_scale")
SEEDS = 5


def make_folder(root: Path, n: int, variants: int) -> None:
    """n runs: `variants` variants (ce and harmonic/v1, ...) x n / (5 variants) datasets x 5 seeds."""
    rng = np.random.default_rng(0)
    datasets = max(1, n // (variants * SEEDS))
    names = ["ce", *(f"harmonic/d{i}" for i in range(1, variants))]
    for d in range(datasets):
        for v, name in enumerate(names):
            for seed in range(SEEDS):
                acc = 0.8 + 0.002 * v + 0.01 * rng.standard_normal()
                row = synthetic_row(name, seed, dataset=f"data{d}", test_acc=acc, val_acc=acc, test_f1=acc - 0.01,
                                    grad_norm_cv=0.5 + 0.1 * rng.random(), pc2_ev=rng.random(), pca90=float(v % 7),
                                    energy_kwh=1e-5 * (1 + rng.random()), cpu_time_s=10 + rng.random(), threads=1,
                                    cpu_energy_source="model:cpu-time", country_iso_code="FRA")
                history = [{"epoch": float(e), "step": 10 * e, "train_loss": 1 / e, "val_acc": acc * e / 10,
                            "test_acc": acc * e / 10} for e in range(1, 11)]
                write_synthetic(root, [row], {row["run_id"]: history})


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - start


def measure(n: int, variants: int, report_max: int) -> dict[str, float | str]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        t0 = time.perf_counter()
        make_folder(root, n, variants)
        out: dict[str, float | str] = {"runs": n, "write": time.perf_counter() - t0}
        shutil.rmtree(root / COMPACTED, ignore_errors=True)  # the cold case: no compacted copy yet
        lossbench = [sys.executable, "-m", "lossbench"]
        out["status (cold)"] = timed([*lossbench, "status", str(root)])
        out["status (warm)"] = timed([*lossbench, "status", str(root)])
        t0 = time.perf_counter()
        assert len(load_runs(root)) == n - n % (variants * SEEDS) or n < variants * SEEDS
        out["load_runs (warm)"] = time.perf_counter() - t0
        for case in ("cold", "warm"):  # the first read builds history's compacted copy
            t0 = time.perf_counter()
            load_history(root)
            out[f"load_history ({case})"] = time.perf_counter() - t0
        out["report"] = (timed([*lossbench, "report", str(root), "--out", str(Path(tmp) / "report"), "--format", "csv"])
                         if n <= report_max else "not run")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--variants", type=int, default=4, help="variants per dataset (default 4)")
    parser.add_argument("--report-max", type=int, default=1000, help="run the report only up to this many runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = [measure(n, args.variants, args.report_max) for n in args.sizes]
    head = list(rows[0])
    print(f"{os.cpu_count()} CPUs; {args.variants} variants x 5 seeds per dataset; seconds")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
