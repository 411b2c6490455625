"""What does lossbench's bookkeeping cost? A lossbench training epoch vs a bare PyTorch loop.

Both loops train the same model from the same initial weights on the same in-memory batches.
The lossbench side is `Trainer.fit` with the CodeCarbon tracker running and per-step gradient
norms on; its per-epoch validation/test evaluation is timed separately (it is work a bare loop
does not do, not overhead of the loop). Prints a Markdown table.

    python scripts/bench_overhead.py [--epochs 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import torch
import torch.nn.functional as F

from lossbench.config import compose_run
from lossbench.cost.clock import process_cpu_seconds
from lossbench.cost.energy import CodeCarbonTracker
from lossbench.data.base import TensorLoader
from lossbench.build import build, build_model, derived_seed

log = logging.getLogger("bench_overhead")
CASES = [("mnist1d", "mlp"), ("mnist1d", "cnn"), ("digits", "cnn")]


def bare_epochs(model: torch.nn.Module, data, epochs: int, batch_size: int, seed: int) -> float:
    """Seconds per epoch of the plainest loop: forward, cross-entropy, backward, step."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = TensorLoader(data.x_train, data.y_train, batch_size, True, torch.Generator().manual_seed(seed))
    model.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return (time.perf_counter() - t0) / epochs


def lossbench_epochs(cfg, model, data, seed: int) -> tuple[float, float, float]:
    """(train seconds/epoch, eval seconds/epoch, tracker start+stop seconds) of Trainer.fit."""
    trainer = build(cfg, "trainer")
    opt = build(cfg, "optim.optimizer", model.parameters())
    sched = build(cfg, "optim.scheduler", opt, total_steps=trainer.planned_steps(data))
    tracker = CodeCarbonTracker()
    t0 = time.perf_counter()
    tracker.start(torch.device("cpu"))
    t1, cpu0 = time.perf_counter(), process_cpu_seconds()
    fit = trainer.fit(model, build(cfg, "loss.criterion"), opt, sched, data, torch.Generator().manual_seed(seed),
                      build(cfg, "task"))
    t2 = time.perf_counter()
    energy = tracker.stop(process_cpu_seconds() - cpu0 - tracker.own_cpu_seconds())
    t3 = time.perf_counter()
    assert energy["energy_kwh"] is not None, "tracker did not measure"
    eval_s = sum(row["eval_time_s"] for row in fit.history)
    return (t2 - t1 - eval_s) / trainer.epochs, eval_s / trainer.epochs, (t1 - t0) + (t3 - t2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu; "
          f"median of {args.repeats} repeats x {args.epochs} epochs\n")
    print("| dataset | backbone | bare loop s/epoch | lossbench train s/epoch | overhead | "
          "lossbench eval s/epoch | tracker start+stop s |")
    print("|---|---|---|---|---|---|---|")
    for dataset, backbone in CASES:
        cfg, _ = compose_run([f"dataset={dataset}", f"backbone={backbone}", f"trainer.epochs={args.epochs}",
                              "trainer.progress=false", "tracker=off", "device=cpu"])
        data = build(cfg, "dataset").load()
        seed = derived_seed(0, "data")
        bare, ours, evals, fixed = [], [], [], []
        for _ in range(args.repeats):  # alternate so drift in machine speed hits both sides alike
            bare.append(bare_epochs(build_model(cfg, data), data, args.epochs, cfg.trainer.batch_size, seed))
            train_s, eval_s, tracker_s = lossbench_epochs(cfg, build_model(cfg, data), data, seed)
            ours.append(train_s)
            evals.append(eval_s)
            fixed.append(tracker_s)
        b, o = statistics.median(bare), statistics.median(ours)
        print(f"| {dataset} | {backbone} | {b:.4f} | {o:.4f} | {100 * (o - b) / b:+.1f}% | "
              f"{statistics.median(evals):.4f} | {statistics.median(fixed):.2f} |")


if __name__ == "__main__":
    main()
