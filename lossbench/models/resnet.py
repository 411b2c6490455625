"""torchvision ResNet-18/50 (He et al. 2016) as a feature extractor (classifier removed).

For small images (<= 64 px) the stem is the CIFAR one: a 3x3 stride-1 convolution and no max-pool.
"""

from __future__ import annotations

from typing import Literal

import torchvision
from torch import Tensor, nn

from lossbench import LossbenchError
from lossbench.models.mlp import require_real_inputs

_DEPTHS = {18: torchvision.models.resnet18, 34: torchvision.models.resnet34, 50: torchvision.models.resnet50}


class ResNet(nn.Module):
    """ResNet features (512 for depth 18, 2048 for depth 50); randomly initialised, no download."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        depth: Literal[18, 34, 50] = 18,
        cifar_stem: bool | Literal["auto"] = "auto",
        vocab_size: int | None = None,
    ) -> None:
        super().__init__()
        require_real_inputs(f"resnet{depth}", vocab_size)
        if depth not in _DEPTHS:
            raise LossbenchError(f"unknown ResNet depth {depth}; choose one of: {', '.join(map(str, _DEPTHS))}")
        if len(input_shape) != 3:
            raise LossbenchError(f"backbone resnet{depth} needs images (C, H, W), got input shape {input_shape}")
        net = _DEPTHS[depth](weights=None)
        small = input_shape[1] <= 64 if cifar_stem == "auto" else bool(cifar_stem)
        if small:
            net.conv1 = nn.Conv2d(input_shape[0], 64, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        elif input_shape[0] != 3:
            net.conv1 = nn.Conv2d(input_shape[0], 64, 7, stride=2, padding=3, bias=False)
        self.out_features = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
