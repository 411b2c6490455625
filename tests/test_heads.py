"""Distances against scipy, and harmonic logits / HarMax against the formulas and losses.md values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import cdist

from lossbench.distances.cosine import CosineDistance
from lossbench.distances.euclidean import EuclideanDistance
from lossbench.models.heads import DistanceHead, LinearHead

SCIPY = {"euclidean": (EuclideanDistance(), "euclidean"), "cosine": (CosineDistance(), "cosine")}
# Test input TH of losses.md: x = [1, 0], prototypes W, target class 0.
TH_X = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
TH_W = torch.tensor([[1.0, 1.0], [0.0, -1.0], [-2.0, 0.0]], dtype=torch.float64)


def _inputs(dtype: torch.dtype, m: int = 37, v: int = 11, n: int = 13) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(m, n, generator=g, dtype=torch.float64) * 3 - 1
    w = torch.randn(v, n, generator=g, dtype=torch.float64)
    x[:4] = w[:4]  # rows equal to a prototype: distance 0
    return x.to(dtype), w.to(dtype)


@pytest.mark.parametrize("name", sorted(SCIPY))
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_distance_matches_scipy(name, dtype, tol):
    metric, scipy_name = SCIPY[name]
    x, w = _inputs(dtype)
    got = metric(x, w).double().numpy()
    want = cdist(x.double().numpy(), w.double().numpy(), scipy_name)
    off_zero = want > 1e-3
    np.testing.assert_allclose(got[off_zero], want[off_zero], rtol=tol)
    assert np.all(got >= 0)
    # the exact-match rows: distance 0 up to the identity's cancellation error
    np.testing.assert_allclose(np.diag(got[:4, :4]), 0.0, atol=1e-6 if dtype == torch.float64 else 2e-3)


@pytest.mark.parametrize("name", sorted(SCIPY))
def test_distance_gradcheck_and_finite_gradient_at_zero(name):
    metric, _ = SCIPY[name]
    x, w = _inputs(torch.float64, 5, 4, 3)
    x = (x[4:] + 0.1).requires_grad_()  # away from d = 0, where the metrics are differentiable
    w = w.clone().requires_grad_()
    assert torch.autograd.gradcheck(metric, (x, w))
    head = DistanceHead(3, 4, metric, n=2.0, eps=1e-6).double()
    with torch.no_grad():
        head.weight.copy_(w)
    logits = head(head.weight[:2].detach().clone().requires_grad_())  # rows exactly on prototypes
    F.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert torch.isfinite(head.weight.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(SCIPY))
def test_half_precision_inputs_give_finite_float32_distances(name, dtype):
    metric, _ = SCIPY[name]
    x, w = _inputs(dtype)
    d = metric(x, w)
    assert d.dtype == torch.float32 and torch.isfinite(d).all()


@pytest.mark.parametrize(
    "metric,n,expected",
    [(EuclideanDistance(), 1.0, 0.7131655), (EuclideanDistance(), 2.0, 0.4769241),
     (EuclideanDistance(), 4.0, 0.2329716), (CosineDistance(), 1.0, 0.3641846), (CosineDistance(), 2.0, 0.1018642)],
)
def test_harmonic_loss_matches_reference_values(metric, n, expected):
    head = DistanceHead(2, 3, metric, n=n, eps=1e-12).double()
    with torch.no_grad():
        head.weight.copy_(TH_W)
    logits = head(TH_X)
    d = metric(TH_X, TH_W)
    torch.testing.assert_close(logits, -n * torch.log(d + 1e-12))
    harmax = d.pow(-n) / d.pow(-n).sum(1, keepdim=True)  # HarMax in probability space
    torch.testing.assert_close(logits.softmax(1), harmax)
    loss = F.cross_entropy(logits, torch.tensor([0]))
    assert loss.item() == pytest.approx(expected, abs=1e-7)


def test_harmonic_gradient_identity():
    """dL/dd_i = (n / d_i) (1[i = y] - p_i) for L = -log HarMax_y (losses.md section 2)."""
    n = 2.0
    d = EuclideanDistance()(TH_X, TH_W).detach().requires_grad_()
    logits = -n * torch.log(d)
    F.cross_entropy(logits, torch.tensor([0])).backward()
    p = logits.softmax(1).detach()
    expected = (n / d.detach()) * (F.one_hot(torch.tensor([0]), 3) - p)
    torch.testing.assert_close(d.grad, expected)
    torch.testing.assert_close(d.grad, torch.tensor([[0.7586, -0.4389, -0.0460]], dtype=torch.float64), atol=1e-4, rtol=0)


def test_linear_head_prototypes_are_its_weight_rows():
    head = LinearHead(4, 3)
    x = torch.randn(5, 4)
    torch.testing.assert_close(head(x), x @ head.prototypes.T + head.linear.bias)
