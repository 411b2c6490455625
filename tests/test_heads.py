"""Harmonic logits / HarMax against the formulas and the values of docs/research/losses.md."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lossbench.distances.cosine import CosineDistance
from lossbench.distances.euclidean import EuclideanDistance
from lossbench.models.heads import DistanceHead, LinearHead

# Test input TH of docs/research/losses.md: x = [1, 0], prototypes W, target class 0.
TH_X = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
TH_W = torch.tensor([[1.0, 1.0], [0.0, -1.0], [-2.0, 0.0]], dtype=torch.float64)


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
    """dL/dd_i = (n / d_i) (1[i = y] - p_i) for L = -log HarMax_y (docs/research/losses.md section 2)."""
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
