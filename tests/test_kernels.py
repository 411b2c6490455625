"""The fused Triton kernels of the L1 family: values against scipy, gradients against float64 autograd
of a direct (M, V, N) computation, half precision, tiling edges and HarMax at d = 0.

On a CUDA machine they run on the GPU; elsewhere under Triton's interpreter (conftest sets
TRITON_INTERPRET=1 before anything imports Triton), which is how CI checks them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import cdist
from test_distances import make

from lossbench.distances import kernels
from lossbench.distances.base import Distance

ROOT = Path(__file__).resolve().parents[1]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
L1_FAMILY = ["manhattan", "minkowski", "chebyshev", "canberra", "braycurtis", "hamming_soft"]


@pytest.fixture
def fused(monkeypatch):
    """Route every distance through the Triton kernels, whatever the device."""
    monkeypatch.setattr(kernels, "available", lambda x: True)


def data(m: int, v: int, n: int, dtype: torch.dtype = torch.float32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, n, generator=g, dtype=torch.float64) * 2 - 0.5  # mixed signs
    w = torch.randn(v, n, generator=g, dtype=torch.float64)
    x[:3] = w[:3]  # rows equal to a prototype: distance 0
    return x.to(dtype).to(DEVICE), w.to(dtype).to(DEVICE)


def direct(name: str, metric: Distance, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The metric by broadcasting over (M, V, N) in float64: an independent autograd reference."""
    u = x[:, None, :] - w[None, :, :]
    if name == "manhattan":
        return u.abs().sum(-1)
    if name == "minkowski":
        return u.abs().pow(metric.p).sum(-1).pow(1 / metric.p)
    if name == "chebyshev":
        return u.abs().amax(-1)
    if name == "canberra":
        return (u.abs() / (x.abs()[:, None, :] + w.abs()[None, :, :])).sum(-1)
    if name == "braycurtis":
        return u.abs().sum(-1) / (x[:, None, :] + w[None, :, :]).abs().sum(-1)
    if name == "hamming_soft":
        t = metric.temperature
        return (torch.sigmoid(x / t)[:, None, :] - torch.sigmoid(w / t)[None, :, :]).abs().mean(-1)
    raise KeyError(name)


@pytest.mark.parametrize("name", L1_FAMILY)
@pytest.mark.parametrize("shape", [(37, 11, 13), (70, 45, 9), (1, 1, 1)])  # odd sizes, several tiles, one element
def test_fused_values_match_scipy(fused, name, shape):
    metric = make(name).to(DEVICE)
    x, w = data(*shape)
    got = metric(x, w).detach().double().cpu().numpy()
    want = metric.reference(x.double().cpu().numpy(), w.double().cpu().numpy())
    zero = min(3, shape[0], shape[1])
    np.testing.assert_allclose(got[zero:], want[zero:], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.diag(got[:zero, :zero]), 0.0, atol=1e-6)


@pytest.mark.parametrize("transposed", [True, False])
@pytest.mark.parametrize("name", L1_FAMILY)
def test_fused_gradients_match_float64_autograd(fused, name, transposed, monkeypatch):
    """Both ways of reading the gradient for dL/dx (a transposed copy, or swapped strides)."""
    monkeypatch.setattr(kernels, "GRAD_X_FROM_TRANSPOSED", transposed)
    metric = make(name).to(DEVICE)
    x, w = data(41, 35, 10)
    x = (x[3:] + 0.05).requires_grad_()  # generic points: no ties, no zero differences
    w = w.clone().requires_grad_()
    g = torch.randn(x.shape[0], w.shape[0], generator=torch.Generator().manual_seed(2)).to(DEVICE)
    gx, gw = torch.autograd.grad((metric(x, w) * g).sum(), (x, w))
    xd, wd = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    rx, rw = torch.autograd.grad((direct(name, metric, xd, wd) * g.double()).sum(), (xd, wd))
    torch.testing.assert_close(gx.double(), rx, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gw.double(), rw, rtol=1e-4, atol=1e-5)


def test_chebyshev_gradient_goes_to_the_arg_max_coordinate():
    x = torch.tensor([[0.0, 3.0, -1.0]], device=DEVICE, requires_grad=True)
    w = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, -5.0]], device=DEVICE, requires_grad=True)
    d = kernels.fused_reduce(x, w, kernels.MAX)
    assert d.tolist() == [[2.0, 4.0]]
    gx, gw = torch.autograd.grad(d.sum(), (x, w))
    assert gx.tolist() == [[0.0, 1.0, 1.0]]  # +1 on coordinate 1 (vs w_0), +1 on coordinate 2 (vs w_1)
    assert gw.tolist() == [[0.0, -1.0, 0.0], [0.0, 0.0, -1.0]]


@pytest.mark.parametrize("mode,p", [(kernels.POWER, 1.0), (kernels.POWER, 1.5), (kernels.MAX, 1.0)])
def test_gradients_at_exact_ties_form_a_joint_subgradient(mode, p):
    """These terms depend on x - w alone, so for one row and one prototype dL/dx = -dL/dw, at exact ties
    (x_k = w_k) too: whatever subgradient the kernels pick at 0, x and w must get opposite ones."""
    w = torch.tensor([[0.5, -1.0, 2.0, 0.0, 3.0]], device=DEVICE)
    x = torch.tensor([[0.5, -1.0, 1.0, 0.0, -2.0]], device=DEVICE, requires_grad=True)  # ties at 0, 1, 3
    w.requires_grad_()
    gx, gw = torch.autograd.grad(kernels.fused_reduce(x, w, mode, p).sum(), (x, w))
    torch.testing.assert_close(gx, -gw, rtol=0, atol=0)
    assert gx[0, 2] < 0 and gx[0, 4] < 0 or mode == kernels.MAX  # the untied coordinates: x < w there


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", [kernels.POWER, kernels.MAX, kernels.CANBERRA])
def test_half_inputs_accumulate_in_float32(dtype, mode):
    x, w = data(37, 11, 300, dtype)
    d = kernels.fused_reduce(x, w, mode)
    assert d.dtype == torch.float32 and torch.isfinite(d).all()
    ref = kernels.fused_reduce(x.float(), w.float(), mode)  # the same half values, in float32
    torch.testing.assert_close(d, ref, rtol=1e-6, atol=1e-5)
    x.requires_grad_()
    (gx,) = torch.autograd.grad(kernels.fused_reduce(x, w, mode).sum(), (x,))
    assert gx.dtype == dtype and torch.isfinite(gx.float()).all()


@pytest.mark.parametrize("name", ["manhattan", "minkowski", "canberra"])
def test_harmonic_gradient_is_finite_at_distance_zero(fused, name):
    metric = make(name).to(DEVICE)
    x, w = data(8, 5, 6)  # rows 0-2 sit exactly on prototypes 0-2
    x.requires_grad_()
    w.requires_grad_()
    logits = -2.0 * torch.log(metric(x, w) + 1e-6)
    loss = F.cross_entropy(logits, torch.arange(8, device=DEVICE) % 5)
    gx, gw = torch.autograd.grad(loss, (x, w))
    assert torch.isfinite(gx).all() and torch.isfinite(gw).all()


def test_matches_the_cpu_path_of_each_metric():
    """The fused kernels and the torch paths (cdist / PairwiseReduce) agree on the same inputs."""
    x, w = data(20, 9, 17)
    for name, mode in [("manhattan", kernels.POWER), ("chebyshev", kernels.MAX), ("canberra", kernels.CANBERRA)]:
        metric = make(name)
        want = metric(x.cpu(), w.cpu())  # kernels.available is False on CPU tensors
        torch.testing.assert_close(kernels.fused_reduce(x, w, mode).cpu(), want, rtol=1e-5, atol=1e-6)
    s = kernels.fused_reduce(x, w, kernels.POWER, 3.0).cpu()
    np.testing.assert_allclose(s.double().numpy() ** (1 / 3), cdist(x.cpu().double(), w.cpu().double(), "minkowski", p=3),
                               rtol=1e-5)


def test_kernels_compile_for_an_h100_without_spills():
    """Ahead-of-time lowering to sm_90 through Triton and ptxas: no GPU needed, catches what the
    interpreter cannot (lowering type errors, register spills)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "scripts/compile_kernels.py", "--arch", "90"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = [line.strip("|").split("|") for line in proc.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 4 * (len(kernels.FORWARD_TILES) + len(kernels.BACKWARD_TILES))  # configurations x 4 modes
    for kernel, mode, tile, warps, registers, spills in rows:
        assert int(registers) <= 255 and int(spills) == 0, (kernel, mode, tile, warps)
