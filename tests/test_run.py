"""End-to-end runs: rows, columns (against the declared schema), determinism, fair initialisation, energy."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import schema_gaps

from lossbench.build import build, build_model
from lossbench.config import group_options
from lossbench.cost import energy as emissions
from lossbench.results import load_history, load_runs
from lossbench.run import execute

OFFLINE = [
    ("mnist1d", "mlp"), ("mnist1d", "cnn"), ("digits", "cnn"), ("spiral", "mlp"), ("modadd", "embedding_mlp"),
]
METRICS = ["train_loss", "val_acc", "test_acc", "test_f1", "grad_norm_mean", "grad_norm_max", "head_param_norm"]


def _run(compose, *overrides: str):
    cfg, choices = compose(*overrides)
    outcome = execute(cfg, choices)
    return cfg, outcome


@pytest.mark.parametrize("dataset,backbone", OFFLINE)
@pytest.mark.parametrize("loss", ["ce", "harmonic"])
def test_one_epoch_writes_complete_rows(compose, dataset, backbone, loss):
    cfg, outcome = _run(compose, f"dataset={dataset}", f"backbone={backbone}", f"loss={loss}")
    runs, history = load_runs(cfg.results_dir), load_history(cfg.results_dir)
    assert len(runs) == 1 and len(history) == 1
    row = runs.iloc[0]
    task = build(cfg, "task")
    gaps = schema_gaps(outcome.summary, task, cfg.results_dir, cfg.trainer.eval_test_each_epoch)
    assert gaps == (set(), set(), set(), set())
    assert outcome.path.name == f"{row.run_id}.parquet"
    assert (row.status, row.dataset, row.backbone, row.loss) == ("completed", dataset, backbone, loss)
    assert row.distance == ("none" if loss == "ce" else "euclidean")
    for col in METRICS:
        assert math.isfinite(row[col]), col
    assert 0.0 <= row.test_acc <= 1.0 and row.grad_norm_max >= row.grad_norm_mean > 0


def test_same_seed_gives_identical_metrics(compose, tmp_path):
    # threads pinned: with threads=auto another lossbench run on the host can change a run's thread count,
    # and with it the last bits of CPU reductions (threads are not part of a run's identity)
    overrides = ["loss=harmonic", "distance=cosine", "trainer.epochs=2", "threads=1", "seed=3"]
    _, first = _run(compose, *overrides)
    _, second = _run(compose, *overrides, f"results_dir={tmp_path / 'again'}")
    assert first.summary["run_id"] == second.summary["run_id"]
    for col in METRICS + ["val_loss", "train_acc", "grad_norm_std", "model_param_norm"]:
        assert first.summary[col] == second.summary[col], col
    _, other = _run(compose, *overrides[:-1], "seed=4", f"results_dir={tmp_path / 'other'}")
    assert other.summary["train_loss"] != first.summary["train_loss"]


def test_ce_ignores_distance_and_run_id_ignores_output_location(compose, tmp_path):
    _, a = _run(compose, "loss=ce", "distance=euclidean")
    _, b = _run(compose, "loss=ce", "distance=cosine", f"results_dir={tmp_path / 'elsewhere'}")
    assert a.summary["run_id"] == b.summary["run_id"]
    assert a.summary["distance"] == "none" and '"distance": null' in a.summary["config_json"]
    _, c = _run(compose, "loss=harmonic", "distance=cosine")
    assert c.summary["run_id"] != a.summary["run_id"] and c.summary["distance"] == "cosine"


def test_every_head_starts_from_the_same_backbone(compose):
    models = []
    for loss in ("ce", "harmonic"):
        cfg, _ = compose(f"loss={loss}", "seed=5")
        models.append(build_model(cfg, build(cfg, "dataset").load()))
    for (name, p), (_, q) in zip(models[0].backbone.named_parameters(), models[1].backbone.named_parameters()):
        assert torch.equal(p, q), name


def test_best_checkpoint_is_chosen_on_validation(compose):
    cfg, outcome = _run(compose, "trainer.epochs=4", "optim.optimizer.lr=0.05", "backbone=mlp")
    history = load_history(cfg.results_dir).sort_values("epoch")
    best = int(history.val_acc.to_numpy().argmax()) + 1  # first epoch with the highest val accuracy
    assert outcome.summary["best_epoch"] == best
    assert outcome.summary["val_acc"] == pytest.approx(history.val_acc.iloc[best - 1])


def test_codecarbon_energy_is_recorded(compose):
    _, outcome = _run(compose, "tracker=codecarbon", "dataset=spiral", "backbone=mlp")
    s = outcome.summary
    assert s["energy_tracker"] == "codecarbon" and s["country_iso_code"] == "FRA"
    assert s["energy_kwh"] > 0 and s["emissions_kg"] > 0
    # CPU run without RAPL: each part attributed by the process's CPU time (cost/energy.py)
    assert (s["cpu_energy_source"], s["ram_energy_source"], s["gpu_energy_source"]) == ("model:cpu-time", "model:ram", "none")
    assert s["gpu_energy_kwh"] is None
    cores = len(__import__("os").sched_getaffinity(0))
    assert s["cpu_energy_kwh"] == pytest.approx(s["cpu_time_s"] * s["cpu_power_w"] / 3.6e6, rel=1e-9)
    assert s["ram_energy_kwh"] == pytest.approx(s["ram_power_w"] * s["cpu_time_s"] / cores / 3.6e6, rel=1e-9)
    assert s["energy_kwh"] == pytest.approx(s["cpu_energy_kwh"] + s["ram_energy_kwh"], rel=1e-12)
    assert s["emissions_kg"] == pytest.approx(s["energy_kwh"] * s["carbon_intensity_kg_per_kwh"], rel=1e-12)


def test_a_broken_tracker_gives_null_energy_and_a_warning_not_a_crash(compose, monkeypatch, caplog):
    class Silent:  # what a half-built codecarbon tracker does: stop() returns None
        final_emissions_data = None

        def __init__(self, **kwargs):
            pass

        def start(self):
            pass

        def stop(self):
            return None

    import codecarbon

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", Silent)
    _, outcome = _run(compose, "tracker=codecarbon", "dataset=spiral", "backbone=mlp")
    assert outcome.summary["status"] == "completed"
    sources = {c for c in emissions.ENERGY_COLUMNS if c.endswith("_source")}
    assert sources and all(outcome.summary[c] == "none" for c in sources)
    assert all(outcome.summary[c] is None for c in set(emissions.ENERGY_COLUMNS) - sources - {"energy_tracker"})
    assert "no measurement" in caplog.text

    class Broken(Silent):
        def start(self):
            raise RuntimeError("no hardware")

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", Broken)
    _, outcome = _run(compose, "tracker=codecarbon", "dataset=spiral", "backbone=mlp", "seed=1")
    assert outcome.summary["status"] == "completed" and outcome.summary["energy_kwh"] is None
    assert "failed to start (no hardware)" in caplog.text


def test_diverged_run_stops_and_is_marked(compose):
    cfg, outcome = _run(compose, "trainer.epochs=3", "optim=sgd", "optim.optimizer.lr=1e12", "backbone=mlp")
    assert outcome.summary["status"] == "diverged"
    history = load_history(cfg.results_dir)
    assert not math.isfinite(history.train_loss.iloc[-1])  # training stopped at the first non-finite loss
    assert history.train_loss.iloc[:-1].map(math.isfinite).all() and len(history) <= 3
    assert load_runs(cfg.results_dir).status.tolist() == ["diverged"]


@pytest.mark.parametrize("distance", group_options("distance"))
def test_every_distance_trains_end_to_end(compose, distance):
    _, outcome = _run(compose, "loss=harmonic", f"distance={distance}", "backbone=mlp", "trainer.epochs=2")
    s = outcome.summary
    assert (s["status"], s["distance"]) == ("completed", distance)
    assert s["train_loss"] < 2.5 and math.isfinite(s["grad_norm_max"]) and s["test_acc"] > 0.1


@pytest.mark.parametrize("distance,param", [("mahalanobis", "factor"), ("mahalanobis_diagonal", "log_scale")])
def test_learnable_metric_parameters_reach_the_optimizer_and_change(compose, distance, param):
    cfg, _ = compose("loss=harmonic", f"distance={distance}", "backbone=mlp", "trainer.epochs=2")
    splits = build(cfg, "dataset").load()
    model = build_model(cfg, splits)
    before = getattr(model.head.distance, param).detach().clone()
    optimizer = build(cfg, "optim.optimizer", model.parameters())
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert id(getattr(model.head.distance, param)) in in_optimizer
    trainer = build(cfg, "trainer")
    scheduler = build(cfg, "optim.scheduler", optimizer, total_steps=100)
    trainer.fit(model, build(cfg, "loss.criterion"), optimizer, scheduler, splits, torch.Generator().manual_seed(0),
                build(cfg, "task"))
    after = getattr(model.head.distance, param).detach()
    assert (after - before).abs().max() > 1e-4
