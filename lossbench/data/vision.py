"""Real image datasets (MNIST, Fashion-MNIST, CIFAR-10/100) read by torchvision from a local folder.

Nothing is downloaded unless `download=true` is asked for. The images are loaded once into a float
tensor normalised with the training split's per-channel mean and std.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import Tensor

from lossbench import LossbenchError
from lossbench.data.base import Splits, carve_validation
from lossbench.ranges import NonNegativeInt, OpenFraction

_NUM_CLASSES = {"MNIST": 10, "FashionMNIST": 10, "CIFAR10": 10, "CIFAR100": 100}


class TorchvisionDataset:
    """One torchvision classification dataset; `name` is the torchvision class (e.g. CIFAR10)."""

    kind = "labels"

    def __init__(
        self,
        name: str,
        root: str,
        download: bool = False,
        augment: bool = False,
        val_fraction: OpenFraction = 0.1,
        split_seed: NonNegativeInt = 0,
    ) -> None:
        if name not in _NUM_CLASSES:
            raise LossbenchError(f"unknown torchvision dataset '{name}'; choose one of: {', '.join(_NUM_CLASSES)}")
        self.name, self.root = name, Path(root).expanduser()
        self.download, self.augment, self.val_fraction, self.split_seed = download, augment, val_fraction, split_seed

    @property
    def expected_path(self) -> Path:
        """Where torchvision looks for the files (CIFAR: its batch folder; MNIST-style: <Name>/raw)."""
        cls = getattr(torchvision.datasets, self.name)
        folder = getattr(cls, "base_folder", None)
        return self.root / folder if folder else self.root / self.name / "raw"

    def check(self) -> None:
        """Fail with the expected location (and how to fetch it) when the files are absent."""
        if self.download or self.expected_path.exists():
            return
        raise LossbenchError(
            f"{self.name} not found: expected {self.expected_path}. Put the torchvision files there, "
            f"point data_dir at their parent, or fetch them once on a machine with internet: "
            f"add dataset.download=true data_dir={self.root} to the same command"
        )

    def load(self) -> Splits:
        self.check()
        cls = getattr(torchvision.datasets, self.name)
        try:
            train, test = (cls(str(self.root), train=flag, download=self.download) for flag in (True, False))
        except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
            raise LossbenchError(f"{self.name} under {self.expected_path}: {exc}") from None
        x, y = _to_tensors(train)
        x_te, y_te = _to_tensors(test)
        mean, std = x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), keepdim=True)
        x, x_te = (x - mean) / std, (x_te - mean) / std
        x_tr, y_tr, x_val, y_val = carve_validation(x, y, self.val_fraction, self.split_seed)
        return Splits(
            x_tr, y_tr, x_val, y_val, x_te, y_te,
            num_classes=_NUM_CLASSES[self.name],
            augment=random_crop_flip if self.augment else None,
        )


def _to_tensors(ds: torchvision.datasets.VisionDataset) -> tuple[Tensor, Tensor]:
    """(N, C, H, W) floats in [0, 1] and integer labels from a torchvision dataset's raw arrays."""
    data = torch.as_tensor(ds.data)
    data = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)  # MNIST (N,H,W); CIFAR (N,H,W,C)
    return data.float().div_(255.0), torch.as_tensor(ds.targets, dtype=torch.long)


def random_crop_flip(x: Tensor, generator: torch.Generator | None, padding: int = 4) -> Tensor:
    """Standard CIFAR augmentation on a batch: random crop after zero padding, random horizontal flip."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).tolist()
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).tolist()
    flip = torch.rand(n, generator=generator).lt(0.5).tolist()
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    idx = [i for i, f in enumerate(flip) if f]
    out[idx] = out[idx].flip(-1)
    return out
