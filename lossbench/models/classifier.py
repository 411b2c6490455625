"""A classifier is a backbone (features) followed by a head (logits)."""

from __future__ import annotations

from torch import Tensor, nn


class Classifier(nn.Module):
    """backbone: inputs -> features (M, N); head: features -> logits (M, V)."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def features(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))
