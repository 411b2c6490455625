"""Time every autotuning configuration of the fused L1-family kernels, one kernel at a time, on CUDA.

For each shape (M rows x N features x V classes) and mode: the forward kernel, the dL/dw launch of the
backward kernel, and the dL/dx launch both ways (from a transposed copy of the gradient, the copy's
time included, and from the gradient read with swapped strides), per configuration (tile, warps):
median milliseconds from triton.testing.do_bench. The fastest is what `triton.autotune` picks at run
time; this table is how the configuration list and `kernels.GRAD_X_FROM_TRANSPOSED` were chosen.

    python scripts/tune_kernels.py                          # the issue's two shapes, every mode
    python scripts/tune_kernels.py --shapes 2048x768x8192 --modes POWER
"""

from __future__ import annotations

import argparse

import torch
import triton
from triton.testing import do_bench

from lossbench.distances import kernels

MODES = {"POWER": (kernels.POWER, 1.0), "POWER1.5": (kernels.POWER, 1.5), "MAX": (kernels.MAX, 1.0),
         "CANBERRA": (kernels.CANBERRA, 1.0)}


def bench(fn) -> float:  # noqa: ANN001
    """Median ms of fn() (do_bench: CUDA events, warm-up first)."""
    return do_bench(fn, warmup=25, rep=100, return_mode="median")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="2048x768x8192,8192x768x50304")
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}; "
          "median ms (do_bench)\n")
    print("| shape | mode | kernel | tile | warps | ms |\n|---|---|---|---|---|---|")
    for shape in args.shapes.split(","):
        m, n, v = map(int, shape.split("x"))
        g = torch.Generator(device="cuda").manual_seed(0)
        x = torch.randn(m, n, device="cuda", generator=g)
        w = torch.randn(v, n, device="cuda", generator=g)
        grad = torch.randn(m, v, device="cuda", generator=g)
        xt, wt = x.t().contiguous(), w.t().contiguous()
        out = torch.empty(m, v, device="cuda")
        arg = torch.zeros(m, v, device="cuda", dtype=torch.int32)
        gx, gw = torch.empty_like(x), torch.empty_like(w)
        for label in args.modes.split(","):
            mode, p = MODES[label]
            rows = []
            for config in kernels._forward.configs:
                if n % config.kwargs["UNROLL"]:
                    continue
                grid = (triton.cdiv(m, config.kwargs["BLOCK_M"]), triton.cdiv(v, config.kwargs["BLOCK_V"]))
                rows.append(("forward", config, bench(lambda: kernels._forward.fn[grid](
                    xt, wt, out, arg, m, v, n, P=p, MODE=mode, **config.kwargs,
                    num_warps=config.num_warps, num_stages=config.num_stages))))
            for config in kernels._backward.configs:
                ba, bk = config.kwargs["BLOCK_A"], config.kwargs["BLOCK_K"]
                opts = {"P": p, "MODE": mode, **config.kwargs, "num_warps": config.num_warps,
                        "num_stages": config.num_stages}
                grid_w, grid_x = (triton.cdiv(v, ba), triton.cdiv(n, bk)), (triton.cdiv(m, ba), triton.cdiv(n, bk))
                if m % config.kwargs["UNROLL"] == 0:
                    rows.append(("dL/dw", config, bench(lambda: kernels._backward.fn[grid_w](
                        w, x, grad, arg, gw, v, m, n, v, 1, MIRROR=True, **opts))))
                if v % config.kwargs["UNROLL"]:
                    continue
                rows.append(("dL/dx transposed G", config, bench(lambda: kernels._backward.fn[grid_x](
                    x, w, grad.t().contiguous(), arg.t().contiguous() if mode == kernels.MAX else grad, gx, m, v, n, m, 1,
                    MIRROR=False, **opts))))
                rows.append(("dL/dx strided G", config, bench(lambda: kernels._backward.fn[grid_x](
                    x, w, grad, arg, gx, m, v, n, 1, v, MIRROR=False, **opts))))
            best = {}
            for kernel, config, ms in rows:
                best[kernel] = min(best.get(kernel, float("inf")), ms)
                tile = "x".join(str(t) for t in list(config.kwargs.values())[:2])
                tile += f" u{config.kwargs['UNROLL']}"
                print(f"| {shape} | {label} | {kernel} | {tile} | {config.num_warps} | {ms:.3f} |", flush=True)
            print(f"| {shape} | {label} | **best** | " + ", ".join(f"{k} {t:.3f}" for k, t in best.items()) + " | | |",
                  flush=True)


if __name__ == "__main__":
    main()
