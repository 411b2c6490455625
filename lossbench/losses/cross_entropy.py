"""Cross-entropy / negative log-likelihood: mean over the batch of logsumexp(z) - z_y.

On HarMax logits -n log(d + eps) this is the harmonic loss n log d_y + log sum_j d_j^-n.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from lossbench.losses.base import Criterion


class CrossEntropy(Criterion):
    """Softmax cross-entropy on logits (torch's fused log-softmax + NLL)."""

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        return F.cross_entropy(logits.float(), target)
