"""The torchvision path with small fake files in torchvision's own on-disk formats (no download)."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import torchvision.datasets.cifar

from lossbench.build import build
from lossbench.results import load_runs
from lossbench.run import execute


def _write_idx(path, array: np.ndarray) -> None:
    """MNIST's idx format: magic (0, 0, dtype 0x08, ndim), big-endian dims, raw uint8 data."""
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def fake_mnist(root, folder: str, n_train: int = 60, n_test: int = 20) -> None:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


def fake_cifar(root, n: int = 20, classes: int = 10) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(np.arange(n) % classes)}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(classes)]}))


@pytest.mark.parametrize("option,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_style_dataset_loads_from_data_dir(compose, tmp_path, option, folder):
    fake_mnist(tmp_path / "data", folder)
    cfg, choices = compose(f"dataset={option}", f"data_dir={tmp_path / 'data'}", "backbone=cnn", "backbone.channels=[4,8]")
    splits = build(cfg, "dataset").load()
    assert splits.input_shape == (1, 28, 28) and splits.sizes() == {"n_train": 54, "n_val": 6, "n_test": 20}
    assert abs(float(splits.x_train.mean())) < 0.2  # normalised with the training mean / std
    execute(cfg, choices)
    assert load_runs(cfg.results_dir).status.tolist() == ["completed"]


def test_cifar10_loads_with_augmentation_and_trains_a_resnet(compose, tmp_path, monkeypatch):
    fake_cifar(tmp_path / "data")
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args: True)  # fake files: no md5
    cfg, choices = compose("dataset=cifar10", f"data_dir={tmp_path / 'data'}", "backbone=resnet18", "trainer.batch_size=50")
    splits = build(cfg, "dataset").load()
    assert splits.input_shape == (3, 32, 32) and splits.augment is not None
    augmented = splits.augment(splits.x_train[:8], None)
    assert augmented.shape == (8, 3, 32, 32)
    execute(cfg, choices)
    row = load_runs(cfg.results_dir).iloc[0]
    assert (row.dataset, row.backbone, row.n_params > 11_000_000) == ("cifar10", "resnet18", True)
