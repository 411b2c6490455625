"""Multi-layer perceptron backbone on flattened real-valued inputs."""

from __future__ import annotations

import math
from typing import Annotated

from annotated_types import Interval, MinLen
from torch import Tensor, nn

from lossbench import LossbenchError
from lossbench.ranges import PositiveInt

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


def activation(name: str) -> nn.Module:
    """The activation module called `name` (one of ACTIVATIONS)."""
    if name not in ACTIVATIONS:
        raise LossbenchError(f"unknown activation '{name}'; choose one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def mlp_layers(in_features: int, widths: list[int], act: str, dropout: float = 0.0) -> nn.Sequential:
    """Linear -> activation (-> dropout) for each width."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_features, width), activation(act)]
        layers += [nn.Dropout(dropout)] if dropout > 0 else []
        in_features = width
    return nn.Sequential(*layers)


def require_real_inputs(backbone: str, vocab_size: int | None) -> None:
    """Token datasets need an embedding backbone; say so instead of training on raw ids."""
    if vocab_size is not None:
        raise LossbenchError(f"backbone {backbone} takes real-valued inputs; token datasets need backbone=embedding_mlp")


class MLP(nn.Module):
    """Flatten, then `widths` hidden layers; features are the last hidden layer's output."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        widths: Annotated[list[PositiveInt], MinLen(1)],
        activation: str = "relu",
        dropout: Annotated[float, Interval(ge=0, lt=1)] = 0.0,
        vocab_size: int | None = None,
    ) -> None:
        super().__init__()
        require_real_inputs("mlp", vocab_size)
        if not widths:
            raise LossbenchError("backbone.widths must list at least one hidden width")
        self.net = nn.Sequential(nn.Flatten(), mlp_layers(math.prod(input_shape), list(widths), activation, dropout))
        self.out_features = widths[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Pixels(nn.Module):
    """No hidden layer: the flattened input is the feature vector, so the head's prototypes live in input
    space and can be looked at as images (the harmonic-loss paper's single-layer MNIST model, Fig. 5)."""

    def __init__(self, input_shape: tuple[int, ...], vocab_size: int | None = None) -> None:
        super().__init__()
        require_real_inputs("pixels", vocab_size)
        self.flatten, self.out_features = nn.Flatten(), math.prod(input_shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.flatten(x)
