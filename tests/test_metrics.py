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
    assert accuracy(pred, target) == pytest.approx(sum(int(p) == int(t) for p, t in zip(pred, target)) / 200)


def test_accuracy_on_a_hand_counted_case():
    pred, target = torch.tensor([0, 1, 2, 2, 1]), torch.tensor([0, 1, 1, 2, 0])
    assert accuracy(pred, target) == pytest.approx(3 / 5)


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


# --- interpretability probes on constructed cases with known answers ---------------------------------
from lossbench import probes  # noqa: E402


def test_two_orthogonal_axes_have_pc2_ev_one_and_pca90_two():
    f = torch.tensor([[1.0, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]] * 5)
    assert probes.pc2_ev(f) == pytest.approx(1.0)
    assert probes.pca90(f) == 2
    assert probes.effective_rank(f) == pytest.approx(2.0)


def test_pca_matches_numpy_on_random_features():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(200, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    z = (f.numpy() - f.numpy().mean(0)) / f.numpy().std(0)
    ev = np.sort(np.linalg.eigvalsh(np.cov(z.T)))[::-1]
    ev = ev / ev.sum()
    assert probes.pc2_ev(f) == pytest.approx(ev[:2].sum(), rel=1e-10)
    assert probes.pca90(f) == int(np.searchsorted(np.cumsum(ev), 0.9) + 1)


def test_effective_rank_of_isotropic_and_rank_one_features():
    eye = torch.cat([torch.eye(4), -torch.eye(4)])  # centred, four equal singular values
    assert probes.effective_rank(eye) == pytest.approx(4.0)
    line = torch.arange(10.0)[:, None] * torch.tensor([[1.0, 2.0, 3.0]])
    assert probes.effective_rank(line) == pytest.approx(1.0, abs=1e-6)


def test_nc1_is_zero_when_collapsed_and_grows_with_spread():
    g = torch.Generator().manual_seed(0)
    means = torch.randn(3, 4, generator=g, dtype=torch.float64) * 5
    labels = torch.arange(60) % 3
    assert probes.nc1(means[labels], labels) == pytest.approx(0.0, abs=1e-12)
    noise = torch.randn(60, 4, generator=g, dtype=torch.float64)
    for c in range(3):  # zero-mean noise within each class: class means (and S_B) stay put
        noise[labels == c] -= noise[labels == c].mean(0)
    small, large = probes.nc1(means[labels] + 0.1 * noise, labels), probes.nc1(means[labels] + noise, labels)
    assert 0 < small < large
    assert large == pytest.approx(100 * small, rel=1e-9)  # NC1 scales with the square of the spread


def test_prototype_alignment_is_one_for_prototypes_on_class_means():
    means = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    labels = torch.arange(9) % 3
    geo = probes.prototype_geometry(means * 4, means[labels], labels)
    assert geo["proto_alignment"] == pytest.approx(1.0)
    norms = (means * 4).norm(dim=1)
    assert geo["proto_norm_mean"] == pytest.approx(norms.mean().item())
    assert probes.prototype_geometry(-means, means[labels], labels)["proto_alignment"] == pytest.approx(-1.0)
