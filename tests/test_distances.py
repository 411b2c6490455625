"""Every distance in conf/distance against its declared float64 oracle (`Distance.reference`: scipy or a
numpy transcription of the formula, never lossbench code), plus gradients, half precision, chunking and
memory bounds. A new metric is covered by adding its class and yaml: nothing here names metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from scipy.spatial.distance import cdist

from lossbench.config import compose_run, group_options
from lossbench.distances import numerics
from lossbench.distances.base import Distance
from lossbench.models.heads import DistanceHead

N_FEATURES = 13


def make(name: str, **params: object) -> Distance:
    cfg, _ = compose_run([f"distance={name}", *(f"distance.{k}={v}" for k, v in params.items())])
    metric = instantiate(cfg.distance)
    metric.setup(N_FEATURES)
    g = torch.Generator().manual_seed(1)
    for p in metric.parameters():  # move learnable metrics away from their identity init
        with torch.no_grad():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return metric


def inputs(dtype: torch.dtype, m: int = 37, v: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(m, N_FEATURES, generator=g, dtype=torch.float64) * 2 - 0.5  # mixed signs
    w = torch.randn(v, N_FEATURES, generator=g, dtype=torch.float64)
    x[:4] = w[:4]  # rows equal to a prototype: distance 0
    return x.to(dtype), w.to(dtype)


ALL = group_options("distance")


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_distance_matches_oracle(name, dtype, rtol):
    metric = make(name).to(dtype)
    x, w = inputs(dtype)
    got = metric(x, w).detach().double().numpy()
    want = metric.reference(x.double().numpy(), w.double().numpy())
    assert got.shape == (37, 11) and np.all(got >= 0)
    np.testing.assert_allclose(got[4:], want[4:], rtol=rtol, atol=0)
    if metric.zero_on_diagonal:  # d(w_j, w_j) = 0 exactly, even through the matmul identity
        np.testing.assert_allclose(np.diag(got[:4, :4]), 0.0, atol=1e-12 if dtype == torch.float64 else 1e-6)


@pytest.mark.parametrize("name", ALL)
def test_distance_gradcheck(name):
    metric = make(name).double()
    x, w = inputs(torch.float64, 6, 5)
    x = (x[4:] + 0.05).requires_grad_()  # generic points: no ties, no zero coordinates, no d = 0
    w = w.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: metric(a, b), (x, w))


@pytest.mark.parametrize("name", ALL)
def test_harmax_gradient_is_finite_at_zero_distance(name):
    head = DistanceHead(N_FEATURES, 5, make(name), n=2.0, eps=1e-6).double()
    x = head.weight[:3].detach().clone().requires_grad_()  # features exactly on prototypes
    F.cross_entropy(head(x), torch.tensor([0, 1, 2])).backward()
    grads = [x.grad] + [p.grad for p in head.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ALL)
def test_half_precision_inputs_give_finite_float32(name, dtype):
    x, w = inputs(dtype)
    d = make(name)(x, w)
    assert d.dtype == torch.float32 and torch.isfinite(d).all()


@pytest.mark.parametrize("name", ALL)
def test_harmonic_head_is_identical_in_chunks(name, monkeypatch):
    head = DistanceHead(N_FEATURES, 11, make(name), n=2.0, eps=1e-6).double()
    x, _ = inputs(torch.float64)
    x.requires_grad_()
    whole = head(x)
    (whole * torch.linspace(-1, 1, 11, dtype=torch.float64)).sum().backward()
    grad_whole = head.weight.grad.clone()
    head.weight.grad = None
    monkeypatch.setattr(numerics, "BLOCK_ELEMENTS", 3 * N_FEATURES)  # force many tiny blocks
    parts = torch.cat([head(chunk) for chunk in x.split(5)])
    (parts * torch.linspace(-1, 1, 11, dtype=torch.float64)).sum().backward()
    torch.testing.assert_close(parts, whole, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(head.weight.grad, grad_whole, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["canberra", "chebyshev_smooth", "minkowski"])
def test_blockwise_metrics_never_hold_more_than_one_block(name, monkeypatch):
    limit = 4 * 5 * N_FEATURES
    monkeypatch.setattr(numerics, "BLOCK_ELEMENTS", limit)
    metric = make(name)
    sizes = []
    original = numerics.PairwiseReduce.forward

    def spy(ctx, x, w, fn):  # record the size of every (rows, prototypes, features) block
        def counted(a, b):
            sizes.append(a.shape[0] * b.shape[1] * a.shape[2])
            return fn(a, b)

        return original(ctx, x, w, counted)

    monkeypatch.setattr(numerics.PairwiseReduce, "forward", staticmethod(spy))
    x, w = inputs(torch.float64, 50, 30)
    x.requires_grad_()
    metric(x, w).sum().backward()
    assert sizes and max(sizes) <= limit and len(sizes) >= (50 * 30 * N_FEATURES) // limit


def test_soft_hamming_tends_to_hamming_on_signs():
    x, w = inputs(torch.float64)
    x, w = x[4:], w
    d = make("hamming_soft", temperature=1e-4)(x, w).numpy()
    np.testing.assert_allclose(d, cdist(x.numpy() > 0, w.numpy() > 0, "hamming"), atol=1e-3)


@pytest.mark.parametrize("p", [0.5, 1.0, 3.0, "inf"])
def test_minkowski_any_p_matches_scipy_with_finite_gradients_where_coordinates_tie(p):
    metric = make("minkowski", p=p).double()  # "inf" as a user writes it on the command line
    assert metric.p == float(p)
    x, w = inputs(torch.float64)
    x[4:, 0] = w[0, 0]  # one coordinate equal to prototype 0's: |u|^p has an infinite derivative there if p < 1
    x.requires_grad_()
    d = metric(x, w)
    np.testing.assert_allclose(d.detach().numpy(), cdist(x.detach().numpy(), w.numpy(), "minkowski", p=float(p)), rtol=1e-10)
    d.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.autograd.gradcheck(metric, (x.detach()[4:, 1:].contiguous().requires_grad_(), w[:, 1:]))


def test_braycurtis_where_the_denominator_vanishes():
    metric = make("braycurtis")
    x = torch.tensor([[0.0, 0.0], [1.0, -2.0]], dtype=torch.float64)
    w = torch.tensor([[0.0, 0.0], [-1.0, 2.0]], dtype=torch.float64)
    d = metric(x, w)
    assert d[0, 0] == 0.0 and torch.isfinite(d).all() and d[1, 1] > 1e9


@pytest.mark.parametrize("overrides", [[], ["distance.rank=3"]])
def test_mahalanobis_starts_euclidean(overrides):
    cfg, _ = compose_run(["distance=mahalanobis", *overrides])
    metric = instantiate(cfg.distance)
    metric.setup(N_FEATURES)
    metric.double()
    x, w = inputs(torch.float64)
    torch.testing.assert_close(metric(x, w), torch.cdist(x, w, compute_mode="donot_use_mm_for_euclid_dist"))


def test_distances_compute_in_float32_inside_an_autocast_region():
    """A bf16-autocast forward (language models on CUDA) must not turn the head's products into bf16."""
    metric = make("euclidean")
    x, w = inputs(torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = metric(x, w)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got[4:].double().numpy(), cdist(x[4:].double().numpy(), w.double().numpy()), rtol=1e-5)
