"""Fused Triton kernels for the L1 family of distances on CUDA: forward and backward tiled like a matmul.

Every L1-family metric is a per-coordinate reduction d[i, j] = R_k t(x[i, k], w[j, k]):

    POWER     S = sum_k |x_k - w_k|^p        (manhattan p = 1, minkowski d = S^(1/p), and, on
                                              transformed inputs, bray-curtis and soft Hamming)
    MAX       d = max_k |x_k - w_k|          (chebyshev; the arg-max coordinate is kept for backward)
    CANBERRA  d = sum_k |x_k - w_k| / (|x_k| + |w_k|)   (a term with a zero denominator counts 0)

The forward kernel gives each program a (BLOCK_M x BLOCK_V) tile of d and walks the features in
BLOCK_K chunks, so only the (M, V) output is written: no (M, V, N) tensor exists, forward or backward.
Backward needs dL/dx[i, k] = sum_j G[i, j] * dt/dx(x[i, k], w[j, k]) (and the same over i for w):
a matmul-shaped contraction with a non-linear inner term. One kernel computes a (BLOCK_M x BLOCK_K)
tile of dL/dx by walking the prototypes, another a (BLOCK_V x BLOCK_K) tile of dL/dw by walking the
rows; each recomputes the differences from x and w, so the extra memory is the two gradients.
Accumulation is in float32 whatever the input dtype.

On CPU the same kernels run under Triton's interpreter (TRITON_INTERPRET=1, set before import), which
is how CI tests them; production CPU runs use the chunked torch paths of each metric instead.
"""

from __future__ import annotations

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - triton ships with CUDA builds of torch
    triton = None

POWER, MAX, CANBERRA = 0, 1, 2


def available(x: Tensor) -> bool:
    """True when the distances should take the fused path: CUDA tensors, with Triton installed."""
    return triton is not None and x.is_cuda


if triton is not None:
    # the modes as compile-time constants that jitted code may read (Triton only admits constexpr globals)
    _POWER, _MAX, _CANBERRA = tl.constexpr(POWER), tl.constexpr(MAX), tl.constexpr(CANBERRA)

    @triton.jit
    def _term(u, xv, wv, P: tl.constexpr, MODE: tl.constexpr):
        """The per-coordinate term t for u = x - w (POWER with p == 1 is plain |u|)."""
        a = tl.abs(u)
        if MODE == _POWER:
            if P != 1.0:
                a = tl.where(a > 0, tl.exp2(P * tl.log2(tl.maximum(a, 1e-30))), 0.0)
        elif MODE == _CANBERRA:
            den = tl.abs(xv) + tl.abs(wv)
            a = tl.where(den > 0, a / tl.where(den > 0, den, 1.0), 0.0)
        return a

    @triton.jit
    def _dterm_dx(u, xv, wv, P: tl.constexpr, MODE: tl.constexpr):
        """dt/dx. Every term is symmetric, t(x, w) = t(w, x), so dt/dw = _dterm_dx(w - x, w, x)."""
        s = tl.where(u > 0, 1.0, tl.where(u < 0, -1.0, 0.0))
        if MODE == _POWER:
            g = s
            if P != 1.0:
                a = tl.abs(u)
                g = tl.where(a > 0, P * tl.exp2((P - 1.0) * tl.log2(tl.maximum(a, 1e-30))) * s, 0.0)
        elif MODE == _MAX:
            g = s
        else:
            den = tl.abs(xv) + tl.abs(wv)
            safe = tl.where(den > 0, den, 1.0)
            sx = tl.where(xv > 0, 1.0, tl.where(xv < 0, -1.0, 0.0))
            g = tl.where(den > 0, s / safe - tl.abs(u) * sx / (safe * safe), 0.0)
        return g

    @triton.jit
    def _forward(X, W, OUT, ARG, M, V, N,
                 P: tl.constexpr,                  MODE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_K: tl.constexpr):
        pid_m, pid_v = tl.program_id(0), tl.program_id(1)
        rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        rv = pid_v * BLOCK_V + tl.arange(0, BLOCK_V)
        acc = tl.zeros((BLOCK_M, BLOCK_V), dtype=tl.float32)
        arg = tl.zeros((BLOCK_M, BLOCK_V), dtype=tl.int32)
        for k0 in range(0, N, BLOCK_K):
            rk = k0 + tl.arange(0, BLOCK_K)
            x = tl.load(X + rm[:, None] * N + rk[None, :], mask=(rm[:, None] < M) & (rk[None, :] < N), other=0.0)
            w = tl.load(W + rv[:, None] * N + rk[None, :], mask=(rv[:, None] < V) & (rk[None, :] < N), other=0.0)
            xv, wv = x.to(tl.float32)[:, None, :], w.to(tl.float32)[None, :, :]
            t = _term(xv - wv, xv, wv, P, MODE)  # (BLOCK_M, BLOCK_V, BLOCK_K); padded k give t = 0
            if MODE == _MAX:
                best = tl.max(t, axis=2)
                where = tl.argmax(t, axis=2).to(tl.int32) + k0
                take = best > acc
                arg = tl.where(take, where, arg)
                acc = tl.where(take, best, acc)
            else:
                acc += tl.sum(t, axis=2)
        mask = (rm[:, None] < M) & (rv[None, :] < V)
        tl.store(OUT + rm[:, None] * V + rv[None, :], acc, mask=mask)
        if MODE == _MAX:
            tl.store(ARG + rm[:, None] * V + rv[None, :], arg, mask=mask)

    @triton.jit
    def _backward_x(X, W, G, ARG, GX, M, V, N,
                    P: tl.constexpr,                     MODE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_K: tl.constexpr):
        pid_m, pid_k = tl.program_id(0), tl.program_id(1)
        rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        rk = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
        x = tl.load(X + rm[:, None] * N + rk[None, :], mask=(rm[:, None] < M) & (rk[None, :] < N), other=0.0)
        xv = x.to(tl.float32)[:, None, :]
        acc = tl.zeros((BLOCK_M, BLOCK_K), dtype=tl.float32)
        for v0 in range(0, V, BLOCK_V):
            rv = v0 + tl.arange(0, BLOCK_V)
            w = tl.load(W + rv[:, None] * N + rk[None, :], mask=(rv[:, None] < V) & (rk[None, :] < N), other=0.0)
            g = tl.load(G + rm[:, None] * V + rv[None, :], mask=(rm[:, None] < M) & (rv[None, :] < V), other=0.0)
            wv = w.to(tl.float32)[None, :, :]
            d = _dterm_dx(xv - wv, xv, wv, P, MODE)
            if MODE == _MAX:
                a = tl.load(ARG + rm[:, None] * V + rv[None, :], mask=(rm[:, None] < M) & (rv[None, :] < V), other=-1)
                d = tl.where(a[:, :, None] == rk[None, None, :], d, 0.0)
            acc += tl.sum(d * g.to(tl.float32)[:, :, None], axis=1)
        tl.store(GX + rm[:, None] * N + rk[None, :], acc, mask=(rm[:, None] < M) & (rk[None, :] < N))

    @triton.jit
    def _backward_w(X, W, G, ARG, GW, M, V, N,
                    P: tl.constexpr,                     MODE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_K: tl.constexpr):
        pid_v, pid_k = tl.program_id(0), tl.program_id(1)
        rv = pid_v * BLOCK_V + tl.arange(0, BLOCK_V)
        rk = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
        w = tl.load(W + rv[:, None] * N + rk[None, :], mask=(rv[:, None] < V) & (rk[None, :] < N), other=0.0)
        wv = w.to(tl.float32)[None, :, :]
        acc = tl.zeros((BLOCK_V, BLOCK_K), dtype=tl.float32)
        for m0 in range(0, M, BLOCK_M):
            rm = m0 + tl.arange(0, BLOCK_M)
            x = tl.load(X + rm[:, None] * N + rk[None, :], mask=(rm[:, None] < M) & (rk[None, :] < N), other=0.0)
            g = tl.load(G + rm[:, None] * V + rv[None, :], mask=(rm[:, None] < M) & (rv[None, :] < V), other=0.0)
            xv = x.to(tl.float32)[:, None, :]
            d = _dterm_dx(wv - xv, wv, xv, P, MODE)
            if MODE == _MAX:
                a = tl.load(ARG + rm[:, None] * V + rv[None, :], mask=(rm[:, None] < M) & (rv[None, :] < V), other=-1)
                d = tl.where(a[:, :, None] == rk[None, None, :], d, 0.0)
            acc += tl.sum(d * g.to(tl.float32)[:, :, None], axis=0)
        tl.store(GW + rv[:, None] * N + rk[None, :], acc, mask=(rv[:, None] < V) & (rk[None, :] < N))


# Tile sizes: (BLOCK_M, BLOCK_V, BLOCK_K). The 3-D (BLOCK_M, BLOCK_V, BLOCK_K) intermediate lives in
# registers, so the product is kept at 4096 elements.
TILES = (32, 32, 4)


def _launch_forward(x: Tensor, w: Tensor, mode: int, p: float) -> tuple[Tensor, Tensor]:
    m, n = x.shape
    v = w.shape[0]
    out = torch.empty(m, v, device=x.device, dtype=torch.float32)
    arg = torch.empty(m, v, device=x.device, dtype=torch.int32) if mode == MAX else out
    bm, bv, bk = TILES
    _forward[(triton.cdiv(m, bm), triton.cdiv(v, bv))](x, w, out, arg, m, v, n, P=p, MODE=mode,
                                                       BLOCK_M=bm, BLOCK_V=bv, BLOCK_K=bk)
    return out, arg


class FusedReduce(torch.autograd.Function):
    """d = R_k t(x_k, w_k) for one of POWER (returns S = sum |u|^p), MAX or CANBERRA, in float32."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, mode: int, p: float) -> Tensor:  # noqa: ANN001
        x, w = x.contiguous(), w.contiguous()
        out, arg = _launch_forward(x, w, mode, p)
        ctx.save_for_backward(x, w, arg if mode == MAX else None)
        ctx.mode, ctx.p = mode, p
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:  # noqa: ANN001
        x, w, arg = ctx.saved_tensors
        grad = grad.contiguous().float()
        arg = arg if arg is not None else grad
        m, n = x.shape
        v = w.shape[0]
        bm, bv, bk = TILES
        gx = torch.empty(m, n, device=x.device, dtype=torch.float32)
        gw = torch.empty(v, n, device=x.device, dtype=torch.float32)
        _backward_x[(triton.cdiv(m, bm), triton.cdiv(n, bk))](x, w, grad, arg, gx, m, v, n, P=ctx.p, MODE=ctx.mode,
                                                              BLOCK_M=bm, BLOCK_V=bv, BLOCK_K=bk)
        _backward_w[(triton.cdiv(v, bv), triton.cdiv(n, bk))](x, w, grad, arg, gw, m, v, n, P=ctx.p, MODE=ctx.mode,
                                                              BLOCK_M=bm, BLOCK_V=bv, BLOCK_K=bk)
        return gx.to(x.dtype), gw.to(w.dtype), None, None


def fused_reduce(x: Tensor, w: Tensor, mode: int, p: float = 1.0) -> Tensor:
    """The fused kernel for (M, N) rows and (V, N) prototypes: (M, V) float32."""
    return FusedReduce.apply(x, w, mode, float(p))
