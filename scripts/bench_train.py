"""Training throughput: lossbench's ResNet-18 CIFAR run against a hand-tuned bare loop, in one process.

Both train torchvision's ResNet-18 with the CIFAR stem (3x3 stride-1 convolution, no max-pool) on
synthetic CIFAR-shaped tensors (50k 3x32x32 images, 10 classes) held on the GPU, batch 512, SGD with
momentum, bf16 autocast and channels_last, each with and without torch.compile:

- bare: the loop a performance engineer writes (airbench style): one randperm per epoch, index,
  forward, cross-entropy, backward, step; nothing recorded.
- lossbench: `Trainer.fit` of the composed run (`dataset=cifar10 backbone=resnet18 loss=ce optim=sgd
  trainer.precision=bf16 trainer.channels_last=true trainer.compile=...`) with everything lossbench
  records per step (gradient norm before clipping, loss, training accuracy) and a validation pass per
  epoch (not timed: the trainer's own per-epoch `samples_per_s` counts training steps only).

Images/s is the median over the epochs after the first (the first pays compilation and autotuning).

    python scripts/bench_train.py                       # CUDA, 4 epochs
    python scripts/bench_train.py --device cpu --images 2048 --batch 256 --epochs 2 --no-compile   # a smoke check
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from lossbench.config import compose_run
from lossbench.data.base import Splits
from lossbench.build import build, build_criterion, build_model


def synthetic_cifar(images: int, device: torch.device) -> Splits:
    """Random CIFAR-shaped tensors on the device (throughput does not depend on pixel values)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(images, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (images,), generator=g)
    val = min(1000, images)
    return Splits(x, y, x[:val].clone(), y[:val].clone(), x[:val].clone(), y[:val].clone(), 10).to(device)


def bare(splits: Splits, batch: int, epochs: int, compile: bool) -> list[float]:
    """Images/s per epoch of the hand-tuned loop."""
    device = splits.x_train.device
    net = torchvision.models.resnet18(num_classes=10)
    net.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net = net.to(device, memory_format=torch.channels_last)
    step_model = torch.compile(net, dynamic=False) if compile else net
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = splits.x_train.contiguous(memory_format=torch.channels_last)
    y = splits.y_train
    rates = []
    for _ in range(epochs):
        torch.cuda.synchronize(device) if device.type == "cuda" else None
        t0 = time.perf_counter()
        order = torch.randperm(len(y), device=device)
        for start in range(0, len(y), batch):
            idx = order[start:start + batch]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = F.cross_entropy(step_model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize(device) if device.type == "cuda" else None
        rates.append(len(y) / (time.perf_counter() - t0))
    return rates


def lossbench(splits: Splits, batch: int, epochs: int, compile: bool, device: str) -> list[float]:
    """Images/s per epoch of lossbench's Trainer on the composed ResNet-18 CIFAR run."""
    cfg, _ = compose_run(["dataset=cifar10", "backbone=resnet18", "loss=ce", "optim=sgd", f"device={device}",
                          "trainer.precision=bf16", "trainer.channels_last=true", f"trainer.compile={compile}",
                          f"trainer.batch_size={batch}", f"trainer.epochs={epochs}", "trainer.eval_test_each_epoch=false",
                          "trainer.progress=false", "tracker=off"])
    model = build_model(cfg, splits).to(device)
    trainer = build(cfg, "trainer")
    optimizer = build(cfg, "optim.optimizer", model.parameters())
    scheduler = build(cfg, "optim.scheduler", optimizer, total_steps=trainer.planned_steps(splits))
    fit = trainer.fit(model, build_criterion(cfg), optimizer, scheduler, splits, torch.Generator().manual_seed(0),
                      build(cfg, "task"))
    return [row["samples_per_s"] for row in fit.history]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--no-compile", action="store_true", help="eager only (skip the compiled pair)")
    args = parser.parse_args()
    device = torch.device(args.device)
    splits = synthetic_cifar(args.images, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}, torch {torch.__version__}; ResNet-18 (CIFAR stem), {args.images} synthetic 3x32x32 "
          f"images, batch {args.batch}, bf16 autocast + channels_last, {args.epochs} epochs; "
          "images/s = median of epochs 2..\n")
    print("| loop | torch.compile | images/s | lossbench / bare |\n|---|---|---|---|")
    for compile in ([False] if args.no_compile else [False, True]):
        b = statistics.median(bare(splits, args.batch, args.epochs, compile)[1:])
        lb = statistics.median(lossbench(splits, args.batch, args.epochs, compile, args.device)[1:])
        print(f"| bare | {compile} | {b:.0f} | |", flush=True)
        print(f"| lossbench | {compile} | {lb:.0f} | {lb / b:.2f} |", flush=True)


if __name__ == "__main__":
    main()
