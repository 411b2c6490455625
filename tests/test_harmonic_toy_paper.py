"""The harmonic-loss toy experiments as the paper's code (KindXiaoming/grow-crystals) runs them: the transformers'
embedding penalty (value and gradient against a float64 transcription of its formula, and added by the training
loop) and bias-free tied CE head, the training driver's two-token equivalence task on hand-computed pairs, the
paper's split per seed, fit epochs at its 0.9 threshold, the embedding EV on the tokens its figures plot, and the
scripts that draw the figures, pair the heads by seed and compare with the paper's code."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lossbench.config import compose_run
from lossbench.data.algorithmic import Equivalence
from lossbench.data.crystal import explained_variance_ratio
from lossbench.run import build, build_model, execute
from lossbench.tasks.algorithmic import grokking

RNG = np.random.default_rng(1)


def _history(train, test):
    return [{"epoch": float(i + 1), "train_acc": a, "test_acc": b} for i, (a, b) in enumerate(zip(train, test))]


# --- data, splits and the paper's measures ----------------------------------------------------------------------


class _Draws:
    """A generator stand-in that 'draws' the given integers: the generator's labels on chosen inputs."""

    def __init__(self, rows: list[list[int]]) -> None:
        self.rows = np.array(rows)

    def integers(self, low: int, high: int, size: tuple[int, int]) -> np.ndarray:
        assert size == self.rows.shape and (low, high) == (0, 40)
        return self.rows


def test_equivalence_is_the_drivers_two_token_task_worked_out_by_hand():
    """grow-crystals' mod_equiv_dataset(p=40): label 40 when a - b is a multiple of 5, else 41."""
    pairs = [[3, 8], [0, 0], [1, 2], [39, 4], [7, 39], [12, 2], [5, 6]]
    # 3-8 = -5: same class; 0-0; 1-2 = -1; 39-4 = 35; 7-39 = -32; 12-2 = 10; 5-6 = -1
    expected = [40, 40, 41, 40, 41, 40, 41]
    x, y = Equivalence(num=len(pairs)).examples(_Draws(pairs))
    assert x.tolist() == pairs and y.tolist() == expected
    ds = Equivalence()
    assert ds.p == 40 and ds.vocab_size == 42 and ds.figure_tokens.tolist() == list(range(40))
    x, y = ds.examples(np.random.default_rng(0))
    assert x.shape == (1000, 2) and x.max() < 40 and set(y.tolist()) == {40, 41}
    assert ((x[:, 0] % 5 == x[:, 1] % 5) == (y == 40)).all()


@pytest.mark.parametrize("dataset,train,test", [("modular_addition", 800, 200), ("permutation", 460, 116),
                                                ("equivalence", 800, 200)])
def test_harmonic_toy_tests_on_the_papers_whole_held_out_fifth_without_a_validation_split(dataset, train, test):
    """split_dataset: int(N * 0.8) train (576 * 0.8 = 460.8 -> 460), the rest test; validation reads training data."""
    cfg, _ = compose_run(["experiment=harmonic_toy", f"dataset={dataset}", "seed=3"])
    assert cfg.dataset.split_seed == cfg.dataset.data_seed == 3
    splits = build(cfg, "dataset").load()
    assert splits.sizes() == {"n_train": train, "n_val": train, "n_test": test}
    assert torch.equal(splits.x_val, splits.x_train) and torch.equal(splits.y_val, splits.y_train)
    rows = lambda x: sorted(map(tuple, x.tolist()))
    everything = rows(torch.cat([splits.x_train, splits.x_test]))
    assert len(everything) == (576 if dataset == "permutation" else 1000)
    if dataset == "permutation":  # all 576 pairs, each once: train and test partition them
        assert everything == sorted(set(everything))


def test_different_seeds_split_differently_and_one_seed_the_same_way_twice():
    """The paper splits with the run's seed; permutation has the same 576 examples for every seed, so a different
    test set can only come from the split."""
    def test_set(seed: int) -> set[tuple[int, ...]]:
        cfg, _ = compose_run(["experiment=harmonic_toy", "dataset=permutation", f"seed={seed}"])
        return {tuple(r) for r in build(cfg, "dataset").load().x_test.tolist()}

    first, second, again = test_set(0), test_set(1), test_set(0)
    assert first == again and first != second and len(first) == len(second) == 116


def test_fit_epoch_is_the_papers_train_accuracy_above_0_9_and_fit_epoch_99_the_stricter_one():
    """Epochs from 1: the paper's find_consecutive_elements index + 1."""
    train = [0.3] * 30 + [0.92] * 50 + [0.995] * 100  # above 0.9 from epoch 31, above 0.99 from epoch 81
    test = [0.1] * 120 + [0.95] * 60  # groks at epoch 121
    assert grokking(_history(train, test)) == {"grokking_epoch": 121.0, "fit_epoch": 31.0, "grokking_delay": 90.0,
                                               "fit_epoch_99": 81.0}
    plateau = [0.3] * 5 + [0.9] * 40 + [0.95] * 25  # exactly 0.9 is not above it: fits at 46; never above 0.99
    assert grokking(_history(plateau, [0.0] * 70)) == {"grokking_epoch": None, "fit_epoch": 46.0,
                                                       "grokking_delay": None, "fit_epoch_99": None}
    short = [0.95] * 19 + [0.5] + [0.95] * 20  # 19 in a row do not count: fits at 21
    assert grokking(_history(short, [1.0] * 40))["fit_epoch"] == 21.0


def test_the_embedding_ev_reads_the_tokens_the_papers_figures_plot():
    """Equivalence: the 40 numbers (emb[:40]); the two label tokens, far off the numbers' plane, do not count."""
    from lossbench.tasks.algorithmic import AlgorithmicClassification

    cfg, _ = compose_run(["experiment=harmonic_toy", "dataset=equivalence", "backbone=toy_mlp", "loss=ce"])
    splits = build(cfg, "dataset").load()
    model = build_model(cfg, splits)
    plane = np.linalg.qr(RNG.normal(size=(16, 16)))[0]
    table = np.vstack([RNG.normal(size=(40, 2)) @ plane[:2], 50 * plane[2:4]])
    with torch.no_grad():
        model.backbone.embed.weight.copy_(torch.as_tensor(table, dtype=torch.float32))
    columns = AlgorithmicClassification().probe(model, splits, 200, 256)
    assert columns["embedding_pc2_ev"] == pytest.approx(1.0, abs=1e-6)
    assert explained_variance_ratio(table)[:2].sum() < 0.99  # the whole table would say otherwise


# --- the transformers as the paper trains them: embedding penalty and bias-free tied head ----------------------


def _paper_penalty(table: np.ndarray, weight: float = 0.01) -> tuple[float, np.ndarray]:
    """grow-crystals `customNNModule.train`: weight * mean(sqrt(mean(E ** 2, dim=0))), in float64; its gradient
    worked out by hand: weight / d * E_ij / (V * rms_j), rms_j = sqrt(mean_i E_ij ** 2)."""
    vocab, dims = table.shape
    rms = np.sqrt((table**2).mean(axis=0))
    return weight * rms.mean(), weight / dims * table / (vocab * rms)


def _toy_transformer(*overrides: str):
    cfg, _ = compose_run(["task=algorithmic", "dataset=lattice", "backbone=toy_transformer", *overrides])
    splits = build(cfg, "dataset").load()
    return cfg, splits, build_model(cfg, splits)


@pytest.mark.parametrize("loss", [["loss=ce"], ["loss=harmonic", "distance=sqeuclidean"]])
def test_the_transformers_embedding_penalty_and_its_gradient_are_the_papers(loss):
    _, _, model = _toy_transformer(*loss)
    table = model.backbone.embed.weight
    value = model.backbone.training_penalty()
    value.backward()
    expected, grad = _paper_penalty(table.detach().double().numpy())
    assert float(value.detach()) == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(table.grad.double().numpy(), grad, rtol=1e-5, atol=1e-12)
    assert table.grad.abs().sum() > 0  # tied or not, the transformer's penalty trains the table


def test_the_penalty_is_off_at_weight_0_and_the_mlp_has_none():
    _, _, model = _toy_transformer("loss=ce", "backbone.embed_penalty=0")
    assert model.backbone.training_penalty() == 0.0
    cfg, _ = compose_run(["task=algorithmic", "dataset=lattice", "backbone=toy_mlp", "loss=ce"])
    mlp = build_model(cfg, build(cfg, "dataset").load())
    assert not any(hasattr(m, "training_penalty") for m in mlp.modules())  # the paper's MLP penalty has no gradient


def test_the_ce_transformers_tied_head_has_no_bias_unless_asked():
    _, splits, model = _toy_transformer("loss=ce")
    assert model.head.linear.bias is None and model.head.linear.weight is model.backbone.embed.weight
    assert all(p.shape != (25,) for p in model.parameters())  # no (V,) bias among the parameters
    model.eval()
    x = splits.x_train[:8]
    expected = model.backbone(x) @ model.backbone.embed.weight.T  # the paper's einsum('bh,vh->bv', h, E)
    torch.testing.assert_close(model(x), expected)
    _, _, with_bias = _toy_transformer("loss=ce", "backbone.head_bias=true")
    assert with_bias.head.linear.bias is not None and with_bias.head.linear.bias.shape == (25,)


def test_the_training_loop_adds_the_penalty_to_the_gradient():
    """One full-batch SGD step (lr 1) with and without the penalty, from the same weights and dropout draws: the
    tables differ by exactly the penalty's gradient at the starting weights."""
    from lossbench.engine import Trainer
    from lossbench.run import build_criterion
    from lossbench.tasks.algorithmic import AlgorithmicClassification

    tables = []
    for weight in (0.0, 5.0):
        cfg, splits, model = _toy_transformer("loss=ce", f"backbone.embed_penalty={weight}")
        start = model.backbone.embed.weight.detach().double().numpy().copy()
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        trainer = Trainer(epochs=1, batch_size="full", checkpoint="last", progress=False)
        torch.manual_seed(1)
        trainer.fit(model, build_criterion(cfg), optimizer, scheduler, splits, torch.Generator().manual_seed(0),
                    AlgorithmicClassification())
        tables.append(model.backbone.embed.weight.detach().double().numpy())
    _, grad = _paper_penalty(start, 5.0)
    np.testing.assert_allclose(tables[0] - tables[1], grad, rtol=1e-3, atol=1e-6)


# --- the scripts: figures, the verdict table, the side-by-side comparison ----------------------------------------


def test_toy_figures_draw_embeddings_and_prototypes_from_saved_runs(compose, tmp_path):
    results = tmp_path / "results"
    for overrides in (["experiment=harmonic_toy", "dataset=lattice", "backbone=toy_mlp", "loss=harmonic"],
                      ["experiment=harmonic_toy", "dataset=lattice", "backbone=toy_mlp", "loss=ce"],
                      ["experiment=mnist_prototypes", "loss=harmonic"]):
        cfg, choices = compose(*overrides, "trainer.epochs=2", "seed=0")
        assert execute(cfg, choices).summary["status"] == "completed"
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "scripts" / "toy_figures.py"
    proc = subprocess.run([sys.executable, str(script), str(results), "--out", str(tmp_path / "fig")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    for name in ("embeddings_seed0.png", "prototypes.png"):
        assert (tmp_path / "fig" / name).stat().st_size > 10_000
    assert "| lattice | mlp | " in (tmp_path / "fig" / "verdict.md").read_text()
    empty = subprocess.run([sys.executable, str(script), str(tmp_path / "none"), "--out", str(tmp_path / "f2")],
                           capture_output=True, text=True, check=False)
    assert empty.returncode == 2 and "no runs" in empty.stderr


def test_the_side_by_side_script_refuses_a_folder_that_is_not_a_grow_crystals_checkout(tmp_path, caplog):
    script = _script("compare_grow_crystals")
    assert script.main([str(tmp_path)]) == 2 and "not a grow-crystals checkout" in caplog.text
    assert script.first_above([0.5] * 3 + [0.95] * 20) == 4  # the paper's index 3, counted from 1
    assert script.first_above([0.95] * 19) is None


def _script(name: str):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_verdict_pairs_heads_by_seed_with_the_paired_t_interval_worked_out_by_hand():
    """Differences 1, 2, 6 over seeds 0-2 (seed 3 has CE only): mean 3, sd sqrt(7); with 2 degrees of freedom
    t_0.975 = 4.30265 and the two-sided p of t = sqrt(27/7) is 1 - sqrt(27/41) (Student's t, 2 df, closed form)."""
    import pandas as pd

    figures = _script("toy_figures")
    ce = pd.Series([1.0, 2.0, 3.0, 7.0], index=[0, 1, 2, 3])
    harmonic = pd.Series([2.0, 4.0, 9.0], index=[0, 1, 2])
    n, diff, low, high, p = figures.paired(ce, harmonic)
    half = 4.302652729749464 * math.sqrt(7 / 3)
    assert n == 3 and diff == pytest.approx(3.0)
    assert (low, high) == (pytest.approx(3 - half), pytest.approx(3 + half))
    assert p == pytest.approx(1 - math.sqrt(27 / 41), rel=1e-9)
    assert figures.paired(ce, pd.Series([5.0], index=[0])) is None  # one pair: no interval
