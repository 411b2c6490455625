"""Do parallel jobs help, and do side-by-side runs stay fast? Threads per job (`threads=auto`), measured.

Prints one Markdown table from one invocation (compare rows within it, never across days):
- the same 4-run grid sequential (basic launcher) and with `hydra/launcher=joblib hydra.launcher.n_jobs=2`;
- one run alone, and two runs of the same size started side by side (two `lossbench run` processes);
- one run alone with `threads=1`: how much a run gains from its other threads (s = its training time with
  1 thread / with `threads=auto`). A sequential sweep gives every run all the cores, a joblib sweep with
  n_jobs = cores gives each one, so on 2 cores joblib can be at most 2/s faster (before start-up costs).
Goals on 2 cores: the joblib sweep >= 1.7x faster than sequential; two side-by-side runs <= 1.3x the
time of one alone. Wall times of whole commands (start-up included), tracker off; with --repeat k, the
median of k rounds (each round runs every scenario once, in the same order).

    python scripts/bench_parallel.py [--backbone cnn] [--epochs 40] [--repeat 1] [override ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lossbench.results import load_runs


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


def round_of(root: Path, run: list[str]) -> dict[str, float]:
    """One round: every scenario once; wall seconds by scenario, and the two single runs' training time."""
    times = {
        "seq": timed(command(root / "seq", "-m", "seed=0,1,2,3", *run)),
        "job": timed(command(root / "job", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1,2,3",
                             *run)),
        "alone": timed(command(root / "alone", "seed=0", *run)),
        "side": timed(command(root / "side_a", "seed=0", *run), command(root / "side_b", "seed=1", *run)),
        "one": timed(command(root / "one", "seed=0", "threads=1", *run)),
    }
    for name in ("alone", "one"):
        times[f"{name}_train"] = float(load_runs(root / name).duration_s.iloc[0])
    return times


def main() -> None:
    """Run the scenarios (--repeat rounds) and print the table of medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="cnn")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="more overrides for every run, e.g. task=algorithmic")
    args = parser.parse_args()
    run = [f"backbone={args.backbone}", f"trainer.epochs={args.epochs}", *args.overrides]  # MNIST-1D by default
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeat):
            rounds.append(round_of(Path(tmp) / str(k), run))
        threads = {name: sorted(set(load_runs(Path(tmp) / "0" / name).threads))
                   for name in ("seq", "job", "alone", "side_a", "side_b", "one")}
    t = {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}
    speedup = t["one_train"] / t["alone_train"]
    cpus = len(os.sched_getaffinity(0))
    rows = [
        ("4-run grid, sequential", t["seq"], "", threads["seq"]),
        ("4-run grid, joblib n_jobs=2", t["job"], f"{t['seq'] / t['job']:.2f}x faster (goal >= 1.7x)", threads["job"]),
        ("1 run alone", t["alone"], "", threads["alone"]),
        ("2 runs side by side", t["side"], f"{t['side'] / t['alone']:.2f}x the time alone (goal <= 1.3x)",
         sorted(set(threads["side_a"] + threads["side_b"]))),
        ("1 run alone, threads=1", t["one"], f"training {t['one_train']:.1f} s vs {t['alone_train']:.1f} s: "
         f"s = {speedup:.2f}, on 2 CPUs joblib can gain <= {2 / speedup:.2f}x", threads["one"]),
    ]
    what = " ".join(run)
    print(f"`python scripts/bench_parallel.py {' '.join(sys.argv[1:])}` ({cpus} CPUs; {what}; tracker off; "
          f"{'median of ' + str(args.repeat) + ' rounds' if args.repeat > 1 else 'one round'})\n")
    print("| scenario | wall time | ratio | torch threads per run |\n|---|---|---|---|")
    for name, seconds, ratio, used in rows:
        print(f"| {name} | {seconds:.1f} s | {ratio} | {', '.join(map(str, used))} |")


if __name__ == "__main__":
    main()
