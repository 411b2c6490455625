"""Language modelling: next-token prediction over a token stream with the same linear or distance heads."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from lossbench.data.base import Splits
from lossbench.metrics import accuracy
from lossbench.probes import COLUMNS as PROBES
from lossbench.probes import effective_rank, explained_variance
from lossbench.schema import column
from lossbench.tasks.base import ReportView, Task
from lossbench.tasks.classification import ACC, NLL, argmax_scores

PPL = column("ppl", "float", "perplexity exp(nll)", label="PPL", per_split=True, block="Performance",
             higher_is_better=False, fmt=".2f")
PER_TOKEN = {c.name: c for c in [  # written by `extras`
    column("train_tokens", "int", "training tokens seen"),
    column("tokens_per_s", "float", "training tokens per second", label="Tokens / s", block="Sustainability",
           higher_is_better=True, fmt=".0f"),
    column("energy_per_mtok_kwh", "float", "energy per million training tokens", unit="kWh",
           label="Energy / Mtok", block="Sustainability", higher_is_better=False, fmt=".3g", energy_derived=True),
    column("emissions_per_mtok_kg", "float", "emissions per million training tokens", unit="kg CO2eq",
           energy_derived=True),
]}


class LanguageModeling(Task):
    """Next-token prediction: a (batch, T) window predicts (batch, T) targets, flattened to batch * T
    rows. Token accuracy and perplexity = exp(mean token NLL) of the model's own distribution
    softmax(logits) (for a harmonic head the true HarMax NLL: no floor, no clamp, whatever criterion
    trained it); the checkpoint with the lowest validation NLL is kept (`trainer.checkpoint=best_val`).
    Probes: effective rank and PC5 explained variance of the final hidden states of `samples`
    test tokens and of the head's prototypes.

    The default exponent of distance heads in this task is sqrt(n_embd) (`harmonic_n` in
    conf/task/lm.yaml): on text_builtin (300 steps, 4 x 128 GPT) it took cosine heads from test
    perplexity 9.5 at n = 2 to CE's 8.2, and Euclidean heads from 61 to 17.
    """

    name = "lm"
    data_kind = "tokens"
    score_columns = (ACC, NLL, PPL)
    train_score = ACC
    selection, selection_higher_is_better = "nll", False
    selection_derived = ("ppl",)  # exp(NLL)
    columns = (*(PROBES[n] for n in ("effective_rank", "pc5_ev", "proto_effective_rank", "proto_pc5_ev")),
               *PER_TOKEN.values())
    report = ReportView(
        metrics=("test_ppl", "val_ppl", "train_ppl", "grad_norm_cv", "grad_spikes", "grad_clip_rate", "effective_rank",
                 "pc5_ev", "proto_effective_rank", "proto_pc5_ev", "energy_kwh", "emissions_kg", "flops", "tokens_per_s",
                 "energy_per_mtok_kwh"),
        radar=("val_ppl", "train_ppl", "grad_norm_cv", "effective_rank", "pc5_ev", "emissions_kg"),
        headline="val_ppl",
        curve_x="step",
    )

    def batch(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """(batch, T) windows in, (batch * T,) next tokens out (the head's rows are flattened the same way)."""
        return x, y.reshape(-1)

    def train_score_sum(self, output: Tensor, target: Tensor) -> Tensor:
        return output.detach().argmax(1).eq(target).sum()

    def evaluate(self, outputs: Iterable[tuple[Tensor, Tensor]], num_classes: int) -> dict[str, float]:
        pred, target, nll = argmax_scores(outputs)
        return {"acc": accuracy(pred, target), "nll": nll, "ppl": float(torch.tensor(nll, dtype=torch.float64).exp())}

    @torch.no_grad()
    def probe(self, model: nn.Module, splits: Splits, samples: int, batch_size: int) -> dict[str, Any]:
        model.eval()
        x = splits.x_test
        windows = -(-samples // x.shape[1])
        features = torch.cat([model.features(xb) for xb in x[:windows].split(max(1, batch_size // x.shape[1]))])
        states, prototypes = features[:samples].float().cpu(), model.head.prototypes.detach().float().cpu()
        columns = {"effective_rank": math.nan, "pc5_ev": math.nan, "proto_effective_rank": math.nan,
                   "proto_pc5_ev": math.nan}
        if len(states) >= 3 and torch.isfinite(states).all():
            columns.update(effective_rank=effective_rank(states), pc5_ev=float(explained_variance(states)[:5].sum()))
        if torch.isfinite(prototypes).all():
            columns.update(proto_effective_rank=effective_rank(prototypes),
                           proto_pc5_ev=float(explained_variance(prototypes)[:5].sum()))
        return columns

    def extras(self, columns: dict[str, Any]) -> dict[str, Any]:
        """Throughput and energy / emissions per million training tokens."""
        mtok = columns["samples_seen"] / 1e6
        energy, emissions = columns.get("energy_kwh"), columns.get("emissions_kg")
        return {
            "train_tokens": columns["samples_seen"],
            "tokens_per_s": columns["samples_per_s"],
            "energy_per_mtok_kwh": energy / mtok if energy is not None and mtok > 0 else None,
            "emissions_per_mtok_kg": emissions / mtok if emissions is not None and mtok > 0 else None,
        }
