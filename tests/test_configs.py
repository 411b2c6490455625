"""Every option of every config group composes, validates and instantiates."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from lossbench import LossbenchError
from lossbench.build import build, dry_build
from lossbench.config import GROUPS, conf_dir, group_options
from lossbench.data.base import Splits
from lossbench.validate import validate

OFFLINE_DATASETS = ["digits", "mnist1d", "modadd", "spiral", "modular_addition", "equivalence", "mod_classification",
                    "permutation", "family_tree", "lattice", "greater_than"]
REAL_DATASETS = ["cifar10", "cifar100", "fashion_mnist", "mnist"]
LM_DATASETS = ["openwebtext", "text_builtin", "text_file"]
FOLDER_DATASETS = {"imagefolder": "imagefolder", "tinyimagenet": "tiny-imagenet-200-folders"}  # option: folder
# A dataset each backbone accepts, and the input shape it then sees.
BACKBONE_INPUT = {
    "mlp": ((40,), None),
    "cnn": ((1, 8, 8), None),
    "resnet18": ((3, 32, 32), None),
    "resnet50": ((3, 32, 32), None),
    "pvt": ((3, 32, 32), None),
    "embedding_mlp": ((2,), 59),
    "toy_mlp": ((2,), 31),
    "toy_transformer": ((3,), 25),
    "pixels": ((1, 8, 8), None),
    "gpt": ((16,), 50),  # one feature vector per token
}


def test_every_group_has_options_and_the_lists_are_complete():
    assert set(BACKBONE_INPUT) == set(group_options("backbone"))
    assert set(OFFLINE_DATASETS + REAL_DATASETS + LM_DATASETS + list(FOLDER_DATASETS)) == set(group_options("dataset"))
    for group in GROUPS:
        for option in group_options(group):
            lines = (conf_dir() / group / f"{option}.yaml").read_text().splitlines()
            first = next(line for line in lines if not line.startswith("# @"))  # skip Hydra's package header
            assert first.startswith("# ") and len(first) > 10, f"{group}/{option}.yaml needs a description line"


ALGORITHMIC = ["modular_addition", "equivalence", "mod_classification", "permutation", "family_tree", "lattice",
               "greater_than"]
# what a dataset or backbone option is dry-built with: a task and a partner that can train together
PARTNER = {
    **{("dataset", d): ["task=algorithmic", "backbone=toy_mlp"] for d in ALGORITHMIC},
    **{("dataset", d): ["task=lm", "backbone=gpt"] for d in LM_DATASETS},
    ("dataset", "modadd"): ["backbone=embedding_mlp"],
    **{("dataset", d): ["backbone=mlp"] for d in ["digits", "mnist1d", "spiral", *REAL_DATASETS, *FOLDER_DATASETS]},
    **{("backbone", b): ["dataset=cifar10"] for b in ("resnet18", "resnet50", "pvt")},
    ("backbone", "embedding_mlp"): ["dataset=modadd"],
    ("backbone", "toy_mlp"): ["task=algorithmic", "dataset=modular_addition"],
    ("backbone", "toy_transformer"): ["task=algorithmic", "dataset=lattice"],
    ("backbone", "pixels"): ["dataset=digits"],
    ("backbone", "gpt"): ["task=lm", "dataset=text_builtin"],
}


def image_tree(root) -> None:
    """Two classes of two 8 x 8 PNGs in train/ and test/ (an image folder the preflight accepts)."""
    from PIL import Image

    for split in ("train", "test"):
        for name in ("ant", "bee"):
            (root / split / name).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (8, 8), (40 * i, 90, 200)).save(root / split / name / f"{i}.png")


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in group_options(g)])
def test_option_composes_and_dry_builds(compose, group, option, tmp_path):
    (tmp_path / "t.txt").write_text("some text " * 400)
    for name in ("train.bin", "val.bin"):  # nanoGPT-format token files for openwebtext (experiment=paper_lm)
        torch.randint(0, 50257, (5000,), dtype=torch.int32).numpy().astype("uint16").tofile(tmp_path / name)
    for folder in FOLDER_DATASETS.values():
        image_tree(tmp_path / folder)
    extra = [f"dataset.path={tmp_path / 't.txt'}"] if (group, option) == ("dataset", "text_file") else []
    cfg, choices = compose(*PARTNER.get((group, option), []), f"{group}={option}", *extra, f"data_dir={tmp_path}")
    assert choices[group] == option
    if "download" in cfg.dataset:  # real datasets: claim a download so the missing files do not stop the check
        cfg.dataset.download = True
    validate(cfg)
    dry_build(cfg, choices)


@pytest.mark.parametrize("name", OFFLINE_DATASETS)
def test_offline_dataset_loads_disjoint_splits(compose, name):
    cfg, _ = compose(f"dataset={name}")
    splits: Splits = build(cfg, "dataset").load()
    sizes = splits.sizes()
    assert min(sizes.values()) > 0
    assert int(splits.y_train.max()) < splits.num_classes
    # spiral's splits are independent draws; the harmonic-loss paper's datasets draw examples with replacement
    # (docs/experiments/harmonic-toy.md: the share of test inputs also seen in training); the others are partitions of distinct examples
    if name in ("digits", "mnist1d", "modadd"):
        rows = {tuple(r.flatten().tolist()) for r in splits.x_train}
        assert not rows & {tuple(r.flatten().tolist()) for r in splits.x_test}


@pytest.mark.parametrize("name", REAL_DATASETS)
def test_missing_real_dataset_names_the_expected_path(compose, name, tmp_path):
    cfg, _ = compose(f"dataset={name}", f"data_dir={tmp_path}")
    dataset = build(cfg, "dataset")
    with pytest.raises(LossbenchError) as err:
        dataset.check()
    message = str(err.value)
    assert str(dataset.expected_path) in message and str(tmp_path) in message
    assert "dataset.download=true" in message
    with pytest.raises(LossbenchError):
        dataset.load()


@pytest.mark.parametrize("name", sorted(BACKBONE_INPUT))
def test_backbone_instantiates_and_gives_features(compose, name):
    cfg, _ = compose(f"backbone={name}")
    shape, vocab = BACKBONE_INPUT[name]
    net = build(cfg, "backbone", input_shape=shape, vocab_size=vocab)
    x = torch.randint(0, vocab, (3, *shape)) if vocab else torch.randn(3, *shape)
    net.eval()
    rows = 3 * shape[0] if name == "gpt" else 3
    assert net(x).shape == (rows, net.out_features)


def test_token_dataset_with_real_valued_backbone_is_a_clear_error(compose):
    cfg, _ = compose("backbone=mlp")
    with pytest.raises(LossbenchError, match="embedding_mlp"):
        build(cfg, "backbone", input_shape=(2,), vocab_size=59)


@pytest.mark.parametrize("name", group_options("distance"))
def test_harmonic_head_takes_every_distance(compose, name):
    cfg, _ = compose("loss=harmonic", f"distance={name}")
    head = build(cfg, "loss.head", in_features=5, num_classes=4)
    assert type(head.distance) is type(instantiate(cfg.distance))
    assert head(torch.randn(7, 5)).shape == (7, 4)
