"""The toy models of "Harmonic Loss Trains Interpretable AI Models" (Baek et al. 2025; grow-crystals
`src/utils/model.py`): token embeddings of width `embed_dim` that are also the head's prototypes (weight tying),
so the learned geometry of the embedding table is what the crystal metrics and the PCA figures read.

- `ToyMLP`: the input tokens' embeddings, concatenated, through Linear(T*d, hidden) - SiLU - Linear(hidden, d):
  the paper's MLP [T*16, 100, 16, vocab]. Tied as the paper ties it: the embedding table *is* the head's weight
  (a linear head's W and bias, a distance head's prototypes), initialised by the head (nn.Linear's default).
  The paper's training loop also adds an embedding penalty for the MLPs, but computes it on the table's `.data`,
  so it has no gradient and no effect: the MLP has none here.
- `ToyTransformer`: embeddings N(0, 1/d) plus a learned position table N(0, 1), `n_layer` post-norm
  `nn.TransformerEncoderLayer`s (ReLU, feed-forward 4d, dropout 0.1) each with an extra residual
  (x = layer(x) + x, as the paper's code), features = the last position. Tied with the embedding's init; a tied
  linear head has no bias (`head_bias=false`: the paper's logits are h . E^T). Its `training_penalty` is the
  paper's embedding penalty, which for the transformers does have a gradient:
  lambda * mean_j sqrt(mean_i E_ij^2) over the (V, d) table E, lambda = `embed_penalty` (0.01; 0 = off).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lossbench import LossbenchError, SettingError
from lossbench.models.mlp import activation as make_activation
from lossbench.ranges import NonNegativeFloat, PositiveInt


def _token_input(name: str, input_shape: tuple[int, ...], vocab_size: int | None) -> int:
    """The sequence length of a token dataset; a clear error for anything else."""
    if vocab_size is None or len(input_shape) != 1:
        raise LossbenchError(f"backbone {name} needs a token dataset (e.g. dataset=modular_addition), "
                             f"got input shape {input_shape}")
    return input_shape[0]


def embedding_penalty(table: Tensor) -> Tensor:
    """mean over the d columns of the RMS over the V rows of a (V, d) table: the paper's embedding penalty
    (grow-crystals `customNNModule.train`) before its weight."""
    return table.pow(2).mean(dim=0).sqrt().mean()


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
    """Tied embeddings + learned positions -> `n_layer` encoder layers with an extra residual -> last position;
    the embedding penalty as a training term (module docstring)."""

    def __init__(self, input_shape: tuple[int, ...], embed_dim: PositiveInt = 16, n_head: PositiveInt = 2,
                 n_layer: PositiveInt = 2, dropout: float = 0.1, tie_embeddings: bool = True,
                 head_bias: bool = False, embed_penalty: NonNegativeFloat = 0.01,
                 vocab_size: int | None = None) -> None:
        super().__init__()
        tokens = _token_input("toy_transformer", input_shape, vocab_size)
        if embed_dim % n_head:
            raise LossbenchError(f"backbone.embed_dim={embed_dim} must be divisible by backbone.n_head={n_head}")
        if embed_penalty < 0:
            raise SettingError(f"backbone.embed_penalty must be >= 0, got {embed_penalty}")
        self.embed = nn.Embedding(vocab_size, embed_dim)  # type: ignore[arg-type]
        nn.init.normal_(self.embed.weight, std=1 / math.sqrt(embed_dim))
        self.position = nn.Parameter(torch.randn(tokens, embed_dim))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(embed_dim, n_head, dim_feedforward=4 * embed_dim, dropout=dropout,
                                       batch_first=True)
            for _ in range(n_layer))
        self.out_features, self.tie_embeddings = embed_dim, tie_embeddings
        self.head_bias, self.embed_penalty = head_bias, embed_penalty

    def tie(self, head: nn.Module) -> None:
        """The head's (V, d) weight becomes the embedding table, starting from the embedding's N(0, 1/d) init;
        a linear head loses its bias unless `head_bias` (the paper's CE transformer: logits = h . E^T)."""
        with torch.no_grad():
            head.prototypes.copy_(self.embed.weight)
        self.embed.weight = head.prototypes
        linear = getattr(head, "linear", None)
        if not self.head_bias and isinstance(linear, nn.Linear) and linear.bias is not None:
            linear.bias = None  # unregisters the parameter: nothing to train, nothing to decay

    def training_penalty(self) -> Tensor | float:
        """`embed_penalty` x the embedding penalty of the table: a term the training loop adds to the loss."""
        return self.embed_penalty * embedding_penalty(self.embed.weight) if self.embed_penalty else 0.0

    def forward(self, x: Tensor) -> Tensor:
        h = self.embed(x) + self.position
        for layer in self.layers:
            h = layer(h) + h
        return h[:, -1]
