"""The preflight builds what a run builds before its first step, on the CPU, and runs the model once on two
examples: a configuration that could not train is refused with one line and exit code 2 before anything is
written, whatever part of it is wrong (backbone, data, their combination, joint settings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from lossbench.build import build
from lossbench.cli import app
from lossbench.config import compose_run
from lossbench.data.vision import STD_FLOOR, standardise

FAST = ["trainer.epochs=1", "tracker=off", "trainer.progress=false", "device=cpu"]


def refused(tmp_path: Path, monkeypatch, *overrides: str) -> str:
    """The one error line of `lossbench run OVERRIDES` (exit 2), having checked that nothing was written."""
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(app, ["run", *FAST, f"results_dir={tmp_path / 'r'}", *overrides])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    return lines[0]


@pytest.mark.parametrize("overrides,message", [
    (["backbone=mlp", "backbone.activation=foo"], "unknown activation 'foo'"),
    (["dataset=digits", "backbone=cnn", "backbone.channels=[8,16,32,64,128]"], "got input shape [1, 8, 8]"),
    (["backbone=embedding_mlp"], "needs a token dataset"),
    (["task=lm", "dataset=text_builtin", "backbone=gpt", "backbone.n_embd=30", "backbone.n_head=4"],
     "n_embd divisible by n_head"),
    (["task=lm", "dataset=text_builtin", "backbone=gpt", "dataset.block_size=512"], "exceed backbone.block_size=128"),
    (["dataset=digits", "dataset.test_fraction=0.99", "dataset.val_fraction=0.99"], "empty split (train)"),
])
def test_what_could_not_train_is_refused_before_anything_is_written(tmp_path, monkeypatch, overrides, message):
    assert message in refused(tmp_path, monkeypatch, *overrides)


def write_tree(root: Path, classes=("ant", "bee"), per_class: int = 3, constant_red: bool = False) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for k, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 255, (8, 8, 3)).astype(np.uint8)
                if constant_red:
                    pixels[..., 0] = 7
                Image.fromarray(pixels, "RGB").save(root / split / name / f"{i}.png")


@pytest.mark.parametrize("damage,message", [
    ("empty", "Couldn't find any class folder"),
    ("corrupt", "not a readable image"),
    ("one-class", "1 class folder; a classifier needs at least two"),
    ("empty-class", "Found no valid file"),
])
def test_an_image_folder_that_cannot_train_a_classifier_is_refused(tmp_path, monkeypatch, damage, message):
    root = tmp_path / "tree"
    if damage == "empty":
        (root / "train").mkdir(parents=True)
        (root / "test").mkdir()
    else:
        write_tree(root, classes=("ant",) if damage == "one-class" else ("ant", "bee"))
    if damage == "corrupt":
        (root / "train" / "bee" / "1.png").write_bytes(b"\x89PNG not really")
    if damage == "empty-class":
        for image in (root / "test" / "bee").iterdir():
            image.unlink()
    line = refused(tmp_path, monkeypatch, "dataset=imagefolder", f"dataset.root={root}", "dataset.size=8",
                   "backbone=mlp")
    assert message in line


def test_a_constant_channel_is_standardised_to_zeros_not_divided_by_zero(tmp_path):
    write_tree(tmp_path / "tree", constant_red=True)
    cfg, _ = compose_run(["dataset=imagefolder", f"dataset.root={tmp_path / 'tree'}", "dataset.size=8"])
    splits = build(cfg, "dataset").load()
    assert torch.isfinite(splits.x_train).all() and splits.x_train[:, 0].abs().max() < 1e-3
    x = torch.full((4, 1, 2, 2), 0.5)
    (out,), (_, std) = standardise(x)
    assert float(std) == pytest.approx(STD_FLOOR) and torch.equal(out, torch.zeros_like(x))  # (x - mean) / floor, x == mean


DIGITS = 1797  # scikit-learn's digits: test = round(f_test n), then validation = max(1, round(f_val rest))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rest=st.integers(1, 40), share=st.floats(0.0, 1.0))
def test_split_fractions_that_leave_no_training_data_are_refused(tmp_path_factory, monkeypatch, rest, share):
    """A joint constraint: each fraction is in (0, 1), but together they can leave the training split empty.
    Drawn so that `rest` examples remain after the test split and validation takes all of them."""
    tmp = tmp_path_factory.mktemp("fractions")
    test_fraction = (DIGITS - rest) / DIGITS
    low = (rest - 0.45) / rest  # round(f * rest) == rest from here up
    val_fraction = min(0.999, low + share * (0.999 - low))
    assert DIGITS - round(test_fraction * DIGITS) - max(1, round(val_fraction * rest)) <= 0
    line = refused(tmp, monkeypatch, "dataset=digits", "backbone=mlp", f"dataset.test_fraction={test_fraction}",
                   f"dataset.val_fraction={val_fraction}")
    assert "empty split (train)" in line


def test_a_cluster_job_is_dry_built_where_the_data_can_say_its_shape_without_files(tmp_path):
    """Jobs for cluster nodes (here=False) read no data on the login host, but a torchvision dataset's shape
    is known from its name: a backbone that cannot take CIFAR images is refused at submission."""
    from lossbench.build import dry_build
    from lossbench.validate import validate

    cfg, choices = compose_run([*FAST, "dataset=cifar10", f"data_dir={tmp_path}", "backbone=cnn",
                                "backbone.channels=[8,16,32,64,128,256]"])
    validate(cfg)
    with pytest.raises(Exception, match=r"images at least 64 wide, got input shape \[3, 32, 32\]"):
        dry_build(cfg, choices, here=False)  # no files under data_dir: never read
    cfg, choices = compose_run([*FAST, "dataset=imagefolder", f"dataset.root={tmp_path / 'absent'}", "dataset.size=8",
                                "backbone=mlp"])
    dry_build(cfg, choices, here=False)  # its shape needs its files: checked on the node


def test_a_grid_builds_and_runs_each_model_once_in_preflight(tmp_path, monkeypatch):
    """Eight jobs (two heads x two learning rates x two seeds) are two models: the preflight runs each once."""
    import lossbench.build as build_module
    from lossbench.plan import preflight

    calls = []
    real = build_module._dry_forward
    monkeypatch.setattr(build_module, "_dry_forward", lambda *args: calls.append(args[0].loss.head) or real(*args))
    jobs = preflight([*FAST, "backbone=mlp", "loss=ce,harmonic", "distance=cosine", "optim.optimizer.lr=0.001,0.01",
                      "seed=0,1", f"results_dir={tmp_path / 'r'}"], multirun=True)
    assert len(jobs) == 8 and len(calls) == 2
