"""Do parallel jobs help, and do side-by-side runs stay fast? Threads per job (`threads=auto`), measured.

Prints one Markdown table from one invocation (compare rows within it, never across days):
- the same 4-run grid sequential (basic launcher) and with `hydra/launcher=joblib hydra.launcher.n_jobs=2`;
- one run alone, and two runs of the same size started side by side (two `lossbench run` processes).
Goals on 2 cores: the joblib sweep >= 1.7x faster than sequential; two side-by-side runs <= 1.3x the
time of one alone. Wall times of whole commands (start-up included), tracker off.

    python scripts/bench_parallel.py [--backbone cnn] [--epochs 40]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lossbench.store import load_runs


def command(results: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "lossbench", "run", *args, "tracker=off", "trainer.progress=false",
            f"results_dir={results}"]


def timed(*commands: list[str]) -> float:
    """Wall seconds until every command (started together) has finished; each must exit 0.

    Each command's log goes to its own file: with pipes, a command whose log outgrew the pipe buffer (64 KiB,
    ~600 epochs of progress lines) would stall until the script read it, i.e. until the command before it
    finished, and two "side-by-side" runs would partly run one after the other."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as logs:
        files = [open(Path(logs) / f"{i}.log", "w+") for i in range(len(commands))]  # noqa: SIM115
        procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=f, text=True) for c, f in zip(commands, files)]
        codes = [proc.wait() for proc in procs]
        elapsed = time.perf_counter() - t0
        for proc, code, log in zip(procs, codes, files):
            log.seek(0)
            if code != 0:
                raise SystemExit(f"failed: {' '.join(proc.args)}\n{log.read()[-2000:]}")
            log.close()
    return elapsed


def main() -> None:
    """Run the four measurements in one go and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="cnn")
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    run = [f"backbone={args.backbone}", f"trainer.epochs={args.epochs}"]  # MNIST-1D, as the default run
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sequential = timed(command(root / "seq", "-m", "seed=0,1,2,3", *run))
        joblib = timed(command(root / "job", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1,2,3", *run))
        alone = timed(command(root / "alone", "seed=0", *run))
        side = timed(command(root / "side_a", "seed=0", *run), command(root / "side_b", "seed=1", *run))
        threads = {name: sorted(set(load_runs(root / name).threads)) for name in ("seq", "job", "alone", "side_a", "side_b")}
    cpus = len(os.sched_getaffinity(0))
    rows = [
        ("4-run grid, sequential", sequential, "", threads["seq"]),
        ("4-run grid, joblib n_jobs=2", joblib, f"{sequential / joblib:.2f}x faster (goal >= 1.7x)", threads["job"]),
        ("1 run alone", alone, "", threads["alone"]),
        ("2 runs side by side", side, f"{side / alone:.2f}x the time alone (goal <= 1.3x)",
         sorted(set(threads["side_a"] + threads["side_b"]))),
    ]
    print(f"`python scripts/bench_parallel.py --backbone {args.backbone} --epochs {args.epochs}` ({cpus} CPUs; "
          f"MNIST-1D, {args.backbone}, {args.epochs} epochs, tracker off)\n")
    print("| scenario | wall time | ratio | torch threads per run |\n|---|---|---|---|")
    for name, seconds, ratio, used in rows:
        print(f"| {name} | {seconds:.1f} s | {ratio} | {', '.join(map(str, used))} |")


if __name__ == "__main__":
    main()
