"""Real image datasets (MNIST, Fashion-MNIST, CIFAR-10/100) read by torchvision from a local folder.

Nothing is downloaded unless `download=true` is asked for. The images are loaded once into a float
tensor normalised with the training split's per-channel mean and std (`standardise`, shared with
`dataset=imagefolder`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
import torchvision
from annotated_types import Interval
from torch import Tensor

from lossbench import LossbenchError, SettingError
from lossbench.data.augment import Augment
from lossbench.data.base import Splits, carve_validation
from lossbench.data.spec import DataSpec
from lossbench.ranges import NonNegativeFloat, NonNegativeInt, OpenFraction

_NUM_CLASSES = {"MNIST": 10, "FashionMNIST": 10, "CIFAR10": 10, "CIFAR100": 100}
_IMAGES = {"MNIST": (1, 28), "FashionMNIST": (1, 28), "CIFAR10": (3, 32), "CIFAR100": (3, 32)}  # channels, size
STD_FLOOR = 1e-6  # a channel with (nearly) no spread is divided by this, not by zero


class TorchvisionDataset:
    """One torchvision classification dataset; `name` is the torchvision class (e.g. CIFAR10)."""

    kind = "labels"
    spec_reads_files = False  # spec() is known from the name: a cluster job's model is built at submission

    def __init__(
        self,
        name: str,
        root: str,
        download: bool = False,
        augment: bool = False,
        val_fraction: OpenFraction = 0.1,
        split_seed: NonNegativeInt = 0,
        rotate_degrees: Annotated[float, Interval(ge=0, le=180)] = 0.0,
        color_jitter: list[NonNegativeFloat] | None = None,
    ) -> None:
        if name not in _NUM_CLASSES:
            raise LossbenchError(f"unknown torchvision dataset '{name}'; choose one of: {', '.join(_NUM_CLASSES)}")
        self.name, self.root = name, Path(root).expanduser()
        self.download, self.augment, self.val_fraction, self.split_seed = download, augment, val_fraction, split_seed
        self.rotate_degrees, self.color_jitter = rotate_degrees, check_jitter(color_jitter)

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

    def spec(self) -> DataSpec:
        """The images' shape and classes, known without reading the files."""
        channels, size = _IMAGES[self.name]
        return DataSpec.images(channels, size, _NUM_CLASSES[self.name])

    def load(self) -> Splits:
        self.check()
        cls = getattr(torchvision.datasets, self.name)
        try:
            train, test = (cls(str(self.root), train=flag, download=self.download) for flag in (True, False))
        except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
            raise LossbenchError(f"{self.name} under {self.expected_path}: {exc}") from None
        x, y = _to_tensors(train)
        x_te, y_te = _to_tensors(test)
        (x, x_te), (mean, std) = standardise(x, x_te)
        x_tr, y_tr, x_val, y_val = carve_validation(x, y, self.val_fraction, self.split_seed)
        augment = augmentation(self.augment, mean, std, self.rotate_degrees, self.color_jitter)
        return Splits(x_tr, y_tr, x_val, y_val, x_te, y_te, num_classes=_NUM_CLASSES[self.name], augment=augment)


def standardise(train: Tensor, *others: Tensor, mean: list[float] | None = None, std: list[float] | None = None
                ) -> tuple[tuple[Tensor, ...], tuple[Tensor, Tensor]]:
    """(train, *others) minus the per-channel mean, over the std: the training split's statistics unless
    given (a NCHW float tensor each); returns the tensors and the (1, C, 1, 1) mean and std used. A std
    below STD_FLOOR (a constant channel: every pixel the same) is STD_FLOOR, so that channel becomes zeros
    instead of a division by zero that would make the first training step non-finite."""
    m = train.mean(dim=(0, 2, 3), keepdim=True) if mean is None else torch.tensor(mean).view(1, -1, 1, 1)
    s = train.std(dim=(0, 2, 3), keepdim=True) if std is None else torch.tensor(std).view(1, -1, 1, 1)
    s = s.clamp_min(STD_FLOOR)
    return tuple((t - m) / s for t in (train, *others)), (m, s)


def check_jitter(color_jitter: list[float] | None) -> list[float] | None:
    """color_jitter is [brightness, contrast, saturation, hue], hue at most 0.5 (torchvision's ranges)."""
    if color_jitter is not None and (len(color_jitter) != 4 or color_jitter[3] > 0.5):
        raise SettingError(f"dataset.color_jitter={list(color_jitter)}: give [brightness, contrast, saturation, hue], "
                           "each >= 0, hue <= 0.5")
    return color_jitter


def augmentation(enabled: bool, mean: Tensor, std: Tensor, rotate_degrees: float = 0.0,
                 color_jitter: list[float] | None = None) -> Augment | None:
    """The training augmentation a dataset's settings ask for: crop + flip when enabled, plus the optional
    rotation and colour jitter (torchvision's ColorJitter(brightness, contrast, saturation, hue))."""
    if not enabled:
        return None
    jitter = tuple(color_jitter) if color_jitter else (0.0, 0.0, 0.0, 0.0)
    return Augment(mean, std, rotate_degrees=rotate_degrees, jitter=jitter)  # type: ignore[arg-type]


def _to_tensors(ds: torchvision.datasets.VisionDataset) -> tuple[Tensor, Tensor]:
    """(N, C, H, W) floats in [0, 1] and integer labels from a torchvision dataset's raw arrays."""
    data = torch.as_tensor(ds.data)
    data = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)  # MNIST (N,H,W); CIFAR (N,H,W,C)
    return data.float().div_(255.0), torch.as_tensor(ds.targets, dtype=torch.long)
