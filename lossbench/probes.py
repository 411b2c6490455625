"""Interpretability probes on held-out penultimate features (pure functions of tensors).

- pc2_ev: cumulative explained variance of the first two principal components of the standardised
  features (the Rethinking paper's "PC2 EV"); pca90: components needed for 90 % of the variance.
- prototype geometry: mean cosine between each class's prototype (a distance head's w_c, or a linear
  head's weight row) and its class-mean feature; prototype norm mean and spread.
- nc1: neural-collapse NC1 = tr(S_W S_B^+) / C (Papyan, Han & Donoho 2020): within-class scatter
  relative to between-class scatter; 0 when every feature sits on its class mean.
- effective_rank: exp of the entropy of the normalised singular values (Roy & Vetterli 2007).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lossbench.schema import column

# the probes' result columns (each task lists those it writes: tasks/classification.py, tasks/lm.py)
COLUMNS = {c.name: c for c in [
    column("pc2_ev", "float", "explained variance of the first two PCs of standardised test features",
           label="PC2 EV", block="Interpretability", higher_is_better=True),
    column("pca90", "float", "principal components needed for 90 % of the variance", label="PCA-90%",
           block="Interpretability", higher_is_better=False, fmt=".1f"),
    column("effective_rank", "float", "exp of the entropy of normalised singular values of the features "
           "(no agreed direction: shown, not ranked)", label="Eff. rank", block="Interpretability", fmt=".1f"),
    column("nc1", "float", "neural-collapse NC1 = tr(S_W S_B^+) / C", label="NC1", block="Interpretability",
           higher_is_better=False),
    column("proto_alignment", "float", "mean cosine between each class prototype (a distance head's w_c) and "
           "its class-mean feature; n/a in reports for linear heads, whose weight rows are not points in feature "
           "space", label="Proto. align.", block="Interpretability", higher_is_better=True,
           distance_heads_only=True),
    column("proto_norm_mean", "float", "mean L2 norm of the prototypes"),
    column("proto_norm_std", "float", "std of the prototype norms"),
    column("pc5_ev", "float", "explained variance of the first five PCs of hidden states", label="PC5 EV",
           block="Interpretability", higher_is_better=True),
    column("proto_effective_rank", "float", "effective rank of the prototypes (no agreed direction)",
           label="Proto. eff. rank", block="Interpretability", fmt=".1f"),
    column("proto_pc5_ev", "float", "PC5 EV of the prototypes", label="Proto. PC5 EV", block="Interpretability",
           higher_is_better=True),
]}


def explained_variance(features: Tensor) -> Tensor:
    """Explained-variance ratios of the principal components of standardised features, descending."""
    x = features.double()
    x = x - x.mean(0)
    std = x.std(0, unbiased=False)
    x = x[:, std > 0] / std[std > 0]
    if x.shape[1] == 0:
        return torch.ones(1, dtype=torch.float64)
    s = torch.linalg.svdvals(x)
    var = s.pow(2)
    return var / var.sum()


def pc2_ev(features: Tensor) -> float:
    """Cumulative explained variance of the first two principal components."""
    return float(explained_variance(features)[:2].sum())


def pca90(features: Tensor, threshold: float = 0.9) -> int:
    """Number of principal components needed to explain `threshold` of the variance."""
    cumulative = explained_variance(features).cumsum(0)
    return int(torch.searchsorted(cumulative, torch.tensor(threshold - 1e-12, dtype=torch.float64)).item()) + 1


def effective_rank(features: Tensor) -> float:
    """exp(H(p)) with p the singular values of the centred features divided by their sum."""
    x = features.double()
    s = torch.linalg.svdvals(x - x.mean(0))
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def nc1(features: Tensor, labels: Tensor) -> float:
    """tr(S_W S_B^+) / C over the classes present in `labels`."""
    x = features.double()
    classes = labels.unique()
    mu = x.mean(0)
    means = torch.stack([x[labels == c].mean(0) for c in classes])  # (C, N)
    centred = x - means[torch.searchsorted(classes, labels)]
    s_w = centred.T @ centred / len(x)
    between = means - mu
    s_b = between.T @ between / len(classes)
    return float(torch.trace(s_w @ torch.linalg.pinv(s_b, hermitian=True)) / len(classes))


def prototype_geometry(prototypes: Tensor, features: Tensor, labels: Tensor) -> dict[str, float]:
    """Alignment of prototypes with class-mean features, and prototype norm statistics."""
    w, x = prototypes.double(), features.double()
    classes = labels.unique()
    means = torch.stack([x[labels == c].mean(0) for c in classes])
    cos = torch.nn.functional.cosine_similarity(w[classes], means, dim=1)
    norms = w.norm(dim=1)
    return {
        "proto_alignment": float(cos.mean()),
        "proto_norm_mean": float(norms.mean()),
        "proto_norm_std": float(norms.std(unbiased=False)),
    }


def probe_all(features: Tensor, labels: Tensor, prototypes: Tensor) -> dict[str, float]:
    """Every probe as summary columns; all NaN when they are undefined (fewer than 3 samples, or the
    non-finite features of a diverged model)."""
    if len(features) < 3 or not torch.isfinite(features).all() or not torch.isfinite(prototypes).all():
        return dict.fromkeys(("pc2_ev", "pca90", "effective_rank", "nc1", "proto_alignment",
                              "proto_norm_mean", "proto_norm_std"), math.nan)
    return {
        "pc2_ev": pc2_ev(features),
        "pca90": pca90(features),
        "effective_rank": effective_rank(features),
        "nc1": nc1(features, labels),
        **prototype_geometry(prototypes, features, labels),
    }
