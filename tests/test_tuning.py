"""Tuning through Hydra's sweepers (Optuna, installed with lossbench[tune]): trials are lossbench runs that
return their validation objective; the study lives in the results folder and resumes; the tuned protocol
gives every variant the same budget and the report lists it."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from lossbench.cli import app
from lossbench.context import RunContext
from lossbench.launch import run_command
from lossbench.protocol import tune
from lossbench.results import load_runs
from lossbench.status import sweep_status

DIGITS = ["dataset=digits", "backbone=mlp", "tracker=off", "trainer.progress=false", "device=cpu", "threads=1"]
LOG_LR = "optim.optimizer.lr=tag(log,interval(1e-4,1e-1))"


def lr_of(row: pd.Series) -> float:
    return json.loads(row.config_json)["optim"]["optimizer"]["lr"]


def sweep(results: Path, *extra: str) -> list[str]:
    return ["hydra/sweeper=optuna", "hydra.sweeper.n_trials=3", LOG_LR, *DIGITS, "trainer.epochs=1",
            f"results_dir={results}", *extra]


def optimization_results(results: Path) -> list[dict]:
    found = sorted(results.glob("logs/multirun/*/*/optimization_results.yaml"))
    return [yaml.safe_load(p.read_text()) for p in found]


def study_of(results: Path) -> optuna.Study:
    (db,) = (results / "studies").glob("*.db")
    return optuna.load_study(study_name=db.stem, storage=f"sqlite:///{db}")


def test_an_optuna_sweep_runs_trials_and_gets_their_validation_scores(tmp_path):
    results = tmp_path / "r"
    outcome = run_command(sweep(results), multirun=True)
    assert outcome.exit_code == 0, outcome.lines
    runs = load_runs(results)
    assert len(runs) == 3 and (runs.status == "completed").all()
    assert len({lr_of(r) for _, r in runs.iterrows()}) == 3  # three distinct learning rates from the interval
    assert all(1e-4 <= lr_of(r) <= 1e-1 for _, r in runs.iterrows())
    (first,) = optimization_results(results)
    best = runs.loc[runs.val_acc.idxmax()]
    assert first["best_value"] == pytest.approx(best.val_acc) and first["best_params"]["optim.optimizer.lr"] == lr_of(best)
    assert sorted(t.value for t in study_of(results).trials) == pytest.approx(sorted(runs.val_acc))
    # the same command again: the study has its 3 trials, nothing trains, the same best value is reported
    mtimes = {p: p.stat().st_mtime_ns for p in (results / "runs").glob("*.parquet")}
    again = run_command(sweep(results), multirun=True)
    assert again.exit_code == 0 and {p: p.stat().st_mtime_ns for p in (results / "runs").glob("*.parquet")} == mtimes
    assert len(optimization_results(results)) == 2 and optimization_results(results)[1]["best_value"] == first["best_value"]
    assert len(study_of(results).trials) == 3
    assert "3 trials (3 complete, 0 failed" in sweep_status(results) and "(tuning trials)" in sweep_status(results)


def test_a_trial_with_an_invalid_value_fails_alone(tmp_path):
    results = tmp_path / "r"
    outcome = run_command(["hydra/sweeper=optuna", "hydra/sweeper/sampler=grid", "hydra.sweeper.n_jobs=1",
                           "optim.optimizer.lr=choice(0.01,-1.0,0.001)",
                           *DIGITS, "trainer.epochs=1", f"results_dir={results}"], multirun=True)
    assert outcome.exit_code == 0
    states = sorted(t.state.name for t in study_of(results).trials)
    assert states == ["COMPLETE", "COMPLETE", "FAIL"]
    assert sorted(lr_of(r) for _, r in load_runs(results).iterrows()) == [0.001, 0.01]  # the bad trial wrote nothing


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.from_regex(r"[0-9]+e[0-9]+", fullmatch=True),
                 st.text(st.characters(codec="ascii", exclude_categories=("Cc",)))))
def test_study_settings_are_strings_whatever_they_look_like(text):
    """A sweep id is hex: 42132e52 (a float to Hydra's parser, bare) named the study 4.2132e+56, so the stored
    study was not found by its name. Quoted, any text parses back to itself (Hydra's own parser)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from lossbench.study import quoted

    assert OverridesParser.create().parse_override(f"hydra.sweeper.study_name={quoted(text)}").value() == text


def test_the_study_is_named_by_the_sweep_id_even_when_it_looks_like_a_number(tmp_path):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from lossbench.study import settings as study_settings

    sweeper = OmegaConf.create({"n_trials": 3, "sampler": {"seed": None}})
    overrides = study_settings(sweeper, set(), tmp_path, "42132e52", ["maximize"])
    parsed = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(overrides)}
    assert parsed["hydra.sweeper.study_name"] == "42132e52"
    assert parsed["hydra.sweeper.storage"] == f"sqlite:///{(tmp_path / 'studies' / '42132e52.db').resolve()}"


def test_a_grid_whose_last_trial_fails_finishes(tmp_path):
    """Hydra's Optuna sweeper drives the study by ask/tell, where GridSampler's `study.stop()` after the last
    grid point raises; the sweeper swallowed that only after a completed trial, so a grid whose last trial
    failed stopped the whole sweep with exit 1 (study.grid_sampler_without_stop). GridSampler draws its next
    grid point with the `random` module: seeded so that the failing point comes last (checked below)."""
    results = tmp_path / "r"
    state = random.getstate()
    random.seed(0)
    try:
        outcome = run_command(["hydra/sweeper=optuna", "hydra/sweeper/sampler=grid",
                               "optim.optimizer.lr=choice(0.01,-1.0)", *DIGITS, "trainer.epochs=1",
                               f"results_dir={results}"], multirun=True)
    finally:
        random.setstate(state)
    assert [t.state.name for t in study_of(results).trials] == ["COMPLETE", "FAIL"]  # the failure came last
    assert outcome.exit_code == 0, outcome.lines
    assert "2 trials, 1 complete, 1 failed" in outcome.lines[1]


@pytest.mark.parametrize("args,message", [
    (["optim.optimizer.lr=interval(1e-4"], "cannot parse the override 'optim.optimizer.lr=interval(1e-4'"),
    (["optim.optimizer.lrr=interval(1e-4,1e-1)"], "unknown key 'optim.optimizer.lrr'"),
    ([LOG_LR, "objective=[test_accuracy]"], "objective: 'test_accuracy' is not a result column"),
    ([LOG_LR, "objective=[test_acc]"], "objective: 'test_acc' is a test score; tuning selects on validation"),
    ([LOG_LR, "objective=val_acc"], "objective: got 'val_acc'; valid: a list [a,b,...] of str or null"),
    ([LOG_LR, "optim.optimizer.weight_decay=-1"], "weight_decay"),
    ([LOG_LR, "hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials: got 0; valid: int >= 1"),
])
def test_bad_sweeps_are_one_line_exit_2_and_write_nothing(tmp_path, args, message):
    results = tmp_path / "r"
    result = CliRunner().invoke(app, ["run", "-m", "hydra/sweeper=optuna", *args, f"results_dir={results}"])
    assert result.exit_code == 2 and message in result.output, result.output
    assert result.output.count("\n") == 1 and not results.exists()


def test_a_study_whose_every_trial_fails_says_so_and_exits_1(tmp_path):
    results = tmp_path / "r"
    outcome = run_command(["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "optim.optimizer.lr=choice(-1,-2)",
                           *DIGITS, "trainer.epochs=1", f"results_dir={results}"], multirun=True)
    assert outcome.exit_code == 1 and outcome.lines[0].startswith("the sweeper stopped")
    assert any("2 trials, 0 complete, 2 failed" in line for line in outcome.lines)


def test_the_tuned_protocol_needs_one_objective(tmp_path):
    result = CliRunner().invoke(app, ["tune", "--space", LOG_LR, "--trials", "2", *DIGITS,
                                      "objective=[val_acc,duration_s]", f"results_dir={tmp_path / 'r'}"])
    assert result.exit_code == 2 and "needs one objective column" in result.stderr and not (tmp_path / "r").exists()


def test_an_interval_without_a_sampling_sweeper_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["run", "-m", LOG_LR, f"results_dir={tmp_path / 'r'}"])
    assert result.exit_code == 2 and "add hydra/sweeper=optuna" in result.output and not (tmp_path / "r").exists()


def test_a_killed_study_resumes_without_repeating_a_trial(tmp_path):
    results = tmp_path / "r"
    args = sweep(results, "hydra.sweeper.n_trials=4", "trainer.epochs=40")[1:]  # n_trials=4 wins (later)
    args = ["hydra/sweeper=optuna", *[a for a in args if a != "hydra.sweeper.n_trials=3"]]
    proc = subprocess.Popen([sys.executable, "-m", "lossbench", "run", "-m", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while len(list((results / "runs").glob("*.parquet"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((results / "runs").glob("*.parquet")))
    assert 2 <= done < 4, "the study was not killed in the middle"
    outcome = run_command(args, multirun=True)
    assert outcome.exit_code == 0, outcome.lines
    trials = study_of(results).trials
    counted = [t for t in trials if t.user_attrs.get("lossbench") != "interrupted"]
    assert len(counted) == 4 and all(t.state.name == "COMPLETE" for t in counted)
    assert len({t.params["optim.optimizer.lr"] for t in counted}) == 4  # no trial ran twice
    assert len(load_runs(results)) == 4


def test_a_multi_objective_study_gets_its_pareto_front(tmp_path):
    results = tmp_path / "r"
    outcome = run_command(sweep(results, "hydra/sweeper/sampler=nsgaii", "objective=[val_acc,duration_s]"),
                          multirun=True)
    assert outcome.exit_code == 0
    (found,) = optimization_results(results)
    runs = load_runs(results)
    assert found["solutions"] and all(len(s["values"]) == 2 for s in found["solutions"])
    assert [d.name for d in study_of(results).directions] == ["MAXIMIZE", "MINIMIZE"]
    best_acc = max(s["values"][0] for s in found["solutions"])
    assert best_acc == pytest.approx(runs.val_acc.max())  # the most accurate run is on the front


def test_the_tuned_protocol_gives_each_variant_the_same_budget_and_reports_it(tmp_path):
    results = tmp_path / "r"
    outcome = tune([*DIGITS, "trainer.epochs=1", "loss=ce,harmonic", "distance=cosine", f"results_dir={results}"],
                   [LOG_LR], trials=3, seeds=[0, 1], context=RunContext())
    assert outcome.exit_code == 0, outcome.lines
    (manifest,) = [json.loads(p.read_text()) for p in (results / "tuning").glob("protocol-*.json")]
    runs = load_runs(results)  # stage 2 only: the trials are in results/tuning
    assert len(runs) == 4 and sorted(runs.variant.unique()) == ["ce", "harmonic/cosine"]
    assert len(load_runs(results / "tuning")) == 6  # 3 trials per variant
    for variant in manifest["variants"]:
        trials = optuna.load_study(study_name=variant["study"], storage=variant["storage"]).trials
        assert len(trials) == 3  # the same budget
        best = max(trials, key=lambda t: t.value)
        assert variant["best"] == best.params
        chosen = runs[runs.variant == variant["variant"]]
        assert sorted(chosen.seed) == [0, 1] and {lr_of(r) for _, r in chosen.iterrows()} == {
            best.params["optim.optimizer.lr"]}
    result = CliRunner().invoke(app, ["report", str(results), "--out", str(tmp_path / "report"), "--format", "csv"])
    assert result.exit_code == 0, result.output
    (table,) = [pd.read_csv(p) for p in (tmp_path / "report" / "tables").glob("tuning_*.csv")]
    assert table.trials.tolist() == [3, 3] and table.completed.tolist() == [3, 3]
    for variant in manifest["variants"]:
        row = table[table.variant == variant["variant"]].iloc[0]
        assert row.chosen == f"optim.optimizer.lr={variant['best']['optim.optimizer.lr']:.4g}"
    assert "same budget, 3 Optuna trials" in (tmp_path / "report" / "index.md").read_text()
