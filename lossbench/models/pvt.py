"""PVT-v2 (Wang et al. 2022, "PVT v2: Improved Baselines with Pyramid Vision Transformer") from timm, as a
feature extractor: the Rethinking reference code's fourth backbone (`timm.create_model("pvt_v2_b0",
pretrained=False, num_classes=0, in_chans=3)`, 256-d pooled features fed to the head).

timm is an optional extra (`pip install 'lossbench[vision]'`). PVT-v2 takes any image size (overlapping
patch embeddings, no fixed position table); timm's model has no `img_size` argument (the reference code
tries one and falls back). Inputs are adapted as the reference adapts MNIST for PVT: resized to
`img_size` (bilinear) and greyscale repeated to `in_chans` channels.
"""

from __future__ import annotations

import importlib

from torch import Tensor, nn

from lossbench import LossbenchError
from lossbench.models.mlp import require_real_inputs
from lossbench.ranges import PositiveInt


class PVT(nn.Module):
    """timm's `variant` (default pvt_v2_b0), randomly initialised, without its classifier."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        variant: str = "pvt_v2_b0",
        img_size: PositiveInt = 32,
        in_chans: PositiveInt = 3,
        vocab_size: int | None = None,
    ) -> None:
        super().__init__()
        require_real_inputs("pvt", vocab_size)
        if len(input_shape) != 3:
            raise LossbenchError(f"backbone pvt needs images (C, H, W), got input shape {input_shape}")
        if input_shape[0] not in (1, in_chans):
            raise LossbenchError(f"backbone pvt takes 1 or {in_chans} input channels, got input shape {input_shape}")
        try:
            timm = importlib.import_module("timm")
        except ImportError:
            raise LossbenchError("backbone pvt needs timm: pip install 'lossbench[vision]'") from None
        if variant not in timm.list_models("pvt_v2*"):
            raise LossbenchError(f"backbone.variant={variant}: choose one of {', '.join(timm.list_models('pvt_v2*'))}")
        self.net = timm.create_model(variant, pretrained=False, num_classes=0, in_chans=in_chans)
        self.out_features = self.net.num_features
        self.img_size, self.in_chans = img_size, in_chans

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.img_size, self.img_size):
            x = nn.functional.interpolate(x, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)
        if x.shape[1] != self.in_chans:
            x = x.expand(-1, self.in_chans, -1, -1)
        return self.net(x)
