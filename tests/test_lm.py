"""Language modelling: token data, the GPT backbone, perplexity, gradient stability, LM rows and tables."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from test_distances import make

from lossbench import LossbenchError
from lossbench.build import build, build_model
from lossbench.config import group_options
from lossbench.data.text import BuiltinText, OpenWebText, TextFile, WindowLoader
from lossbench.engine import Trainer
from lossbench.losses.cross_entropy import CrossEntropy
from lossbench.metrics import grad_stability
from lossbench.models.classifier import Classifier
from lossbench.models.gpt import GPT
from lossbench.models.heads import LinearHead
from lossbench.report import build_report
from lossbench.report.aggregate import best_variants
from lossbench.report.catalogue import columns_of
from lossbench.results import load_history, load_runs
from lossbench.run import execute
from lossbench.tasks import LanguageModeling

# A tiny GPT: 2 layers, 32 wide, 32-token windows, 12 steps.
TINY_LM = ["task=lm", "backbone.n_layer=2", "backbone.n_head=2", "backbone.n_embd=32", "backbone.block_size=32",
           "trainer.steps=12", "trainer.eval_every=6", "trainer.batch_size=8", "dataset.eval_windows=8",
           "probe_samples=128"]
VOCAB = len(set(BuiltinText().text()))
LM_COLUMNS = ["train_ppl", "val_ppl", "test_ppl", "val_nll", "val_acc", "grad_norm_mean", "grad_norm_cv", "grad_spikes",
              "grad_clip_rate", "effective_rank", "pc5_ev", "proto_effective_rank", "proto_pc5_ev", "tokens_per_s",
              "train_tokens"]


def _tiny_model(vocab: int = 11, block: int = 8) -> Classifier:
    torch.manual_seed(0)
    gpt = GPT((block,), vocab, n_layer=2, n_head=2, n_embd=16, block_size=block)
    return Classifier(gpt, LinearHead(16, vocab))


def test_builtin_text_loads_offline_as_character_windows():
    splits = BuiltinText(block_size=64, eval_windows=4).load()
    assert splits.vocab_size == splits.num_classes > 50
    assert splits.x_val.shape == splits.y_val.shape == (4, 64)
    assert torch.equal(splits.x_val[:, 1:], splits.y_val[:, :-1])  # y is x shifted by one token
    assert splits.sizes()["n_train"] > 400_000
    xb, yb = next(iter(splits.train_loader(3, torch.Generator().manual_seed(0))))
    assert xb.shape == yb.shape == (3, 64) and torch.equal(xb[:, 1:], yb[:, :-1])


def test_text_file_round_trips_its_characters(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abcab" * 200 + "é", encoding="utf-8")
    splits = TextFile(str(path), block_size=8, eval_windows=2).load()
    assert splits.vocab_size == 4  # a, b, c, é
    assert splits.x_train[0].tolist() == [0, 1, 2, 0, 1, 0, 1, 2]


def test_missing_text_file_and_openwebtext_name_the_path(tmp_path):
    with pytest.raises(LossbenchError, match=str(tmp_path / "nope.txt")):
        TextFile(str(tmp_path / "nope.txt")).load()
    with pytest.raises(LossbenchError, match=rf"expected {tmp_path / 'train.bin'}.*prepare_openwebtext.py"):
        OpenWebText(str(tmp_path)).load()


def test_openwebtext_memory_maps_uint16_tokens(tmp_path):
    rng = np.random.default_rng(0)
    rng.integers(0, 50257, 5000, dtype=np.uint16).tofile(tmp_path / "train.bin")
    val = rng.integers(0, 50257, 1000, dtype=np.uint16)
    val.tofile(tmp_path / "val.bin")
    splits = OpenWebText(str(tmp_path), block_size=16, eval_windows=3).load()
    assert isinstance(splits.train_tokens, np.memmap)
    assert splits.x_val[0].tolist() == val[:16].tolist() and splits.y_val[0].tolist() == val[1:17].tolist()
    assert splits.x_test[0].tolist() == val[500:516].tolist()  # test: the second half of val.bin
    loader = splits.train_loader(4, torch.Generator().manual_seed(0))
    assert len(loader) == -(-((5000 - 1) // 16) // 4)
    xb, yb = next(iter(loader))
    assert xb.dtype == torch.int64 and int(xb.max()) < 50304


def test_window_loader_is_seeded_and_stays_in_bounds():
    tokens = np.arange(100)
    a = [x for x, _ in WindowLoader(tokens, 10, 4, torch.Generator().manual_seed(1), torch.device("cpu"))]
    b = [x for x, _ in WindowLoader(tokens, 10, 4, torch.Generator().manual_seed(1), torch.device("cpu"))]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    for x in a:
        assert int(x.max()) <= 98 and torch.equal(x[:, 1:] - x[:, :-1], torch.ones(4, 9, dtype=torch.int64))


def test_gpt_is_causal():
    model = _tiny_model()
    model.eval()
    x = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(0))
    changed = x.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 11
    a, b = model.features(x).reshape(2, 8, -1), model.features(changed).reshape(2, 8, -1)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6)  # earlier positions do not see later tokens
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_gpt_rejects_windows_longer_than_its_context():
    with pytest.raises(ValueError, match="exceed backbone.block_size=8"):
        GPT((16,), 11, block_size=8)


def test_perplexity_is_exp_of_mean_token_nll_on_a_hand_example():
    """Two windows of two tokens with known logits: ppl = exp(mean of the four -log p(target))."""

    class Fixed(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
            return logits[: x.numel()]

    x = torch.zeros(2, 2, dtype=torch.long)
    y = torch.tensor([[0, 1], [2, 1]])
    scores = Trainer(eval_batch_size=2).evaluate(Fixed(), CrossEntropy(), x, y, 3, LanguageModeling())
    nll = np.mean([np.log(np.exp(2) + 2) - 2, np.log(np.e + 2) - 1, np.log(np.exp(3) + 2) - 3, np.log(3)])
    assert scores["nll"] == pytest.approx(nll, rel=1e-6)
    assert scores["ppl"] == pytest.approx(math.exp(nll), rel=1e-6)
    assert scores["acc"] == 0.75  # the tie of the last row resolves to class 0, not its target 1


def test_gradient_accumulation_matches_one_big_batch():
    """Two accumulated micro-batches of 4 windows = one step on the mean of their two mean losses."""
    tokens = np.random.default_rng(0).integers(0, 11, 400)
    model, reference = _tiny_model(), _tiny_model()
    batches = list(WindowLoader(tokens, 8, 4, torch.Generator().manual_seed(3), torch.device("cpu")))[:2]
    loss = sum(torch.nn.functional.cross_entropy(reference(x), y.reshape(-1)) for x, y in batches) / 2
    loss.backward()
    expected = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in reference.parameters()]))

    from lossbench.data.text import TokenSplits, eval_windows

    xv, yv = eval_windows(tokens, 8, 2, "val")
    splits = TokenSplits(xv, yv, xv, yv, xv, yv, num_classes=11, vocab_size=11, train_tokens=tokens, block_size=8)
    trainer = Trainer(steps=1, batch_size=4, grad_accum=2, progress=False, eval_test_each_epoch=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    result = trainer.fit(model, CrossEntropy(), optimizer, scheduler, splits, torch.Generator().manual_seed(3),
                         LanguageModeling())
    assert result.steps == 1 and result.samples == 2 * 4 * 8
    assert result.grad_norms[0] == pytest.approx(float(expected), rel=1e-5)


def test_grad_stability_against_a_direct_count():
    norms = np.random.default_rng(0).lognormal(0.0, 0.8, 300)
    norms[[50, 120, 121, 250]] *= 40
    factor, window, clip = 4.0, 20, 2.0
    spikes = sum(norms[i] > factor * np.median(norms[max(0, i - window) : i]) for i in range(1, len(norms)))
    stats = grad_stability(norms.tolist(), clip, factor, window)
    assert stats["grad_spikes"] == spikes >= 3
    assert stats["grad_clip_rate"] == pytest.approx(np.mean(norms > clip))
    assert math.isnan(grad_stability(norms.tolist(), None, factor, window)["grad_clip_rate"])


@pytest.mark.parametrize("loss,distance", [("ce", "euclidean")] + [("harmonic", d) for d in group_options("distance")])
def test_tiny_gpt_trains_and_writes_complete_rows(compose, loss, distance):
    cfg, choices = compose(*TINY_LM, f"loss={loss}", f"distance={distance}")
    outcome = execute(cfg, choices)
    row = load_runs(cfg.results_dir).iloc[0]
    assert (row.status, row.task, row.dataset, row.backbone) == ("completed", "lm", "text_builtin", "gpt")
    for col in LM_COLUMNS:
        assert math.isfinite(row[col]), col
    assert row.val_ppl == pytest.approx(math.exp(row.val_nll))
    assert row.steps == 12 and row.train_tokens == 12 * 8 * 32
    assert 1.0 < row.val_ppl
    if type(make(distance)).reproduces is None:  # the reference code's variants can start far worse than uniform
        assert row.val_ppl < 2 * VOCAB  # a perplexity over the vocabulary, near or below uniform
    assert "test_f1" not in row.index or pd.isna(row.test_f1)
    history = load_history(cfg.results_dir)
    assert history.step.tolist() == [6, 12] and "val_ppl" in history
    assert outcome.summary["precision"] == "fp32"


def test_tiny_gpt_learns_the_builtin_text(compose):
    # 120 steps: at 60 the margin was thin enough that the built-in text of another Python version (its
    # vocabulary differs by one character) missed the bound on torch 2.11
    cfg, choices = compose(*TINY_LM, "trainer.steps=120", "trainer.eval_every=120")
    row = execute(cfg, choices).summary
    assert row["val_ppl"] < VOCAB / 4  # far below the uniform guess (perplexity = vocabulary size)


def test_tied_embeddings_share_one_parameter(compose):
    cfg, _ = compose(*TINY_LM, "backbone.tie_embeddings=true")
    model = build_model(cfg, build(cfg, "dataset").load())
    assert model.backbone.wte.weight is model.head.prototypes


def test_lm_dataset_without_task_lm_is_a_clear_error():
    proc = subprocess.run([sys.executable, "-m", "lossbench", "run", "dataset=text_builtin", "tracker=off"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "error: dataset=text_builtin gives tokens data, which task=classification does not take (it takes labels); "
        "add task=lm"]
    missing = subprocess.run([sys.executable, "-m", "lossbench", "run", "task=lm", "dataset=text_file"],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        "error: dataset.path has no value (??? in its yaml); set it, e.g. dataset.path=..."]


def test_report_gives_language_models_their_own_tables(compose, tmp_path):
    for loss, distance in [("ce", "euclidean"), ("harmonic", "cosine")]:
        cfg, choices = compose(*TINY_LM, f"loss={loss}", f"distance={distance}")
        execute(cfg, choices)
    cfg, choices = compose("dataset=digits", "backbone=mlp")
    execute(cfg, choices)
    built = build_report(cfg.results_dir, tmp_path / "report", ["dataset", "backbone"])
    by_task = {t.task.name: t for t in built.tables}
    assert set(by_task) == {"classification", "lm"}
    lm = by_task["lm"]
    assert {"val_ppl", "train_ppl", "grad_spikes", "effective_rank", "pc5_ev", "tokens_per_s"} <= set(lm.mean.columns)
    assert "test_f1" not in lm.mean.columns and "val_ppl" not in by_task["classification"].mean.columns
    assert list(lm.mean.index) == ["ce", "harmonic/cosine"]
    runs = load_runs(cfg.results_dir).set_index("distance")
    assert lm.mean.at["harmonic/cosine", "val_ppl"] == pytest.approx(runs.at["cosine", "val_ppl"])
    assert (tmp_path / "report" / "figures" / "val_ppl_text-builtin_gpt.png").is_file()
    # effective rank has no agreed direction: shown, never bolded, not part of the interpretability rank
    catalogue = columns_of(LanguageModeling)
    assert best_variants(lm, catalogue["effective_rank"]) == set() and "effective_rank" not in lm.standings
    assert "pc5_ev" in lm.standings and "val_ppl" not in lm.standings and "test_ppl" in lm.standings
    pc5_best = lm.mean["pc5_ev"].idxmax()
    assert lm.ranks.at[pc5_best, "Interpretability"] <= lm.ranks["Interpretability"].min() + 1


def test_harmonic_exponent_defaults_to_sqrt_of_the_width_for_language_models(compose):
    cfg, _ = compose(*TINY_LM, "loss=harmonic", "distance=cosine")
    assert cfg.loss.head.n == "sqrt"
    model = build_model(cfg, build(cfg, "dataset").load())
    assert model.head.n == pytest.approx(math.sqrt(32))
    classification, _ = compose("loss=harmonic")
    assert classification.loss.head.n == 2.0
    explicit, _ = compose(*TINY_LM, "loss=harmonic", "loss.head.n=3")
    assert build_model(explicit, build(explicit, "dataset").load()).head.n == 3
