"""Metrics against scikit-learn / numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from lossbench.metrics import accuracy, grad_norm, macro_f1, param_norm, summarize


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_matches_sklearn(seed):
    g = torch.Generator().manual_seed(seed)
    num_classes = 7
    target = torch.randint(0, num_classes - 1, (200,), generator=g)  # class 6 never in target
    pred = torch.where(torch.rand(200, generator=g) < 0.6, target, torch.randint(0, num_classes, (200,), generator=g))
    want = f1_score(target.numpy(), pred.numpy(), average="macro", zero_division=0)
    assert macro_f1(pred, target, num_classes) == pytest.approx(want, abs=1e-12)
    assert accuracy(pred, target) == pytest.approx(float((pred == target).float().mean()))


def test_summarize_matches_numpy():
    values = [1.0, 2.0, 4.0, 8.0]
    stats = summarize(values, "g")
    assert stats["g_mean"] == pytest.approx(np.mean(values))
    assert stats["g_std"] == pytest.approx(np.std(values))
    assert stats["g_max"] == 8.0
    assert stats["g_cv"] == pytest.approx(np.std(values) / np.mean(values))


def test_param_norm_is_global_l2():
    module = torch.nn.Linear(3, 2)
    flat = torch.cat([p.detach().flatten() for p in module.parameters()])
    assert param_norm(module) == pytest.approx(flat.norm().item())


def test_grad_norm_equals_norm_of_all_entries():
    grads = [torch.randn(5, 3, dtype=torch.float64), torch.randn(7, dtype=torch.float64)]
    flat = torch.cat([g.flatten() for g in grads])
    assert grad_norm(grads).item() == pytest.approx(np.linalg.norm(flat.numpy()), rel=1e-12)
