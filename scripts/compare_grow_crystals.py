"""Side by side: the harmonic-loss paper's own code (a checkout of KindXiaoming/grow-crystals) and lossbench's
`experiment=harmonic_toy(_small)` on the same datasets, models, heads and seeds; prints one table per code.

The paper-era training path is `src/utils/driver.py train_single_model` with `src/run_exp.py`'s settings (1000
examples, 80 / 20 split, embedding width 16, n = 1, AdamW lr 0.002, weight decay 0.01 for the MLPs and 0.005 for
the transformers, batch 32). `run_exp.py` itself no longer runs the harmonic models: it passes
`'custom_loss': "softnn"`, which names no loss of `compute_loss` (that spells it `soft_nn`), so its loss is None;
this script calls `train_single_model` without that key. The driver forces 10 000 epochs on the permutation
transformers whatever it is asked; with a constant learning rate the first E epochs of that run are an E-epoch
run, so the script caps the training loop at `--epochs`. The original imports adjustText (for its plots) and
h5py (unused) at import time: where they are not installed, stubs stand in for them. Its runs are cached as JSON
under `--out` (a run is trained once).

Both tables measure both codes' curves alike: grokking / fit epoch = the first of 20 consecutive epochs with test /
train accuracy > 0.9 (the paper's `find_consecutive_elements`), counted from 1 (the paper's index + 1); EV = the
top-2 explained variance of the embedding rows the paper's figures plot; crystal = each code's own metric.

`--lockstep STEPS` checks the implementations instead: both codes' models start from the same weights and take the
same AdamW minibatches in float64 with dropout off, each with its own loss and embedding penalty; the table gives
the largest difference of the data loss and of the embedding table (rounding-level when the two compute the same).

    python scripts/compare_grow_crystals.py /tmp/grow-crystals --datasets modular_addition,permutation \\
        --models mlp,transformer --seeds 0,1,2 --results results/compare --out results/compare/grow_crystals
    python scripts/compare_grow_crystals.py /tmp/grow-crystals --lockstep 300
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import os
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("compare_grow_crystals")

DATA_ID = {"modular_addition": "circle", "equivalence": "equivalence", "permutation": "permutation",
           "family_tree": "family_tree", "lattice": "lattice", "greater_than": "greater"}
AUX = {"circle": {"p": 31}, "equivalence": {"mod": 5}, "permutation": {"p": 4}, "lattice": {"lattice_size": 5},
       "greater": {"p": 30}, "family_tree": {}}  # run_exp.py's aux_info (family_tree adds the dataset's levels)
MODEL_ID = {("mlp", "ce"): "standard_MLP", ("mlp", "harmonic"): "H_MLP",
            ("transformer", "ce"): "standard_transformer", ("transformer", "harmonic"): "H_transformer"}
BACKBONE = {"mlp": "toy_mlp", "transformer": "toy_transformer"}


def grow_crystals(checkout: Path, epoch_cap: int) -> types.SimpleNamespace:
    """Import the checkout's driver and crystal metric, its training loop capped at `epoch_cap` epochs."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    for name in ("adjustText", "h5py"):  # imported, not used on the training path
        if importlib.util.find_spec(name) is None:
            stub = types.ModuleType(name)
            stub.adjust_text = lambda *args, **kwargs: None  # type: ignore[attr-defined]
            sys.modules[name] = stub
    sys.path.insert(0, str(checkout.resolve()))
    model = importlib.import_module("src.utils.model")
    train = model.customNNModule.train

    def capped(self: Any, param_dict: dict) -> dict:
        return train(self, {**param_dict, "num_epochs": min(param_dict["num_epochs"], epoch_cap)})

    model.customNNModule.train = capped
    return types.SimpleNamespace(driver=importlib.import_module("src.utils.driver"), model=model,
                                 crystal=importlib.import_module("src.utils.crystal_metric"))


def lockstep(code: types.SimpleNamespace, dataset: str, model: str, loss: str, steps: int) -> tuple[float, float]:
    """Both codes' model from the same weights through the same `steps` AdamW minibatches in float64, dropout off,
    each with its own loss and embedding penalty (lossbench's harmonic transformer untied, as the paper's):
    (largest |difference| of the data loss, largest |difference| of the embedding table) over the steps."""
    import torch

    from lossbench.config import compose_run
    from lossbench.run import build, build_criterion, build_model

    extra = ["backbone.dropout=0", "backbone.tie_embeddings=false"] if (model, loss) == ("transformer", "harmonic") \
        else (["backbone.dropout=0"] if model == "transformer" else [])
    cfg, _ = compose_run(["experiment=harmonic_toy", f"dataset={dataset}", f"backbone={BACKBONE[model]}",
                          f"loss={loss}", *extra])
    splits = build(cfg, "dataset").load()
    ours, vocab, tokens = build_model(cfg, splits).double(), splits.vocab_size, splits.x_train.shape[1]
    gc = code.model
    if model == "mlp":
        shape = [tokens * 16, 100, 16, vocab]
        theirs = (gc.MLP_HS(shape, vocab, 16, tokens, weight_tied=True, n=1.0) if loss == "harmonic" else
                  gc.MLP(shape, vocab, 16, tokens, unembd=True, weight_tied=True)).double()
        pairs = [(ours.backbone.net[0], theirs.linears[0]), (ours.backbone.net[2], theirs.linears[1])]
        table = theirs.linears[2].weight
        head = [(ours.head.linear.bias, theirs.linears[2].bias)] if loss == "ce" else []
    else:
        theirs = gc.ToyTransformer(vocab, 16, 2, 2, seq_len=tokens, use_dist_layer=loss == "harmonic", n_dist=1.0,
                                   loss_type="harmonic" if loss == "harmonic" else "cross_entropy").double()
        for layer in theirs.layers:  # dropout off: the attention's is a float, the others modules
            layer.self_attn.dropout, layer.dropout.p, layer.dropout1.p, layer.dropout2.p = 0.0, 0.0, 0.0, 0.0
        pairs = list(zip(ours.backbone.layers, theirs.layers))
        table = theirs.embedding.weight
        head = [(ours.backbone.position, theirs.positional_encoding)]
        head += [(ours.head.prototypes, theirs.dist.weight)] if loss == "harmonic" else []
    with torch.no_grad():
        for mine, other in pairs:
            mine.load_state_dict(other.state_dict())
        for mine, other in [(ours.backbone.embed.weight, table), *head]:
            mine.copy_(other)
    decay = float(cfg.optim.optimizer.weight_decay)
    optimisers = [torch.optim.AdamW(m.parameters(), lr=0.002, weight_decay=decay) for m in (ours, theirs)]
    criterion, batches = build_criterion(cfg), torch.Generator().manual_seed(0)
    penalties = [m.training_penalty for m in ours.modules() if hasattr(m, "training_penalty")]
    worst = (0.0, 0.0)
    for _ in range(steps):
        index = torch.randint(0, len(splits.y_train), (32,), generator=batches)
        x, y = splits.x_train[index], splits.y_train[index]
        for optimiser in optimisers:
            optimiser.zero_grad()
        mine, other = criterion(ours(x), y), theirs.compute_loss(theirs(x), y[:, None])
        emb = theirs.embedding.weight if hasattr(theirs.embedding, "weight") else theirs.embedding.data
        (mine + sum(p() for p in penalties)).backward()
        (other + 0.01 * emb.pow(2).mean(0).sqrt().mean()).backward()  # as its train(): .data has no gradient
        for optimiser in optimisers:
            optimiser.step()
        theirs_table = table if model == "mlp" else theirs.embedding.weight
        gap = float((ours.backbone.embed.weight - theirs_table).detach().abs().max())
        worst = (max(worst[0], abs(float(mine.detach() - other.detach()))), max(worst[1], gap))
    return worst


def first_above(values: list[float], threshold: float = 0.9, window: int = 20) -> int | None:
    """1-based epoch of the first `window` consecutive values above `threshold` (the paper's index + 1)."""
    from lossbench.tasks.algorithmic import first_sustained

    index = first_sustained(values, threshold, window)
    return None if index is None else index + 1


def figure_ev(table: np.ndarray, dataset: str) -> float:
    """Top-2 explained variance of the rows the paper's figures plot (lossbench's `figure_tokens`)."""
    from lossbench.config import compose_run
    from lossbench.data.crystal import explained_variance_ratio
    from lossbench.run import build

    cfg, _ = compose_run(["task=algorithmic", f"dataset={dataset}"])
    return float(explained_variance_ratio(table[build(cfg, "dataset").figure_tokens])[:2].sum())


def original_run(code: types.SimpleNamespace, dataset: str, model: str, loss: str, seed: int, epochs: int,
                 cache: Path) -> dict[str, Any]:
    """One run of the original code (cached): curves, final accuracies, embedding EV and its crystal metric."""
    data_id, model_id = DATA_ID[dataset], MODEL_ID[(model, loss)]
    path = cache / f"{data_id}_{model_id}_{seed}_{epochs}.json"
    if path.exists():
        return json.loads(path.read_text())
    import torch

    torch.set_num_threads(1)
    log.info("grow-crystals: %s %s seed %d, %d epochs", data_id, model_id, seed, epochs)
    out = code.driver.train_single_model({
        "seed": seed, "data_id": data_id, "data_size": 1000, "train_ratio": 0.8, "model_id": model_id,
        "device": torch.device("cpu"), "embd_dim": 16, "n_exp": 1, "lr": 0.002,
        "weight_decay": 0.01 if model == "mlp" else 0.005, "num_epochs": epochs})
    curves = out["results"]
    emb = out["model"].embedding
    table = (emb.weight if hasattr(emb, "weight") else emb).detach().double().cpu().numpy()
    aux = dict(AUX[data_id], **({"dict_level": out["dataset"]["dict_level"]} if data_id == "family_tree" else {}))
    row = {"train_acc": curves["train_accuracies"], "test_acc": curves["test_accuracies"],
           "crystal_metric": float(code.crystal.crystal_metric(table, data_id, aux)["metric"]),
           "embedding_pc2_ev": figure_ev(table, dataset), "n_test": len(out["dataset"]["test_label"])}
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row))
    return row


def lossbench_run(experiment: str, dataset: str, model: str, loss: str, seed: int, epochs: int, results: Path,
                  extra: list[str]) -> dict[str, Any]:
    """One lossbench run (skipped when its row exists): its history's accuracies and its row's columns."""
    import pandas as pd

    from lossbench import store
    from lossbench.config import compose_run
    from lossbench.run import execute

    cfg, choices = compose_run([f"experiment={experiment}", f"dataset={dataset}", f"backbone={BACKBONE[model]}",
                                f"loss={loss}", f"seed={seed}", f"trainer.epochs={epochs}", "tracker=off",
                                "trainer.progress=false", f"results_dir={results}", *extra])
    rid = execute(cfg, choices).summary["run_id"]
    row = store.read_run(results, rid) or {}
    if row.get("status") != "completed":
        raise SystemExit(f"lossbench run {rid} ended {row.get('status')}: {row.get('error')}")
    history = pd.read_parquet(results / store.HISTORY / f"{rid}.parquet").sort_values("epoch")
    return {"train_acc": history.train_acc.tolist(), "test_acc": history.test_acc.tolist(),
            "crystal_metric": row["crystal_metric"], "embedding_pc2_ev": row["embedding_pc2_ev"],
            "n_test": row["n_test"]}


def table(title: str, runs: dict[tuple[str, str, str], list[dict[str, Any]]]) -> str:
    """A markdown table: per dataset x model x head, grokked runs, mean grokking / fit epoch, final accuracies,
    EV and crystal metric (means over seeds)."""
    header = ("| dataset | model | head | grokked | grokking epoch | fit epoch (0.9) | final train acc | final test acc "
              "| EV | crystal | test n |")
    lines = [f"### {title}", "", header, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (dataset, model, loss), rows in runs.items():
        groks = [g for g in (first_above(r["test_acc"]) for r in rows) if g is not None]
        fits = [f for f in (first_above(r["train_acc"]) for r in rows) if f is not None]

        def mean(values: list[float], fmt: str) -> str:
            return format(float(np.mean(values)), fmt) if values else "–"

        lines.append(f"| {dataset} | {model} | {loss} | {len(groks)}/{len(rows)} | {mean(groks, '.0f')} | "
                     f"{mean(fits, '.0f')} ({len(fits)}/{len(rows)}) | {mean([r['train_acc'][-1] for r in rows], '.3f')} | "
                     f"{mean([r['test_acc'][-1] for r in rows], '.3f')} | {mean([r['embedding_pc2_ev'] for r in rows], '.2f')} | "
                     f"{mean([r['crystal_metric'] for r in rows], '.3g')} | {rows[0]['n_test']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a checkout of KindXiaoming/grow-crystals")
    parser.add_argument("--datasets", default="modular_addition,permutation")
    parser.add_argument("--models", default="mlp,transformer")
    parser.add_argument("--losses", default="ce,harmonic")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--experiment", default="harmonic_toy_small")
    parser.add_argument("--results", type=Path, default=Path("results/compare"), help="lossbench's results")
    parser.add_argument("--out", type=Path, default=None, help="the original's cached runs (default RESULTS/grow_crystals)")
    parser.add_argument("--only", choices=["grow-crystals", "lossbench"], default=None, help="run one code only")
    parser.add_argument("--override", action="append", default=[], help="an extra lossbench override (repeatable)")
    parser.add_argument("--lockstep", type=int, default=0, metavar="STEPS",
                        help="instead: train both codes' models from the same weights on the same batches")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if not (args.checkout / "src" / "utils" / "driver.py").exists():
        log.error("%s is not a grow-crystals checkout (no src/utils/driver.py)", args.checkout)
        return 2
    cells = [(d, m, loss) for d in args.datasets.split(",") for m in args.models.split(",")
             for loss in args.losses.split(",")]
    if args.lockstep:
        import torch

        torch.set_default_dtype(torch.float64)
        code = grow_crystals(args.checkout, args.epochs)
        lines = [f"### Same weights, same {args.lockstep} AdamW minibatches, float64, dropout off", "",
                 "| dataset | model | head | largest data-loss difference | largest embedding difference |",
                 "|---|---|---|---|---|"]
        for cell in cells:
            gap = lockstep(code, *cell, args.lockstep)
            lines.append(f"| {' | '.join(cell)} | {gap[0]:.1e} | {gap[1]:.1e} |")
        log.info("\n%s\n", "\n".join(lines))
        return 0
    seeds = [int(s) for s in args.seeds.split(",")]
    cache = args.out or args.results / "grow_crystals"
    tables = []
    if args.only != "lossbench":
        code = grow_crystals(args.checkout, args.epochs)
        runs = {c: [original_run(code, *c, s, args.epochs, cache) for s in seeds] for c in cells}
        tables.append(table(f"grow-crystals (train_single_model), seeds {args.seeds}, {args.epochs} epochs", runs))
    if args.only != "grow-crystals":
        runs = {c: [lossbench_run(args.experiment, *c, s, args.epochs, args.results, args.override) for s in seeds]
                for c in cells}
        extra = f", {' '.join(args.override)}" if args.override else ""
        tables.append(table(f"lossbench experiment={args.experiment}{extra}, seeds {args.seeds}, {args.epochs} epochs",
                            runs))
    for text in tables:
        log.info("\n%s\n", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
