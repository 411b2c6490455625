"""A decoder-only GPT backbone (Radford et al. 2019; the shape of Karpathy's nanoGPT).

Token + learned position embeddings, `n_layer` pre-norm blocks of causal self-attention
(`scaled_dot_product_attention`, which picks a flash / memory-efficient kernel where it can) and a
GELU MLP, then a final LayerNorm. It returns one feature vector per token, flattened to
(batch * T, n_embd), so the same linear or distance head as for classification scores the
vocabulary, and the loss sees (batch * T) targets.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from annotated_types import Interval
from torch import Tensor, nn
from torch.nn import functional as F

from lossbench import SettingError
from lossbench.ranges import PositiveInt


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.n_head, self.dropout = n_head, dropout

    def forward(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_head, c // self.n_head).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    """x + attn(ln(x)), then x + mlp(ln(x)) (pre-norm, GPT-2)."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(n_embd, bias=bias), nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd, bias=bias), nn.GELU(),
                                 nn.Linear(4 * n_embd, n_embd, bias=bias), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Token ids (batch, T) -> final hidden states (batch * T, n_embd).

    `block_size` is the longest context (the dataset's window length must not exceed it).
    `tie_embeddings` shares the token embedding with the head's (V, n_embd) weights or prototypes
    (GPT-2 ties them; off by default so every head, linear or distance, has its own).
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        vocab_size: int | None,
        n_layer: PositiveInt = 4,
        n_head: PositiveInt = 4,
        n_embd: PositiveInt = 128,
        block_size: PositiveInt = 128,
        dropout: Annotated[float, Interval(ge=0, lt=1)] = 0.0,
        bias: bool = False,
        tie_embeddings: bool = False,
    ) -> None:
        super().__init__()
        if vocab_size is None or len(input_shape) != 1:
            raise SettingError("backbone=gpt needs a token-stream dataset (task=lm: text_builtin, text_file, openwebtext)")
        if min(n_layer, n_head, n_embd, block_size) < 1 or n_embd % n_head:
            raise SettingError(f"gpt needs positive sizes and n_embd divisible by n_head, got n_embd={n_embd}, n_head={n_head}")
        if input_shape[0] > block_size:
            raise SettingError(f"dataset windows of {input_shape[0]} tokens exceed backbone.block_size={block_size}")
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout, bias) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)
        self.out_features, self.tie_embeddings = n_embd, tie_embeddings
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by 1/sqrt(2 n_layer)
            if name.endswith(("attn.proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def tie(self, head: nn.Module) -> None:
        """Share the token embedding with the head's (V, n_embd) weights (a linear head's W or a
        distance head's prototypes)."""
        self.wte.weight = head.prototypes

    def forward(self, idx: Tensor) -> Tensor:
        b, t = idx.shape
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(t, device=idx.device)))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x).reshape(b * t, -1)
