"""Any image-classification tree in torchvision's ImageFolder layout (`<root>/{train,val,test}/<class>/<image>`).

TinyImageNet (`dataset=tinyimagenet`, laid out by scripts/prepare_tinyimagenet.py) and MarathiSign, the
Rethinking paper's other datasets, come as such trees. The class list is the training split's; every split
must have the same classes. Images are decoded once (PIL, as ImageFolder does), resized to `size` x `size`, and kept
in memory as one float tensor per split, normalised with `mean`/`std` or, when not given, with the
training split's per-channel statistics. Without a `val` folder, `val_fraction` of the training split is
held out for validation, as for the torchvision datasets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
import torchvision
from annotated_types import Interval
from PIL import Image
from torch import Tensor
from torchvision.transforms.v2.functional import pil_to_tensor

from lossbench import LossbenchError, SettingError
from lossbench.data.base import Splits, carve_validation
from lossbench.data.spec import DataSpec
from lossbench.data.vision import augmentation, check_jitter, standardise
from lossbench.ranges import NonNegativeFloat, NonNegativeInt, OpenFraction, PositiveInt

_MODES = {1: "L", 3: "RGB"}  # PIL modes


def _same_classes(folder: torchvision.datasets.ImageFolder, classes: list[str]) -> None:
    """One line naming the split folder when its class folders differ from the training split's."""
    if folder.classes != classes:
        extra, missing = set(folder.classes) - set(classes), set(classes) - set(folder.classes)
        raise LossbenchError(f"{folder.root}: its classes differ from the training split's "
                             f"(extra: {sorted(extra)[:5]}, missing: {sorted(missing)[:5]})")


def _header(path: str) -> None:
    """Read an image file's header (PIL identifies the format and size without decoding the pixels)."""
    try:
        with Image.open(path):
            pass
    except (OSError, SyntaxError, ValueError) as exc:
        raise LossbenchError(f"{path}: not a readable image ({exc})") from None


class ImageFolderDataset:
    """An ImageFolder tree under `root` with `train` and `test` (and optionally `val`) sub-folders."""

    kind = "labels"

    def __init__(
        self,
        root: str,
        size: PositiveInt,
        channels: Annotated[int, Interval(ge=1, le=3)] = 3,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        augment: bool = False,
        rotate_degrees: Annotated[float, Interval(ge=0, le=180)] = 0.0,
        color_jitter: list[NonNegativeFloat] | None = None,
        val_fraction: OpenFraction = 0.1,
        split_seed: NonNegativeInt = 0,
    ) -> None:
        if channels not in _MODES:
            raise SettingError(f"dataset.channels={channels}: choose 1 (greyscale) or 3 (RGB)")
        for key, stats in (("mean", mean), ("std", std)):
            if stats is not None and len(stats) != channels:
                raise SettingError(f"dataset.{key}={list(stats)}: give one value per channel ({channels})")
        self.root, self.size, self.channels = Path(root).expanduser(), size, channels
        self.mean, self.std = mean, std
        self.augment, self.rotate_degrees, self.color_jitter = augment, rotate_degrees, check_jitter(color_jitter)
        self.val_fraction, self.split_seed = val_fraction, split_seed

    def check(self) -> None:
        """One line naming the folder or file when a split is missing or empty, the training split has fewer
        than two classes, a split's classes differ from the training split's, or an image's header cannot be
        read (PIL opens each file without decoding it: cheap, and what a corrupt or non-image file fails)."""
        for split in ("train", "test"):
            if not (self.root / split).is_dir():
                raise LossbenchError(
                    f"image folder not found: expected {self.root / split}/<class>/<image> (and {self.root}/test, "
                    f"optionally {self.root}/val); set dataset.root or data_dir"
                )
        classes = None
        for split in ("train", "val", "test"):
            if split == "val" and not (self.root / split).is_dir():
                continue
            try:
                folder = torchvision.datasets.ImageFolder(str(self.root / split), loader=_header)
            except (FileNotFoundError, RuntimeError) as exc:  # no class folder, or a class without images
                raise LossbenchError(f"{self.root / split}: {str(exc).splitlines()[0]}") from None
            classes = classes or folder.classes
            if len(classes) < 2:
                raise LossbenchError(f"{self.root / split}: {len(classes)} class folder; a classifier needs at least two")
            _same_classes(folder, classes)
            for path, _ in folder.samples:
                _header(path)

    def spec(self) -> DataSpec:
        """The images' shape (channels x size x size after resizing) and the training split's classes."""
        self.check()
        return DataSpec.images(self.channels, self.size, len(torchvision.datasets.ImageFolder(
            str(self.root / "train"), loader=_header).classes))

    def load(self) -> Splits:
        self.check()
        train = torchvision.datasets.ImageFolder(str(self.root / "train"))
        x, y = self._read(train, train.classes)
        x_te, y_te = self._read(torchvision.datasets.ImageFolder(str(self.root / "test")), train.classes)
        if (self.root / "val").is_dir():
            x_val, y_val = self._read(torchvision.datasets.ImageFolder(str(self.root / "val")), train.classes)
            (x, x_val, x_te), (mean, std) = standardise(x, x_val, x_te, mean=self.mean, std=self.std)
        else:
            (x, x_te), (mean, std) = standardise(x, x_te, mean=self.mean, std=self.std)
            x, y, x_val, y_val = carve_validation(x, y, self.val_fraction, self.split_seed)
        augment = augmentation(self.augment, mean, std, self.rotate_degrees, self.color_jitter)
        return Splits(x, y, x_val, y_val, x_te, y_te, num_classes=len(train.classes), augment=augment)

    def _read(self, folder: torchvision.datasets.ImageFolder, classes: list[str]) -> tuple[Tensor, Tensor]:
        """Every image of one split as (N, C, size, size) floats in [0, 1], labels in the training split's order."""
        _same_classes(folder, classes)
        resize = torchvision.transforms.v2.Resize((self.size, self.size), antialias=True)
        images = []
        for path, _ in folder.samples:
            with Image.open(path) as image:
                images.append(resize(pil_to_tensor(image.convert(_MODES[self.channels]))))
        return torch.stack(images).float().div_(255.0), torch.tensor(folder.targets, dtype=torch.long)
