"""Embedding + MLP backbone for token-pair tasks such as modular addition (grokking)."""

from __future__ import annotations

from typing import Annotated

from annotated_types import MinLen
from torch import Tensor, nn

from lossbench import LossbenchError
from lossbench.models.mlp import mlp_layers
from lossbench.ranges import PositiveInt


class EmbeddingMLP(nn.Module):
    """Embed each input token (shared table), concatenate the embeddings, then an MLP."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        embed_dim: PositiveInt,
        widths: Annotated[list[PositiveInt], MinLen(1)],
        activation: str = "relu",
        vocab_size: int | None = None,
    ) -> None:
        super().__init__()
        if vocab_size is None or len(input_shape) != 1:
            raise LossbenchError("backbone embedding_mlp needs a token dataset (e.g. dataset=modadd)")
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.mlp = mlp_layers(input_shape[0] * embed_dim, list(widths), activation)
        self.out_features = widths[-1] if widths else input_shape[0] * embed_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(self.embed(x).flatten(1))  # (B, T) -> (B, T*E) -> (B, F)
