"""Training-batch augmentation of normalised image tensors, drawn from the run's own generator.

torchvision's transforms draw from torch's global RNG and work one PIL image at a time; lossbench keeps its
images as one normalised tensor and augments whole batches, with every random draw taken from the
generator that also orders the batches, so a run (and a resumed run) sees the same augmented images.
The operations and their ranges are torchvision's (RandomCrop with padding, RandomHorizontalFlip,
RandomRotation with nearest interpolation, ColorJitter), as the Rethinking reference code composes them
for ResNet-50 (docs/research/reference-code.md §2.1); colour jitter applies its four factors in a fixed order
(brightness, contrast, saturation, hue) where torchvision shuffles them per image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor


@dataclass(frozen=True)
class Augment:
    """Random crop after zero padding, horizontal flip, rotation by up to `rotate_degrees`, colour jitter.

    `mean`/`std` are the per-channel statistics the images were normalised with: colour jitter and the
    rotation's black fill act on the [0, 1] images, as torchvision's do before Normalize.
    """

    mean: Tensor
    std: Tensor
    crop_padding: int = 4
    flip: bool = True
    rotate_degrees: float = 0.0
    jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # brightness, contrast, saturation, hue

    def __call__(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        if self.crop_padding or self.flip:
            x = random_crop_flip(x, generator, self.crop_padding, self.flip)
        if self.rotate_degrees or any(self.jitter):
            mean, std = self.mean.to(x), self.std.to(x)
            pixels = x * std + mean
            if self.rotate_degrees:
                pixels = rotate(pixels, uniform(x.shape[0], self.rotate_degrees, generator))
            if any(self.jitter):
                pixels = color_jitter(pixels, self.jitter, generator)
            x = (pixels - mean) / std
        return x


def uniform(n: int, half_width: float, generator: torch.Generator | None, centre: float = 0.0) -> Tensor:
    """n draws from U[centre - half_width, centre + half_width]."""
    return centre + (2 * torch.rand(n, generator=generator) - 1) * half_width


def random_crop_flip(x: Tensor, generator: torch.Generator | None, padding: int = 4, flip: bool = True) -> Tensor:
    """Standard CIFAR augmentation on a batch: random crop after zero padding, random horizontal flip."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).tolist()
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).tolist()
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    if flip:
        idx = torch.rand(n, generator=generator).lt(0.5).nonzero().flatten()
        out[idx] = out[idx].flip(-1)
    return out


def rotate(x: Tensor, degrees: Tensor) -> Tensor:
    """Rotate each image of x (N, C, H, W) by its angle (degrees, counter-clockwise as torchvision) about
    its centre; nearest-neighbour sampling, zero (black) fill, as RandomRotation's defaults."""
    theta = degrees.to(x) * (math.pi / 180.0)
    cos, sin = theta.cos(), theta.sin()
    # affine_grid maps output to input coordinates; a counter-clockwise image rotation samples at R(-theta).
    matrix = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], -1),
                          torch.stack([sin, cos, torch.zeros_like(cos)], -1)], 1)
    grid = torch.nn.functional.affine_grid(matrix, list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def color_jitter(x: Tensor, jitter: tuple[float, float, float, float], generator: torch.Generator | None) -> Tensor:
    """torchvision ColorJitter(brightness, contrast, saturation, hue) on [0, 1] RGB images, a factor per image."""
    brightness, contrast, saturation, hue = jitter
    n = x.shape[0]
    if brightness:
        x = (x * uniform(n, brightness, generator, 1.0).to(x).view(n, 1, 1, 1)).clamp(0, 1)
    if contrast:
        grey_mean = TF.rgb_to_grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
        factor = uniform(n, contrast, generator, 1.0).to(x).view(n, 1, 1, 1)
        x = (factor * x + (1 - factor) * grey_mean).clamp(0, 1)
    if saturation:
        factor = uniform(n, saturation, generator, 1.0).to(x).view(n, 1, 1, 1)
        x = (factor * x + (1 - factor) * TF.rgb_to_grayscale(x)).clamp(0, 1)
    if hue:
        shifts = uniform(n, hue, generator).tolist()
        x = torch.stack([TF.adjust_hue(img, shift) for img, shift in zip(x, shifts)])
    return x
