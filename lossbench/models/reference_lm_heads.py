"""The Rethinking reference code's cosine LM heads, by name (docs/research/reference-code.md §1.3; `llms/model/distance_layers.py`
and the shared post-processing of `llms/model/GPT.py` L203-240). Off by default; for reproducing the published
GPT/BERT numbers, whose "cosine-based harmonic losses" are these two heads, neither an inverse-power (HarMax) head:

- `cosine_simple`: s = (1 + cos(x, w)) / 2, linear in the cosine, so p_i / p_j = (1 + cos_i) / (1 + cos_j): the
  output stays near uniform over a large vocabulary unless most prototypes point away from x.
- `cosine_temp_scale_T`: s = softmax(cos(x, w) / T), a fixed-temperature cosine softmax (NormFace-style).

Both then go through the reference's post-processing for every LM head: s clamped to [1e-8, 1e8], p = s / sum(s)
(sum clamped at 1e-8), then **p + 0.01 / V** (not renormalised), clamped to [1e-8, 1], logits = log p. With
cross-entropy over these logits the floor adds 0.01 to the total mass, so the loss is not a true NLL.
The reference trains them with label smoothing 0.1 (loss=*_reference uses loss/criterion=ce_ls) and clamps each
token's loss to [0, 20]; lossbench does not clamp the loss.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lossbench.models.heads import prototype_parameter
from lossbench.ranges import PositiveFloat

FLOOR = 0.01  # the reference's p + FLOOR / V


def reference_lm_logits(s: Tensor) -> Tensor:
    """log of the reference's floored probabilities from similarities s (..., V) (module docstring)."""
    s = s.clamp(1e-8, 1e8)
    p = s / s.sum(dim=-1, keepdim=True).clamp_min(1e-8)
    return (p + FLOOR / s.shape[-1]).clamp(1e-8, 1.0).log()


class _CosineReferenceHead(nn.Module):
    """Prototypes w (V, N) (heads.prototype_parameter); cos(x, w) of F.normalize'd rows."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.weight = prototype_parameter(in_features, num_classes)

    @property
    def prototypes(self) -> Tensor:
        return self.weight

    def cosine(self, x: Tensor) -> Tensor:
        return nn.functional.normalize(x, dim=-1) @ nn.functional.normalize(self.weight, dim=-1).T


class CosineSimpleReferenceHead(_CosineReferenceHead):
    """The reference's `cosine_simple` LM head: logits = log(floored normalised (1 + cos) / 2)."""

    name = "cosine_simple_reference"

    def forward(self, x: Tensor) -> Tensor:
        return reference_lm_logits((1.0 + self.cosine(x)) / 2.0)


class CosineTemperatureReferenceHead(_CosineReferenceHead):
    """The reference's `cosine_temp_scale_T` LM head: logits = log(floored softmax(cos / T))."""

    name = "cosine_temperature_reference"

    def __init__(self, in_features: int, num_classes: int, temperature: PositiveFloat = 0.1) -> None:
        super().__init__(in_features, num_classes)
        self.temperature = temperature

    def forward(self, x: Tensor) -> Tensor:
        return reference_lm_logits(torch.softmax(self.cosine(x) / self.temperature, dim=-1))
