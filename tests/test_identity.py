"""Run identity from the effective config alone: every spelling of one config gives one id and one label."""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
import pytest
import yaml

from lossbench.config import GROUPS, compose_run, conf_dir, group_options
from lossbench.identity import (
    KEYS,
    UNCLASSIFIED,
    classify,
    effective_config,
    hash_id,
    run_identity,
    variant_of_legacy,
)
from lossbench.results import load_runs
from lossbench.store import write_table
from lossbench.validate import validate


def identity(*overrides: str):
    cfg, choices = compose_run(list(overrides))
    return run_identity(cfg, choices)


@pytest.mark.parametrize("loss", group_options("loss"))
def test_every_loss_shortcut_equals_its_head_and_criterion(loss):
    """`loss=focal` is `loss=ce loss/criterion=focal`: the yaml only names a head and a criterion."""
    spec = yaml.safe_load((conf_dir() / "loss" / f"{loss}.yaml").read_text())["defaults"]
    head, criterion = spec[0]["head"], spec[1]["criterion"]
    short = identity(f"loss={loss}")
    long = identity("loss=ce", f"loss/head={head}", f"loss/criterion={criterion}")
    assert short.run_id == long.run_id and short.axes == long.axes


def test_same_effective_config_same_id_and_label_whatever_the_spelling():
    a = identity("loss=focal")
    b = identity("loss=ce", "loss/criterion=focal")
    assert a.run_id == b.run_id and a.axes["variant"] == b.axes["variant"] == "focal"
    c = identity("loss=ce_ls")
    d = identity("loss=ce", "loss.criterion.label_smoothing=0.1")  # the same values through another yaml
    assert c.run_id == d.run_id and c.axes["variant"] == d.axes["variant"] == "ce_ls"
    e = identity("loss=harmonic", "distance=cosine", "loss/criterion=focal")
    assert e.axes["variant"] == "harmonic/cosine + focal" and e.axes["loss"] == "harmonic"
    assert (e.axes["criterion"], e.axes["distance"], e.axes["head"]) == ("focal", "cosine", "harmonic")


def test_id_changes_with_any_setting_but_not_with_output_locations_or_ignored_distance():
    base = identity("loss=harmonic", "distance=cosine")
    assert identity("loss=harmonic", "distance=cosine", "loss.head.eps=1e-5").run_id != base.run_id
    assert identity("loss=harmonic", "distance=cosine", "seed=1").run_id != base.run_id
    assert identity("loss=harmonic", "distance=cosine", "results_dir=/elsewhere", "data_dir=/x").run_id == base.run_id
    assert identity("loss=ce", "distance=cosine").run_id == identity("loss=ce", "distance=euclidean").run_id
    # how fast or how safely a run trains is not what it computes
    for setting in ("trainer.compile=true", "trainer.channels_last=true", "trainer.checkpoint_every=5",
                    "trainer.checkpoint_interval_s=0", "threads=1"):
        assert identity("loss=harmonic", "distance=cosine", setting).run_id == base.run_id, setting


def test_run_id_is_the_sha256_of_the_sorted_identity_keys():
    cfg, choices = compose_run(["loss=harmonic"])
    data = effective_config(cfg)
    for key in ("results_dir", "data_dir", "threads", "save_model", "tracker", "objective"):  # transcribed from the rules
        del data[key]
    for key in ("progress", "eval_batch_size", "compile", "channels_last", "checkpoint_every", "checkpoint_interval_s"):
        del data["trainer"][key]
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert run_identity(cfg, choices).run_id == hashlib.sha256(blob.encode()).hexdigest()[:16]
    del data["seed"]
    assert run_identity(cfg, choices).cell_id == hash_id(data)
    assert hash_id({"x": 1, "y": {"b": 2, "a": [1, 2]}}) == hash_id({"y": {"a": [1, 2], "b": 2}, "x": 1})


def test_measurement_and_presentation_settings_are_not_identity():
    """The same training with or without energy tracking (any country), a progress bar or another evaluation
    chunking is one run; a different seed is another run of the same cell; a different lr another cell."""
    base = identity("dataset=digits")
    for setting in ("tracker=off", "tracker.country_iso_code=DEU", "trainer.progress=true",
                    "trainer.eval_batch_size=7"):
        assert identity("dataset=digits", setting).run_id == base.run_id, setting
    seed = identity("dataset=digits", "seed=3")
    assert seed.run_id != base.run_id and seed.cell_id == base.cell_id
    lr = identity("dataset=digits", "optim.optimizer.lr=0.01")
    assert lr.run_id != base.run_id and lr.cell_id != base.cell_id


def _leaf_paths(node, path=""):
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaf_paths(value, f"{path}.{key}" if path else key)
    else:
        yield path


def test_every_config_key_of_every_option_is_classified():
    """identity.KEYS declares every key: a key that a new option adds and no rule covers fails here."""
    seen = set()
    for group in GROUPS:
        for option in group_options(group):
            overrides = [f"{group}={option}"] + (["task=lm"] if group in ("trainer",) and option == "lm" else [])
            cfg, _ = compose_run(overrides)
            seen.update(_leaf_paths(effective_config(cfg)))
    unclassified = sorted(p for p in seen if classify(p) is UNCLASSIFIED)
    assert not unclassified, f"declare these keys in lossbench/identity.py KEYS: {unclassified}"
    assert classify("tracker.country_iso_code").identity is False and classify("loss.head.n").identity
    assert classify("brand_new_key") is UNCLASSIFIED and UNCLASSIFIED.identity  # kept: never merges unlike runs
    assert all(key.why for key in KEYS.values())


def test_schema_1_and_2_rows_still_load_and_get_labels(tmp_path):
    old = {"run_id": "0123456789abcdef", "status": "completed", "loss": "harmonic", "distance": "cosine",
           "criterion": "focal", "schema_version": 1, "test_acc": 0.9, "config_json": '{"seed": 0}'}
    write_table(tmp_path / "runs" / "old.parquet", pa.Table.from_pylist([old]))
    write_table(tmp_path / "runs" / "new.parquet", pa.Table.from_pylist([{
        "run_id": "fedcba9876543210", "status": "completed", "variant": "ce", "schema_version": 2, "test_acc": 0.8,
        "config_json": '{"seed": 1}'}]))
    runs = load_runs(tmp_path).set_index("run_id")
    assert runs.loc["0123456789abcdef", "test_acc"] == 0.9 and runs.loc["fedcba9876543210", "variant"] == "ce"
    assert runs.loc["0123456789abcdef", "variant"] == "harmonic/cosine + focal"
    assert runs.loc["0123456789abcdef", "cell_id"] == runs.loc["fedcba9876543210", "cell_id"] == hash_id({})
    assert variant_of_legacy(old) == "harmonic/cosine + focal"
    assert variant_of_legacy({"loss": "focal", "distance": "none", "criterion": "focal"}) == "focal"
    assert variant_of_legacy({"loss": "harmonic", "distance": "cosine", "criterion": "ce"}) == "harmonic/cosine"


def test_keys_that_follow_the_seed_are_part_of_the_replicate():
    """The harmonic-loss experiments draw and split their data with the run's seed (`dataset.split_seed:
    ${seed}`): their seeds are one cell, paired by seed in the report; a split seed set to a number is a
    condition of its own."""
    def identity(*overrides):
        cfg, choices = compose_run(["task=algorithmic", "dataset=modular_addition", "backbone=toy_mlp", *overrides])
        validate(cfg)
        return run_identity(cfg, choices)

    follows = [identity("dataset.split_seed=${seed}", "dataset.data_seed=${seed}", f"seed={s}") for s in (0, 1, 2)]
    assert len({i.run_id for i in follows}) == 3 and len({i.cell_id for i in follows}) == 1
    fixed = [identity(f"dataset.split_seed={k}", "seed=0") for k in (0, 1)]
    assert fixed[0].cell_id != fixed[1].cell_id
    assert follows[0].cell_id != fixed[0].cell_id  # following the seed is itself a different protocol
