"""Fused Triton kernels for the L1 family of distances on CUDA: forward and backward as rank-1 updates.

Every L1-family metric is a per-coordinate reduction d[i, j] = R_k t(x[i, k], w[j, k]):

    POWER     S = sum_k |x_k - w_k|^p        (manhattan p = 1, minkowski d = S^(1/p), and, on
                                              transformed inputs, bray-curtis and soft Hamming)
    MAX       d = max_k |x_k - w_k|          (chebyshev; the arg-max coordinate is kept for backward)
    CANBERRA  d = sum_k |x_k - w_k| / (|x_k| + |w_k|)   (a term with a zero denominator counts 0)

No tensor core computes |x - w|, so these run on the CUDA cores, and the kernels are shaped for them:
a program owns a (BLOCK_M x BLOCK_V) tile of d in registers and walks the N features one at a time,
adding the outer "difference" of a column of x and a column of w (a rank-1 update; both read
contiguously from transposed copies of x and w). Per element and feature that is two FP32
instructions for Manhattan (subtract; add with the absolute-value modifier): the floor is
2 M V N / (the GPU's FP32 instruction rate). Only the (M, V) output is written: no (M, V, N) tensor
exists, forward or backward.

Backward needs dL/dx[i, k] = sum_j G[i, j] dt/dx(x[i, k], w[j, k]) and dL/dw[j, k], the mirror image
(t(x, w) = t(w, x) for every mode, so dt/dw(x, w) = dt/dx(w, x)). One kernel `_backward` computes
out[a, k] = sum_b G[b, a] dt/da(A[a, k], B[b, k]) for a (BLOCK_A x BLOCK_K) tile, walking b one row at a
time: dL/dw is `_backward(A=w, B=x, G)`, dL/dx is `_backward(A=x, B=w, G^T)`: one kernel for both
mirror images (a fused kernel computing both at once would need atomics across tiles). Whether G^T is a
transposed copy or G read with swapped strides was decided by measurement on an H100: the strided read
(`GRAD_X_FROM_TRANSPOSED`). Accumulation is in float32 whatever the input dtype.

Tile sizes and warps are autotuned per shape (`triton.autotune`, keyed on the sizes) over a few
configurations; under Triton's interpreter (TRITON_INTERPRET=1, how CI tests these kernels on CPU)
only the first configuration is used. Production CPU runs use the torch paths of each metric instead.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - triton ships with CUDA builds of torch
    triton = None

POWER, MAX, CANBERRA = 0, 1, 2

# dL/dx from the incoming gradient read with swapped strides, not from a transposed copy of it (coalesced
# reads, M x V x 4 bytes more): on an H100 at 2048 x 768 x 8192 the strided read was faster for every mode
# (ms, strided vs copy: 3.90 vs 4.36 Manhattan, 4.86 vs 5.15 Minkowski 1.5, 5.52 vs 5.66 Chebyshev,
# 8.37 vs 10.06 Canberra; scripts/tune_kernels.py), and it needs no extra memory.
GRAD_X_FROM_TRANSPOSED = False

_INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


def available(x: Tensor) -> bool:
    """True when the distances should take the fused path: CUDA tensors, with Triton installed."""
    return triton is not None and x.is_cuda


def _configs(shapes: list[tuple[int, int, int, int]], names: tuple[str, str]) -> list:
    """Autotuning candidates (tile A, tile B, warps, unrolled steps); the interpreter gets the first that
    does not unroll (a single configuration is run unpruned, so it must fit every loop length)."""
    configs = [triton.Config({names[0]: a, names[1]: b, "UNROLL": u}, num_warps=w) for a, b, w, u in shapes]
    return [c for c in configs if c.kwargs["UNROLL"] == 1][:1] if _INTERPRETED else configs


def _divides(steps: str):
    """Keep the configurations whose UNROLL divides the loop length (the unrolled loops have no tail)."""
    def prune(configs: list, named_args: dict, **kwargs: object) -> list:
        return [c for c in configs if named_args[steps] % c.kwargs["UNROLL"] == 0]
    return {"early_config_prune": prune}


# (BLOCK_M, BLOCK_V, warps) of the forward tile and (BLOCK_A, BLOCK_K, warps) of the backward tile: the
# candidates that compile without register spills for every mode on sm_90 (scripts/compile_kernels.py)
FORWARD_TILES = [(128, 32, 4, 1), (64, 64, 2, 4), (128, 64, 4, 2), (64, 64, 2, 1), (128, 64, 4, 1)]
BACKWARD_TILES = [(32, 128, 4, 2), (32, 128, 4, 1), (64, 32, 4, 1), (64, 64, 4, 1), (32, 256, 8, 2)]

if triton is not None:
    # the modes as compile-time constants that jitted code may read (Triton only admits constexpr globals)
    _POWER, _MAX, _CANBERRA = tl.constexpr(POWER), tl.constexpr(MAX), tl.constexpr(CANBERRA)

    @triton.jit
    def _term(u, xv, wv, P: tl.constexpr, MODE: tl.constexpr):
        """The per-coordinate term t for u = x - w (POWER with p == 1 is plain |u|)."""
        a = tl.abs(u)
        if MODE == _POWER:
            if P == 1.5:
                a = a * tl.sqrt(a)  # the Rethinking paper's Minkowski p: one square root, no log/exp
            elif P != 1.0:
                a = tl.where(a > 0, tl.exp2(P * tl.log2(tl.maximum(a, 1e-30))), 0.0)
        elif MODE == _CANBERRA:
            # |x| + |w| = 0 only where x = w = 0, and there a = 0: a floor on the denominator gives the 0 term
            a = a * _reciprocal(tl.abs(xv) + tl.abs(wv))
        return a

    @triton.jit
    def _reciprocal(den):
        """1 / max(den, 1e-30) as rsqrt(den)^2: one special-function instruction and a multiply (relative
        error ~2e-7), where a division costs a dozen instructions with its range checks."""
        r = tl.math.rsqrt(tl.maximum(den, 1e-30))
        return r * r

    @triton.jit
    def _signed(v, u, MIRROR: tl.constexpr):
        """v * sign(u), as one bit operation (v's sign flipped where u's sign bit is set), negated when
        MIRROR. At u = +0 (x = w exactly) that is the subgradient +v: with u = x - w for dL/dx and, mirrored,
        -sign(x - w) for dL/dw, the pair is (+1, -1), a valid joint subgradient of |x - w| (torch's sign
        picks 0, also valid) at two instructions per element fewer than testing u for 0."""
        flipped = (v.to(tl.uint32, bitcast=True) ^ (u.to(tl.uint32, bitcast=True) & 0x80000000)).to(tl.float32, bitcast=True)
        if MIRROR:
            flipped = -flipped
        return flipped

    @triton.jit
    def _g_dterm_da(u, av, bv, g, P: tl.constexpr, MODE: tl.constexpr, MIRROR: tl.constexpr):
        """g * dt/da for t(a, b), with u = a - b, or u = b - a when MIRROR (every term is symmetric,
        t(x, w) = t(w, x), so one function differentiates both sides)."""
        if MODE == _CANBERRA:
            # t = |u| / (|a| + |b|): dt/da = (sign(a - b) - t sign(a)) / (|a| + |b|), 0 where |a| + |b| = 0
            inv = _reciprocal(tl.abs(av) + tl.abs(bv))
            sa = tl.where(av > 0, 1.0, tl.where(av < 0, -1.0, 0.0))
            d = _signed(g * inv, u, MIRROR) - g * tl.abs(u) * sa * inv * inv
        elif MODE == _POWER and P == 1.5:
            d = _signed(1.5 * tl.sqrt(tl.abs(u)) * g, u, MIRROR)
        elif MODE == _POWER and P != 1.0:
            d = _signed(P * tl.exp2((P - 1.0) * tl.log2(tl.maximum(tl.abs(u), 1e-30))) * g, u, MIRROR)
        else:  # p = 1, and MAX (whose arg-max mask the caller applies)
            d = _signed(g, u, MIRROR)
        return d

    @triton.autotune(configs=_configs(FORWARD_TILES, ("BLOCK_M", "BLOCK_V")), key=["M", "V", "N", "MODE"],
                     prune_configs_by=_divides("N"))
    @triton.jit
    def _forward(XT, WT, OUT, ARG, M, V, N, P: tl.constexpr, MODE: tl.constexpr,
                 BLOCK_M: tl.constexpr, BLOCK_V: tl.constexpr, UNROLL: tl.constexpr):
        """OUT[i, j] = R_k t(x[i, k], w[j, k]) from XT (N, M) and WT (N, V): one rank-1 update per k.
        Rows past M (V) read row M - 1 (V - 1) and are never stored, so the loads need no masks; UNROLL
        divides N. (Loading the columns as 2-D (BLOCK_M, 1) / (1, BLOCK_V) tiles, which avoids the
        shared-memory exchange of the broadcast, measured 1.5-2.4x slower on an H100.)"""
        pid_m, pid_v = tl.program_id(0), tl.program_id(1)
        rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        rv = pid_v * BLOCK_V + tl.arange(0, BLOCK_V)
        rm_in, rv_in = tl.minimum(rm, M - 1), tl.minimum(rv, V - 1)
        acc = tl.zeros((BLOCK_M, BLOCK_V), dtype=tl.float32)
        arg = tl.zeros((BLOCK_M, BLOCK_V), dtype=tl.int32)
        for k0 in range(0, N, UNROLL):
            for j in tl.static_range(UNROLL):
                k = k0 + j
                xv = tl.load(XT + k * M + rm_in).to(tl.float32)[:, None]
                wv = tl.load(WT + k * V + rv_in).to(tl.float32)[None, :]
                t = _term(xv - wv, xv, wv, P, MODE)
                if MODE == _MAX:
                    take = t > acc
                    arg = tl.where(take, k, arg)
                    acc = tl.where(take, t, acc)
                else:
                    acc += t
        offsets = rm.to(tl.int64)[:, None] * V + rv[None, :]
        mask = (rm[:, None] < M) & (rv[None, :] < V)
        tl.store(OUT + offsets, acc, mask=mask)
        if MODE == _MAX:
            tl.store(ARG + offsets, arg, mask=mask)

    @triton.autotune(configs=_configs(BACKWARD_TILES, ("BLOCK_A", "BLOCK_K")),
                     key=["NA", "NB", "N", "MODE", "STRIDE_GA"], prune_configs_by=_divides("NB"))
    @triton.jit
    def _backward(A, B, G, ARG, OUT, NA, NB, N, STRIDE_GB, STRIDE_GA, P: tl.constexpr, MODE: tl.constexpr,
                  MIRROR: tl.constexpr, BLOCK_A: tl.constexpr, BLOCK_K: tl.constexpr, UNROLL: tl.constexpr):
        """OUT[a, k] = sum_b G[b, a] dt/da(A[a, k], B[b, k]), with G[b, a] at b * STRIDE_GB + a * STRIDE_GA
        (and ARG, the MAX mode's arg-max coordinates, laid out like G). MIRROR marks the dL/dw launch
        (A = w, B = x; see `_signed`). Out-of-range rows and features read clamped indices and are never
        stored; UNROLL divides NB."""
        pid_a, pid_k = tl.program_id(0), tl.program_id(1)
        ra = pid_a * BLOCK_A + tl.arange(0, BLOCK_A)
        rk = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
        ra_in, rk_in = tl.minimum(ra, NA - 1), tl.minimum(rk, N - 1)
        av = tl.load(A + ra_in.to(tl.int64)[:, None] * N + rk_in[None, :]).to(tl.float32)
        g_ptrs = G + ra_in.to(tl.int64) * STRIDE_GA  # advanced by STRIDE_GB per b (64-bit pointers)
        arg_ptrs = ARG + ra_in.to(tl.int64) * STRIDE_GA
        acc = tl.zeros((BLOCK_A, BLOCK_K), dtype=tl.float32)
        for b0 in range(0, NB, UNROLL):
            for j in tl.static_range(UNROLL):
                b = b0 + j
                bv = tl.load(B + b * N + rk_in).to(tl.float32)[None, :]
                g = tl.load(g_ptrs).to(tl.float32)[:, None]
                u = bv - av if MIRROR else av - bv
                d = _g_dterm_da(u, av, bv, g, P, MODE, MIRROR)
                if MODE == _MAX:
                    arg = tl.load(arg_ptrs)
                    d = tl.where(arg[:, None] == rk[None, :], d, 0.0)
                    arg_ptrs += STRIDE_GB
                acc += d
                g_ptrs += STRIDE_GB
        mask = (ra[:, None] < NA) & (rk[None, :] < N)
        tl.store(OUT + ra.to(tl.int64)[:, None] * N + rk[None, :], acc, mask=mask)


def _grid_forward(m: int, v: int):
    return lambda meta: (triton.cdiv(m, meta["BLOCK_M"]), triton.cdiv(v, meta["BLOCK_V"]))


def _grid_backward(na: int, n: int):
    return lambda meta: (triton.cdiv(na, meta["BLOCK_A"]), triton.cdiv(n, meta["BLOCK_K"]))


def _forward_launch(x: Tensor, w: Tensor, mode: int, p: float) -> tuple[Tensor, Tensor | None]:
    m, n = x.shape
    v = w.shape[0]
    out = torch.empty(m, v, device=x.device, dtype=torch.float32)
    arg = torch.empty(m, v, device=x.device, dtype=torch.int32) if mode == MAX else None
    _forward[_grid_forward(m, v)](x.t().contiguous(), w.t().contiguous(), out, arg if arg is not None else out,
                                  m, v, n, P=p, MODE=mode)
    return out, arg


def _backward_launch(a: Tensor, b: Tensor, g: Tensor, arg: Tensor | None, stride_gb: int, stride_ga: int,
                     mode: int, p: float, mirror: bool) -> Tensor:
    """out[a, k] = sum_b g[b, a] dt/da (module docstring), float32."""
    na, n = a.shape
    out = torch.empty(na, n, device=a.device, dtype=torch.float32)
    _backward[_grid_backward(na, n)](a, b, g, arg if arg is not None else g, out, na, b.shape[0], n,
                                     stride_gb, stride_ga, P=p, MODE=mode, MIRROR=mirror)
    return out


class FusedReduce(torch.autograd.Function):
    """d = R_k t(x_k, w_k) for one of POWER (returns S = sum |u|^p), MAX or CANBERRA, in float32."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, mode: int, p: float) -> Tensor:  # noqa: ANN001
        x, w = x.contiguous(), w.contiguous()
        out, arg = _forward_launch(x, w, mode, p)
        ctx.save_for_backward(x, w, arg)
        ctx.mode, ctx.p = mode, p
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:  # noqa: ANN001
        x, w, arg = ctx.saved_tensors
        grad = grad.contiguous().float()
        m, v = grad.shape
        gw = _backward_launch(w, x, grad, arg, v, 1, ctx.mode, ctx.p, True)  # G[i, j]: b = i, a = j
        if GRAD_X_FROM_TRANSPOSED:
            arg_t = arg.t().contiguous() if arg is not None else None
            gx = _backward_launch(x, w, grad.t().contiguous(), arg_t, m, 1, ctx.mode, ctx.p, False)
        else:
            gx = _backward_launch(x, w, grad, arg, 1, v, ctx.mode, ctx.p, False)  # G[i, j]: b = j, a = i
        return gx.to(x.dtype), gw.to(w.dtype), None, None


@torch.compiler.disable  # a graph break: Dynamo need not trace the autotuned launches
def fused_reduce(x: Tensor, w: Tensor, mode: int, p: float = 1.0) -> Tensor:
    """The fused kernel for (M, N) rows and (V, N) prototypes: (M, V) float32."""
    return FusedReduce.apply(x, w, mode, float(p))
