"""How lossbench reads a results folder at paper scale: N synthetic runs (lossbench.testing) of V variants x D
datasets x 5 seeds, each with a 10-point history, then the time of `lossbench status` (a fresh process, as a
user runs it) before and after the compacted copy exists, of `load_runs` and `load_history` in this process
(history before and after its compacted copy exists), and of `lossbench report` (only up to --report-max runs).

    python scripts/bench_results_scale.py                 # N = 1000, 5000, 20000
    python scripts/bench_results_scale.py --sizes 2000 --variants 40 --report-max 2000

With --report, only the full report is timed, as a user runs it (a fresh process; the compacted copy built
beforehand by `lossbench status`): `lossbench report --across dataset` with every format (markdown, LaTeX,
CSV), every figure and the ranking across datasets. Its cost should grow linearly with the runs at a fixed
number of variants per group, and at most quadratically with the variants per group at a fixed number of runs:

    python scripts/bench_results_scale.py --report --sizes 2000 20000 --variants 40
    python scripts/bench_results_scale.py --report --sizes 2000 --variants 10 20 40 80

Prints one markdown table; timings are wall-clock seconds on this machine (compare them as ratios within one
invocation, never against another day's).
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
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
                            "test_acc": acc * e / 10, "grad_norm_mean": 1 / e} for e in range(1, 11)]
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


def timed_cpu(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a command: CPU time (user + system of the child) is what the machine's
    other load does not inflate; wall time is what the user waits."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(command)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure_report(n: int, variants: int) -> dict[str, float | str]:
    """The full report of n runs of `variants` variants per dataset, timed in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        make_folder(root, n, variants)
        lossbench = [sys.executable, "-m", "lossbench"]
        timed([*lossbench, "status", str(root)])  # builds the compacted copy, as any earlier command would
        seconds, cpu = timed_cpu([*lossbench, "report", str(root), "--out", str(Path(tmp) / "report"),
                                  "--across", "dataset"])
        figures = len(list((Path(tmp) / "report" / "figures").glob("*.png")))
    datasets = n // (variants * SEEDS)
    log.info("%d runs, %d variants: report %.1f s", n, variants, seconds)
    runs = datasets * variants * SEEDS
    return {"runs": runs, "variants per dataset": variants, "datasets": datasets, "report wall (s)": seconds,
            "report CPU (s)": cpu, "CPU ms per run": 1000 * cpu / runs, "figures (png)": figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--variants", type=int, nargs="+", default=[4], help="variants per dataset (default 4)")
    parser.add_argument("--report-max", type=int, default=1000, help="run the report only up to this many runs")
    parser.add_argument("--report", action="store_true", help="time only the full report (see above)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.report:
        rows = [measure_report(n, v) for n in args.sizes for v in args.variants]
    else:
        rows = [measure(n, v, args.report_max) for n in args.sizes for v in args.variants]
    head = list(rows[0])
    print(f"{os.cpu_count()} CPUs; {', '.join(map(str, args.variants))} variants x 5 seeds per dataset; seconds")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
