"""`dataset=imagefolder` on trees of PNGs written here, `dataset=tinyimagenet` through
scripts/prepare_tinyimagenet.py on a fake tiny-imagenet-200 download, and the batch augmentations against
torchvision's own functional transforms."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image

from lossbench.build import build
from lossbench.data.augment import Augment, color_jitter, rotate
from lossbench.results import load_runs
from lossbench.run import execute

ROOT = Path(__file__).resolve().parents[1]


def write_tree(root: Path, splits: dict[str, int], classes=("ant", "bee", "cat"), size=(12, 10), mode="RGB") -> None:
    """split -> images per class; each class has its own mean colour so a model can tell them apart."""
    rng = np.random.default_rng(0)
    for split, per_class in splits.items():
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
                pixels = np.clip(rng.normal(60 + 70 * k, 20, shape), 0, 255).astype(np.uint8)
                Image.fromarray(pixels, mode).save(folder / f"{i}.png")


def test_imagefolder_loads_resizes_normalises_and_keeps_the_training_class_order(compose, tmp_path):
    write_tree(tmp_path / "tree", {"train": 10, "val": 3, "test": 4})
    cfg, _ = compose("dataset=imagefolder", f"dataset.root={tmp_path / 'tree'}", "dataset.size=8")
    splits = build(cfg, "dataset").load()
    assert splits.input_shape == (3, 8, 8) and splits.num_classes == 3
    assert splits.sizes() == {"n_train": 30, "n_val": 9, "n_test": 12}
    assert splits.y_test.tolist() == [0] * 4 + [1] * 4 + [2] * 4  # ant, bee, cat: sorted folder names
    x = splits.x_train
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-4 and (x.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3
    # the classes differ in brightness, and the normalised test images keep that order
    means = [float(splits.x_test[splits.y_test == k].mean()) for k in range(3)]
    assert means == sorted(means)


def test_imagefolder_carves_validation_from_train_and_takes_given_statistics(compose, tmp_path):
    write_tree(tmp_path / "tree", {"train": 10, "test": 2}, mode="L")
    cfg, _ = compose("dataset=imagefolder", f"dataset.root={tmp_path / 'tree'}", "dataset.size=6", "dataset.channels=1",
                     "dataset.mean=[0.5]", "dataset.std=[0.25]", "dataset.val_fraction=0.2")
    splits = build(cfg, "dataset").load()
    assert splits.input_shape == (1, 6, 6) and splits.sizes() == {"n_train": 24, "n_val": 6, "n_test": 6}
    raw = build(cfg, "dataset")._read(__import__("torchvision").datasets.ImageFolder(str(tmp_path / "tree" / "test")),
                                      ["ant", "bee", "cat"])[0]
    torch.testing.assert_close(splits.x_test, (raw - 0.5) / 0.25)


def test_imagefolder_trains_end_to_end_with_augmentation(compose, tmp_path):
    write_tree(tmp_path / "tree", {"train": 8, "test": 3})
    cfg, choices = compose("dataset=imagefolder", f"dataset.root={tmp_path / 'tree'}", "dataset.size=8",
                           "dataset.augment=true", "+dataset.rotate_degrees=10", "+dataset.color_jitter=[0.2,0.2,0.2,0.1]",
                           "backbone=cnn", "backbone.channels=[4,8]", "loss=harmonic", "trainer.batch_size=8")
    assert execute(cfg, choices).summary["status"] == "completed"
    row = load_runs(cfg.results_dir).iloc[0]
    assert row.status == "completed" and row.n_test == 9


def test_a_missing_image_folder_is_one_line_naming_the_folder(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lossbench", "run", "dataset=tinyimagenet", f"data_dir={tmp_path}",
                           "tracker=off", f"results_dir={tmp_path / 'results'}"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and str(tmp_path / "tiny-imagenet-200-folders" / "train") in lines[0], proc.stderr
    assert not (tmp_path / "results").exists()


def test_imagefolder_rejects_splits_with_other_classes(compose, tmp_path):
    write_tree(tmp_path / "tree", {"train": 2})
    write_tree(tmp_path / "tree", {"test": 2}, classes=("ant", "bee", "dog"))
    cfg, _ = compose("dataset=imagefolder", f"dataset.root={tmp_path / 'tree'}", "dataset.size=4")
    with pytest.raises(Exception, match=r"classes differ from the training split's \(extra: \['dog'\], missing: \['cat'\]\)"):
        build(cfg, "dataset").load()


def _fake_tiny_imagenet(root: Path, wnids=("n01", "n02"), per_class: int = 3) -> None:
    for wnid in wnids:
        images = root / "train" / wnid / "images"
        images.mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (64, 64), (40 * i, 100, 7)).save(images / f"{wnid}_{i}.JPEG", format="JPEG")
    (root / "val" / "images").mkdir(parents=True)
    lines = []
    for j, wnid in enumerate(wnids * 2):
        name = f"val_{j}.JPEG"
        Image.new("RGB", (64, 64), (0, 0, 50 * j)).save(root / "val" / "images" / name, format="JPEG")
        lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    (root / "test" / "images").mkdir(parents=True)  # unlabelled: not used


def test_prepare_tinyimagenet_lays_out_the_download_for_dataset_tinyimagenet(compose, tmp_path):
    _fake_tiny_imagenet(tmp_path / "tiny-imagenet-200")
    script = [sys.executable, str(ROOT / "scripts" / "prepare_tinyimagenet.py"), str(tmp_path / "tiny-imagenet-200"),
              str(tmp_path / "tiny-imagenet-200-folders")]
    first = subprocess.run(script, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    out = tmp_path / "tiny-imagenet-200-folders"
    assert sorted(p.name for p in (out / "train" / "n01").iterdir()) == ["n01_0.JPEG", "n01_1.JPEG", "n01_2.JPEG"]
    assert sorted(p.name for p in (out / "test" / "n02").iterdir()) == ["val_1.JPEG", "val_3.JPEG"]  # per annotations
    again = subprocess.run(script, capture_output=True, text=True, check=False)
    assert again.returncode == 0 and "(0 new)" in again.stderr  # a re-run over a finished tree is a no-op
    cfg, _ = compose("dataset=tinyimagenet", f"data_dir={tmp_path}")
    splits = build(cfg, "dataset").load()
    assert splits.input_shape == (3, 64, 64) and splits.num_classes == 2 and len(splits.y_test) == 4


def test_prepare_tinyimagenet_refuses_a_folder_that_is_not_the_download(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "prepare_tinyimagenet.py"), str(tmp_path),
                           str(tmp_path / "out")], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "val_annotations.txt" in proc.stderr and not (tmp_path / "out").exists()


# --- augmentation against torchvision's functional transforms ------------------------------------------------


def test_rotation_matches_torchvisions_rotate_with_nearest_interpolation():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 17, 17, generator=g)
    angles = torch.tensor([0.0, 10.0, -10.0, 15.0, -7.5, 90.0])
    ours = rotate(x, angles)
    for img, angle, mine in zip(x, angles.tolist(), ours):
        theirs = TF.rotate(img, angle, interpolation=TF.InterpolationMode.NEAREST, fill=0.0)
        agree = (mine - theirs).abs().lt(1e-6).float().mean()
        assert agree > 0.97, (angle, float(agree))  # pixel centres on a rounding boundary may pick a neighbour


def test_colour_jitter_matches_torchvisions_adjustments_for_the_drawn_factors():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 9, 9, generator=g)
    jitter = (0.2, 0.2, 0.2, 0.1)
    ours = color_jitter(x, jitter, torch.Generator().manual_seed(5))
    draws = torch.Generator().manual_seed(5)  # the same draws, in the same order
    b = 1 + (2 * torch.rand(4, generator=draws) - 1) * 0.2
    c = 1 + (2 * torch.rand(4, generator=draws) - 1) * 0.2
    s = 1 + (2 * torch.rand(4, generator=draws) - 1) * 0.2
    h = (2 * torch.rand(4, generator=draws) - 1) * 0.1
    for i in range(4):
        img = TF.adjust_brightness(x[i], float(b[i]))
        img = TF.adjust_contrast(img, float(c[i]))
        img = TF.adjust_saturation(img, float(s[i]))
        img = TF.adjust_hue(img, float(h[i]))
        torch.testing.assert_close(ours[i], img, atol=1e-5, rtol=0)


def test_augmentation_is_drawn_from_the_runs_generator_and_keeps_normalised_images_normalised():
    mean, std = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    augment = Augment(mean, std, rotate_degrees=15.0, jitter=(0.2, 0.2, 0.2, 0.1))
    x = (torch.rand(8, 3, 16, 16) - mean) / std
    one = augment(x, torch.Generator().manual_seed(3))
    two = augment(x, torch.Generator().manual_seed(3))
    assert torch.equal(one, two) and not torch.equal(one, x)
    pixels = one * std + mean  # jitter clamps to [0, 1] before re-normalising
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
