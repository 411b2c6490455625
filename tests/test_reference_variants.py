"""The Rethinking reference code's variants, available by name and off by default (reference.md §1.1-1.2):
each against a float64 numpy transcription of the reference formula, and the properties that make it differ
from the formula the paper states."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from test_distances import make

from lossbench.config import compose_run
from lossbench.run import build


def _signed(m: int, v: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, n, generator=g, dtype=torch.float64), torch.randn(v, n, generator=g, dtype=torch.float64)


def test_signed_braycurtis_is_scipys_on_non_negative_features_and_not_on_signed_ones():
    x, w = _signed(40, 10, 13)
    signed, scipy_formula = make("braycurtis_signed").double(), make("braycurtis").double()
    positive = signed(x.abs(), w.abs()), scipy_formula(x.abs(), w.abs())
    torch.testing.assert_close(positive[0], positive[1], rtol=1e-3, atol=0)  # |sum(x + w)| = sum|x + w| there (eps aside)
    d_signed, d_scipy = signed(x, w), scipy_formula(x, w)
    # |sum(x + w)| <= sum|x + w|: never below scipy's value, far above it where x and w cancel
    assert (d_signed >= d_scipy * (1 - 1e-3)).all() and (d_signed / d_scipy).max() > 10
    ratio = F.softmax(-2 * torch.log(d_signed), 1) / F.softmax(-2 * torch.log(d_scipy), 1)
    assert ratio.max() > 10 or ratio.min() < 0.1  # HarMax probabilities far apart


def test_only_the_reference_variants_say_which_reference_layer_they_reproduce():
    from lossbench.config import group_options

    marked = {name for name in group_options("distance") if type(make(name)).reproduces}
    assert marked == {"braycurtis_signed", "chebyshev_reference"}


def test_reference_chebyshev_is_a_scale_free_soft_mean_not_a_maximum():
    x, w = _signed(30, 8, 13)
    metric = make("chebyshev_reference").double()
    d = metric(x, w)
    u = (x[:, None] - w[None]).abs()
    u = u / (u.std(-1, keepdim=True) + metric.eps)
    assert (d <= u.amax(-1) + 1e-12).all() and (d >= u.mean(-1) - 1e-12).all()  # between the mean and the max
    torch.testing.assert_close(metric(10 * x, 10 * w), d, rtol=1e-3, atol=0)  # scale-free (eps aside)
    assert not torch.allclose(d, make("chebyshev").double()(x, w), rtol=0.1)


def test_negated_similarity_head_matches_the_reference_objective_and_predicts_the_farthest_prototype():
    cfg, _ = compose_run(["loss=negsim_reference", "distance=euclidean"])
    torch.manual_seed(0)
    head = build(cfg, "loss.head", in_features=6, num_classes=5).double()
    x, _ = _signed(20, 5, 6, seed=3)
    logits = head(x).detach().numpy()
    w = head.weight.detach().numpy()
    # reference.md §1.1-1.2 transcribed: q = d + eps, q /= min_v q, s = q^-n, logits = -s (n = 1, eps = 1e-4)
    q = np.sqrt(((x.numpy()[:, None, :] - w[None, :, :]) ** 2).sum(-1)) + 1e-4
    q = q / q.min(axis=1, keepdims=True)
    np.testing.assert_allclose(logits, -(q ** -1.0), rtol=1e-10)
    assert (logits.argmax(1) == q.argmax(1)).all()  # the farthest prototype wins
    assert F.softmax(torch.from_numpy(logits), 1).max() <= 1 / (1 + 4 / np.e) + 1e-12  # capped probability
    assert instantiate(cfg.loss.head, in_features=6, num_classes=5).name == "negsim"
