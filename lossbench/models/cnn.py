"""Small convolutional backbone: conv-BN-ReLU-maxpool blocks, then global average pooling.

1-D signals of shape (L,) or (C, L) use Conv1d (the MNIST-1D paper's CNN); images (C, H, W) use Conv2d.
"""

from __future__ import annotations

import math
from typing import Annotated

from annotated_types import MinLen
from torch import Tensor, nn

from lossbench import LossbenchError
from lossbench.models.mlp import require_real_inputs
from lossbench.ranges import PositiveInt

_LAYERS = {1: (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AdaptiveAvgPool1d),
           2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d)}


class ConvNet(nn.Module):
    """One block per entry of `channels` (3x3 conv, BN, ReLU, 2x max-pool), global pool, linear to feature_dim.

    `batch_norm=false global_pool=false` is the Rethinking reference code's SimpleCNN (conv-ReLU-pool blocks
    with biased convolutions, flattened into the linear layer): `channels=[32, 64]` there.
    """

    def __init__(
        self, input_shape: tuple[int, ...], channels: Annotated[list[PositiveInt], MinLen(1)], feature_dim: PositiveInt = 128,
        batch_norm: bool = True, global_pool: bool = True, vocab_size: int | None = None
    ) -> None:
        super().__init__()
        require_real_inputs("cnn", vocab_size)
        self.unsqueeze = len(input_shape) == 1  # (L,) -> (1, L)
        shape = (1, *input_shape) if self.unsqueeze else tuple(input_shape)
        spatial = len(shape) - 1
        if spatial not in _LAYERS or min(shape[1:]) < 2 ** len(channels):
            raise LossbenchError(
                f"backbone cnn needs 1-D signals or images at least {2 ** len(channels)} wide, got input shape {input_shape}"
            )
        conv, norm, pool, gap = _LAYERS[spatial]
        layers: list[nn.Module] = []
        in_ch = shape[0]
        for ch in channels:
            layers += [conv(in_ch, ch, 3, padding=1, bias=not batch_norm), *([norm(ch)] if batch_norm else []),
                       nn.ReLU(), pool(2)]
            in_ch = ch
        flat = in_ch if global_pool else in_ch * math.prod(n // 2 ** len(channels) for n in shape[1:])
        layers += [gap(1)] if global_pool else []
        layers += [nn.Flatten(), nn.Linear(flat, feature_dim), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        self.out_features = feature_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.unsqueeze(1) if self.unsqueeze else x)
