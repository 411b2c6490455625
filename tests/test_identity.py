"""Run identity from the effective config alone: every spelling of one config gives one id and one label."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from lossbench.config import compose_run, conf_dir, group_options
from lossbench.identity import NON_IDENTITY_KEYS, effective_config, hash_id, run_identity, variant_of_legacy
from lossbench.store import load_runs, write_rows


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


def test_run_id_is_the_sha256_of_the_sorted_effective_config():
    cfg, choices = compose_run(["loss=harmonic"])
    data = {k: v for k, v in effective_config(cfg).items() if k not in NON_IDENTITY_KEYS}
    data["trainer"] = {k: v for k, v in data["trainer"].items() if k not in ("compile", "channels_last", "checkpoint_every",
                                                                            "checkpoint_interval_s")}
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert run_identity(cfg, choices).run_id == hashlib.sha256(blob.encode()).hexdigest()[:16]
    assert hash_id({"x": 1, "y": {"b": 2, "a": [1, 2]}}) == hash_id({"y": {"a": [1, 2], "b": 2}, "x": 1})


def test_schema_1_rows_still_load_and_get_labels(tmp_path):
    old = {"run_id": "0123456789abcdef", "status": "completed", "loss": "harmonic", "distance": "cosine",
           "criterion": "focal", "schema_version": 1, "test_acc": 0.9}
    write_rows(tmp_path / "runs" / "old.parquet", [old])
    write_rows(tmp_path / "runs" / "new.parquet", [{"run_id": "fedcba9876543210", "status": "completed",
                                                    "variant": "ce", "schema_version": 2, "test_acc": 0.8}])
    runs = load_runs(tmp_path).set_index("run_id")
    assert runs.loc["0123456789abcdef", "test_acc"] == 0.9 and runs.loc["fedcba9876543210", "variant"] == "ce"
    assert variant_of_legacy(old) == "harmonic/cosine + focal"
    assert variant_of_legacy({"loss": "focal", "distance": "none", "criterion": "focal"}) == "focal"
    assert variant_of_legacy({"loss": "harmonic", "distance": "cosine", "criterion": "ce"}) == "harmonic/cosine"
