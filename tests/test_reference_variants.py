"""The Rethinking reference code's variants, available by name and off by default (docs/research/reference-code.md §1.1-1.2):
each against a float64 numpy transcription of the reference formula, and the properties that make it differ
from the formula the paper states."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from test_distances import make

from lossbench.build import build
from lossbench.config import compose_run


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
    # docs/research/reference-code.md §1.1-1.2 transcribed: q = d + eps, q /= min_v q, s = q^-n, logits = -s (n = 1, eps = 1e-4)
    q = np.sqrt(((x.numpy()[:, None, :] - w[None, :, :]) ** 2).sum(-1)) + 1e-4
    q = q / q.min(axis=1, keepdims=True)
    np.testing.assert_allclose(logits, -(q ** -1.0), rtol=1e-10)
    assert (logits.argmax(1) == q.argmax(1)).all()  # the farthest prototype wins
    assert F.softmax(torch.from_numpy(logits), 1).max() <= 1 / (1 + 4 / np.e) + 1e-12  # capped probability
    assert instantiate(cfg.loss.head, in_features=6, num_classes=5).name == "negsim"


def _reference_lm_probs(s: np.ndarray) -> np.ndarray:
    """docs/research/reference-code.md §1.3, GPT.py L203-240 transcribed in float64: clamp, normalise, + 0.01 / V, clamp."""
    s = np.clip(s, 1e-8, 1e8)
    p = s / np.maximum(s.sum(-1, keepdims=True), 1e-8)
    return np.clip(p + 0.01 / s.shape[-1], 1e-8, 1.0)


def _cosines(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)) @ (w / np.linalg.norm(w, axis=-1, keepdims=True)).T


def test_reference_cosine_simple_lm_head_is_the_floored_linear_cosine():
    cfg, _ = compose_run(["task=lm", "loss=cosine_simple_reference"])
    assert cfg.loss.criterion.label_smoothing == 0.1  # the reference trains it with label smoothing 0.1
    torch.manual_seed(0)
    head = build(cfg, "loss.head", in_features=7, num_classes=50).double()
    x, _ = _signed(12, 1, 7, seed=4)
    logits = head(x).detach().numpy()
    p = _reference_lm_probs((1 + _cosines(x.numpy(), head.weight.detach().numpy())) / 2)
    np.testing.assert_allclose(logits, np.log(p), rtol=1e-10)
    # the floor puts 1.01 of probability mass on the 50 tokens: exp(logits) is not a distribution
    np.testing.assert_allclose(np.exp(logits).sum(1), 1.01, rtol=1e-9)
    assert np.exp(logits).max() < 0.5  # near uniform over the vocabulary: no token can dominate


def test_reference_cosine_temperature_lm_head_is_a_floored_cosine_softmax():
    cfg, _ = compose_run(["task=lm", "loss=cosine_temperature_reference", "loss.head.temperature=0.5"])
    torch.manual_seed(0)
    head = build(cfg, "loss.head", in_features=7, num_classes=50).double()
    x, _ = _signed(12, 1, 7, seed=5)
    logits = head(x).detach().numpy()
    z = _cosines(x.numpy(), head.weight.detach().numpy()) / 0.5
    softmax = np.exp(z - z.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    np.testing.assert_allclose(logits, np.log(_reference_lm_probs(softmax)), rtol=1e-10)
    assert (logits.argmax(1) == z.argmax(1)).all()  # the nearest prototype by cosine wins


def test_reference_lm_heads_train_a_tiny_gpt(compose):
    from lossbench.run import execute

    for loss in ("cosine_simple_reference", "cosine_temperature_reference"):
        cfg, choices = compose("task=lm", f"loss={loss}", "backbone.n_layer=1", "backbone.n_head=2", "backbone.n_embd=16",
                               "backbone.block_size=16", "trainer.steps=20", "trainer.eval_every=10",
                               "dataset.eval_windows=4", "probe_samples=64")
        row = execute(cfg, choices).summary
        assert (row["status"], row["head"], row["criterion"], row["distance"]) == ("completed", loss, "ce_ls", "none"), row
        assert np.isfinite(row["test_nll"])
