"""How long a refusal takes: `lossbench` commands with bad input, each timed as a whole process (wall and
CPU seconds, median of --repeat runs), with `python -c "import torch"` and `lossbench --help` beside them
for scale. Every case must exit 2 with one line; the table says which kind of check refused it (composition,
a class's declared range, a launcher setting, the dry build).

    python scripts/bench_errors.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time

CASES = [
    ("--help", ["--help"], "none (help text)"),
    ("unknown option", ["run", "dataset=nope"], "composition"),
    ("unknown key", ["run", "trainer.epoch=3"], "composition"),
    ("malformed sweep", ["run", "-m", "hydra/sweeper=optuna", "optim.optimizer.lr=interval(1e-4"], "override syntax"),
    ("out of range", ["run", "trainer.epochs=0"], "declared range"),
    ("not finite", ["run", "optim.optimizer.lr=inf"], "declared type"),
    ("launcher", ["run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0", "seed=0,1"], "launcher setting"),
    ("joint fractions", ["run", "dataset=digits", "dataset.test_fraction=0.99", "dataset.val_fraction=0.99"],
     "dry build"),
]


def timed(command: list[str]) -> tuple[float, float, int, str]:
    """(wall s, CPU s of the child, exit code, last stderr line) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        proc = subprocess.run(command, capture_output=True, text=True, cwd=folder)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = proc.stderr.strip().splitlines() or [""]
    return wall, cpu, proc.returncode, lines[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = [("import torch", [sys.executable, "-c", "import torch"], "-")]
    rows += [(name, [sys.executable, "-m", "lossbench", *argv], kind) for name, argv, kind in CASES]
    print("| case | refused by | exit | wall s (median) | CPU s (median) | message |")
    print("|---|---|---|---|---|---|")
    for name, command, kind in rows:
        runs = [timed(command) for _ in range(args.repeat)]
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(f"| {name} | {kind} | {runs[0][2]} | {wall:.2f} | {cpu:.2f} | {runs[0][3][:90]} |")


if __name__ == "__main__":
    main()
