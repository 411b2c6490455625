"""The objective the Rethinking reference code uses for its MLP and CNN backbones (docs/research/reference-code.md §1.1), by name.

Its distance layers return a similarity s = q^(-n), q = d(x, w) + eps (the Euclidean, Manhattan and cosine
layers always divide q by its minimum over the classes first), and those backbones then use logits = -s with
cross-entropy, so p = softmax(-s): the prototype with the *smallest* similarity, i.e. the **farthest** one, gets
the highest probability, and with min-normalisation s lies in (0, 1], so p can never exceed
1 / (1 + (V - 1) / e) (0.232 for 10 classes). This is not HarMax (`loss=harmonic`, p_i proportional to
d_i^-n); the reference's ResNet-50 and PVT wrappers do use HarMax. A reference variant, off by default:
`loss=negsim_reference`, to reproduce the published MLP/CNN numbers (experiment=paper_vision_reference).
"""

from __future__ import annotations

from torch import Tensor, nn

from lossbench.distances.base import Distance
from lossbench.models.heads import prototype_parameter
from lossbench.ranges import PositiveFloat


class NegatedSimilarityHead(nn.Module):
    """logits = -(q / min_v q)^(-n) with q = d(x, w_v) + eps (module docstring); prototypes w (V, N)."""

    name = "negsim"

    def __init__(self, in_features: int, num_classes: int, distance: Distance, n: PositiveFloat = 1.0,
                 eps: PositiveFloat = 1e-4, min_normalise: bool = True) -> None:
        super().__init__()
        self.distance, self.n, self.eps, self.min_normalise = distance, n, eps, min_normalise
        distance.setup(in_features)
        self.weight = prototype_parameter(in_features, num_classes)

    @property
    def prototypes(self) -> Tensor:
        return self.weight

    def forward(self, x: Tensor) -> Tensor:
        q = self.distance(x, self.weight) + self.eps
        if self.min_normalise:
            q = q / q.min(dim=1, keepdim=True).values
        return -q.pow(-self.n)
