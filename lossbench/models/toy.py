"""The toy models of "Harmonic Loss Trains Interpretable AI Models" (Baek et al. 2025; grow-crystals
`src/utils/model.py`): token embeddings of width `embed_dim` that are also the head's prototypes (weight tying),
so the learned geometry of the embedding table is what the crystal metrics and the PCA figures read.

- `ToyMLP`: the input tokens' embeddings, concatenated, through Linear(T*d, hidden) - SiLU - Linear(hidden, d):
  the paper's MLP [T*16, 100, 16, vocab]. Tied as the paper ties it: the embedding table *is* the head's weight
  (a linear head's W, a distance head's prototypes), initialised by the head (nn.Linear's default).
- `ToyTransformer`: embeddings N(0, 1/d) plus a learned position table N(0, 1), `n_layer` post-norm
  `nn.TransformerEncoderLayer`s (ReLU, feed-forward 4d, dropout 0.1) each with an extra residual
  (x = layer(x) + x, as the paper's code), features = the last position. Tied with the embedding's init.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lossbench import LossbenchError
from lossbench.models.mlp import activation as make_activation
from lossbench.ranges import PositiveInt


def _token_input(name: str, input_shape: tuple[int, ...], vocab_size: int | None) -> int:
    """The sequence length of a token dataset; a clear error for anything else."""
    if vocab_size is None or len(input_shape) != 1:
        raise LossbenchError(f"backbone {name} needs a token dataset (e.g. dataset=modular_addition), "
                             f"got input shape {input_shape}")
    return input_shape[0]


class ToyMLP(nn.Module):
    """Tied embeddings -> concatenation -> Linear-SiLU-Linear to `embed_dim` features (module docstring)."""

    def __init__(self, input_shape: tuple[int, ...], embed_dim: PositiveInt = 16, hidden: PositiveInt = 100,
                 activation: str = "silu", tie_embeddings: bool = True, vocab_size: int | None = None) -> None:
        super().__init__()
        tokens = _token_input("toy_mlp", input_shape, vocab_size)
        self.embed = nn.Embedding(vocab_size, embed_dim)  # type: ignore[arg-type]
        self.net = nn.Sequential(nn.Linear(tokens * embed_dim, hidden), make_activation(activation),
                                 nn.Linear(hidden, embed_dim))
        self.out_features, self.tie_embeddings = embed_dim, tie_embeddings

    def tie(self, head: nn.Module) -> None:
        """The embedding table becomes the head's (V, d) weight, keeping the head's initialisation."""
        self.embed.weight = head.prototypes

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.embed(x).flatten(1))


class ToyTransformer(nn.Module):
    """Tied embeddings + learned positions -> `n_layer` encoder layers with an extra residual -> last position."""

    def __init__(self, input_shape: tuple[int, ...], embed_dim: PositiveInt = 16, n_head: PositiveInt = 2,
                 n_layer: PositiveInt = 2, dropout: float = 0.1, tie_embeddings: bool = True,
                 vocab_size: int | None = None) -> None:
        super().__init__()
        tokens = _token_input("toy_transformer", input_shape, vocab_size)
        if embed_dim % n_head:
            raise LossbenchError(f"backbone.embed_dim={embed_dim} must be divisible by backbone.n_head={n_head}")
        self.embed = nn.Embedding(vocab_size, embed_dim)  # type: ignore[arg-type]
        nn.init.normal_(self.embed.weight, std=1 / math.sqrt(embed_dim))
        self.position = nn.Parameter(torch.randn(tokens, embed_dim))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(embed_dim, n_head, dim_feedforward=4 * embed_dim, dropout=dropout,
                                       batch_first=True)
            for _ in range(n_layer))
        self.out_features, self.tie_embeddings = embed_dim, tie_embeddings

    def tie(self, head: nn.Module) -> None:
        """The head's (V, d) weight becomes the embedding table, starting from the embedding's N(0, 1/d) init."""
        with torch.no_grad():
            head.prototypes.copy_(self.embed.weight)
        self.embed.weight = head.prototypes

    def forward(self, x: Tensor) -> Tensor:
        h = self.embed(x) + self.position
        for layer in self.layers:
            h = layer(h) + h
        return h[:, -1]
