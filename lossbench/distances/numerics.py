"""Shared numerics of the distance heads (docs/design.md: one module named for them).

- `safe_sqrt` / `safe_power`: roots and powers with a finite (sub)gradient at 0;
- `squared_euclidean`: the matrix-product identity with exact recomputation where it cancels;
- `l1` / `linf`: the two L1-family reductions that other metrics build on (fused kernel on CUDA);
- `PairwiseReduce`: a memory-bounded autograd function for metrics with no matrix-product or
  torch.cdist form (their per-coordinate terms are computed block by block, forward and backward,
  so no (M, V, N) tensor ever exists).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType

import torch
from torch import Tensor

# Entries with ||x - w||^2 below this fraction of ||x||^2 + ||w||^2 are recomputed directly: there the
# identity's rounding error (~ eps * (||x||^2 + ||w||^2)) would exceed ~1e-5 of the value in float32.
REFINE_BELOW = 1e-2
# Elements of one (rows, prototypes, features) block in PairwiseReduce: 2^18 floats = 1 MiB in fp32;
# measured on CPU, smaller blocks stay in cache and were both faster and leaner than 16 MiB ones.
BLOCK_ELEMENTS = 1 << 18



def fused(x: Tensor) -> ModuleType | None:
    """The fused Triton kernels (kernels.py) for CUDA tensors where Triton is installed, else None. Imported on
    first use: importing Triton costs about a second of CPU time, which CPU runs and bad-input errors skip."""
    if not x.is_cuda:
        return None
    from lossbench.distances import kernels

    return kernels if kernels.available(x) else None

def _on_positive(a: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
    """fn(a) where a > 0 and 0 elsewhere, with gradient 0 there: fn never sees a = 0, so an infinite
    derivative at 0 cannot turn into inf * 0 = NaN in backward."""
    positive = a > 0
    return torch.where(positive, fn(torch.where(positive, a, torch.ones_like(a))), torch.zeros_like(a))


def safe_sqrt(sq: Tensor) -> Tensor:
    """sqrt with gradient 0 (a subgradient) instead of inf where sq == 0."""
    return _on_positive(sq, torch.sqrt)


def safe_power(a: Tensor, p: float) -> Tensor:
    """a^p for a >= 0 and p > 0, with gradient 0 (a subgradient) at a = 0, where it is infinite for p < 1."""
    return _on_positive(a, lambda t: t.pow(p))


def squared_euclidean(x: Tensor, w: Tensor) -> Tensor:
    """||x_i - w_j||^2 for all pairs, (M, V), via ||x||^2 + ||w||^2 - 2 x.w, in O(M*V) memory.

    The identity cancels catastrophically where x_i is close to w_j relative to their norms, which
    is exactly where harmonic training drives the target class. Those few entries (below
    REFINE_BELOW of ||x||^2 + ||w||^2) are recomputed as sum((x_i - w_j)^2), differentiably.
    """
    xx = x.pow(2).sum(1, keepdim=True)  # (M, 1)
    ww = w.pow(2).sum(1)  # (V,)
    sq = (xx + ww - 2.0 * (x @ w.T)).clamp_min(0.0)
    rows, cols = torch.nonzero(sq.detach() < REFINE_BELOW * (xx + ww).detach(), as_tuple=True)
    if rows.numel():
        exact = (x[rows] - w[cols]).pow(2).sum(1)
        sq = sq.index_put((rows, cols), exact)
    return sq


class PairwiseReduce(torch.autograd.Function):
    """d[i, j] = term(x_i, w_j) for a per-pair function `term(x (b, 1, N), w (1, c, N)) -> (b, c)`.

    Forward fills d block by block; backward recomputes each block with autograd and accumulates
    its gradients, so peak extra memory is O(M*V + BLOCK_ELEMENTS) whatever M, V and N are.
    """

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, term: Callable[[Tensor, Tensor], Tensor]) -> Tensor:  # noqa: ANN001
        ctx.save_for_backward(x, w)
        ctx.term = term
        out = x.new_empty(x.shape[0], w.shape[0])
        for rows, cols in _blocks(x.shape[0], w.shape[0], x.shape[1]):
            out[rows, cols] = term(x[rows, None, :], w[None, cols, :])
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:  # noqa: ANN001
        x, w = ctx.saved_tensors
        gx, gw = torch.zeros_like(x), torch.zeros_like(w)
        for rows, cols in _blocks(x.shape[0], w.shape[0], x.shape[1]):
            with torch.enable_grad():
                xb = x[rows].detach().requires_grad_()
                wb = w[cols].detach().requires_grad_()
                d = ctx.term(xb[:, None, :], wb[None, :, :])
                dx, dw = torch.autograd.grad(d, (xb, wb), grad[rows, cols])
            gx[rows] += dx
            gw[cols] += dw
        return gx, gw, None


def _blocks(m: int, v: int, n: int) -> list[tuple[slice, slice]]:
    """(row, prototype) slices whose blocks hold at most BLOCK_ELEMENTS (rows x prototypes x features)."""
    cols = max(1, min(v, BLOCK_ELEMENTS // max(1, m * n)))
    rows = m if m * n <= BLOCK_ELEMENTS else max(1, BLOCK_ELEMENTS // max(1, n))
    return [(slice(i, i + rows), slice(j, j + cols)) for i in range(0, m, rows) for j in range(0, v, cols)]


def pairwise_reduce(x: Tensor, w: Tensor, term: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """Apply PairwiseReduce (memory-bounded in forward and backward)."""
    return PairwiseReduce.apply(x, w, term)


def l1(x: Tensor, w: Tensor) -> Tensor:
    """sum_k |x_k - w_k| for all pairs, (M, V): the fused kernel on CUDA, torch.cdist elsewhere."""
    kernels = fused(x)
    return kernels.fused_reduce(x, w, kernels.POWER, 1.0) if kernels else torch.cdist(x, w, p=1.0)


def linf(x: Tensor, w: Tensor) -> Tensor:
    """max_k |x_k - w_k| for all pairs, (M, V): the fused kernel (arg-max kept) on CUDA, torch.cdist elsewhere."""
    kernels = fused(x)
    return kernels.fused_reduce(x, w, kernels.MAX) if kernels else torch.cdist(x, w, p=math.inf)
