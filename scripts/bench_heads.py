"""Time and memory of every head: forward + backward of (head -> cross-entropy) at paper shapes.

For the linear CE head, a reference-style broadcast L1 head (naive_manhattan), torch.cdist's L1
(cdist_manhattan: the baseline for the fused CUDA kernels) and each distance head (logits
-n log(d + eps)): median wall time of
forward + backward, and the peak memory above the inputs. On CUDA the peak comes from
torch.cuda.max_memory_allocated; on CPU each case runs in a fresh process and the peak is the rise
of its maximum resident set size. Prints a Markdown table.

    python scripts/bench_heads.py                      # CPU shapes, every head
    python scripts/bench_heads.py --device cuda        # GPU shapes (adds the LM shapes)
    python scripts/bench_heads.py --shapes 64x32x16 --heads ce,manhattan --repeats 2   # quick check
"""

from __future__ import annotations

import argparse
import json
import subprocess

import torch
import torch.nn.functional as F
from benchtools import (  # scripts/
    in_fresh_process,
    median_seconds,
    memory_baseline,
    peak_memory,
    synchronizer,
)
from hydra.utils import instantiate

from lossbench.config import compose_run, group_options
from lossbench.distances.manhattan import ManhattanDistance
from lossbench.models.heads import DistanceHead, LinearHead

# (M rows, N features, V classes)
CPU_SHAPES = ["512x256x2048", "256x2048x100", "1024x512x1000"]
GPU_SHAPES = ["256x2048x100", "1024x512x1000", "2048x768x8192", "8192x768x50304"]


class BroadcastManhattan(ManhattanDistance):
    """The reference implementation's L1 head: materialises the (M, V, N) difference tensor."""

    name = "manhattan_broadcast"

    def pairwise(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return (x[:, None, :] - w[None, :, :]).abs().sum(-1)


class CdistManhattan(ManhattanDistance):
    """torch.cdist's L1: what the Manhattan head would cost without the fused kernels on CUDA."""

    name = "manhattan_cdist"

    def pairwise(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.cdist(x, w, p=1.0)


BASELINES = {"ce": None, "naive_manhattan": BroadcastManhattan, "cdist_manhattan": CdistManhattan}


def make_head(name: str, n_features: int, n_classes: int) -> torch.nn.Module:
    if name == "ce":
        return LinearHead(n_features, n_classes)
    if name in BASELINES:
        return DistanceHead(n_features, n_classes, BASELINES[name](), n=2.0, eps=1e-6)
    cfg, _ = compose_run(["loss=harmonic", f"distance={name}"])
    return DistanceHead(n_features, n_classes, instantiate(cfg.distance), n=float(cfg.loss.head.n), eps=float(cfg.loss.head.eps))


def measure(name: str, shape: str, device: str, repeats: int) -> dict[str, float]:
    """Median seconds of forward+backward and peak extra bytes, in this process."""
    m, n, v = map(int, shape.split("x"))
    torch.manual_seed(0)
    head = make_head(name, n, v).to(device)
    x = torch.randn(m, n, device=device, requires_grad=True)
    y = torch.randint(0, v, (m,), device=device)
    sync = synchronizer(torch.device(device))

    def step() -> None:
        F.cross_entropy(head(x), y).backward()
        x.grad = None
        head.zero_grad(set_to_none=True)

    sync()
    base = memory_baseline(torch.device(device))  # CPU: the process's peak so far (imports, inputs, parameters)
    step()  # warm-up (allocator, kernels); its memory counts, its time does not
    sync()
    seconds = median_seconds(step, sync, repeats)
    return {"seconds": seconds, "extra_bytes": max(0, peak_memory(torch.device(device)) - base)}


def measure_isolated(name: str, shape: str, device: str, repeats: int) -> dict[str, float]:
    """On CPU, peak RSS only rises: run each case in its own process."""
    if device.startswith("cuda"):
        return measure(name, shape, device, repeats)
    return in_fresh_process(__file__, "--worker", name, shape, str(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shapes", default=None, help="comma list of MxNxV (rows x features x classes)")
    parser.add_argument("--heads", default=None, help="comma list: ce and distance names (default: all)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", nargs=3, metavar=("HEAD", "SHAPE", "REPEATS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        name, shape, repeats = args.worker
        print(json.dumps(measure(name, shape, "cpu", int(repeats))))
        return
    shapes = args.shapes.split(",") if args.shapes else (GPU_SHAPES if args.device.startswith("cuda") else CPU_SHAPES)
    heads = args.heads.split(",") if args.heads else [*BASELINES, *group_options("distance")]
    device_name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu"
    print(f"device {device_name}, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, "
          f"median of {args.repeats}; forward + backward of head + cross-entropy\n")
    print("| head | " + " | ".join(f"{s} ms | {s} extra MiB" for s in shapes) + " |")
    print("|---|" + "---|---|" * len(shapes))
    for name in heads:
        cells = []
        for shape in shapes:
            try:
                r = measure_isolated(name, shape, args.device, args.repeats)
                cells += [f"{1000 * r['seconds']:.1f}", f"{r['extra_bytes'] / 2**20:.0f}"]
            except (RuntimeError, subprocess.CalledProcessError) as exc:  # e.g. out of memory
                cells += ["failed", type(exc).__name__]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
