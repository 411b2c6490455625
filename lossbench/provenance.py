"""Where a result came from: code version, package versions, machine."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

import lossbench


def git_state(path: Path) -> tuple[str | None, bool | None]:
    """(commit sha, dirty flag) of the git work tree holding `path`, or (None, None) outside git."""
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(path), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, None
    return sha, dirty


def device_name(device: torch.device) -> str:
    """The device's model name (the GPU's, or the CPU's) for the row's provenance."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def _installed_version(package: str) -> str | None:
    """The installed version of a package, read from its metadata: importing an optional dependency
    (CodeCarbon) on the path that writes a finished run's row could fail and lose the run."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def provenance(device: torch.device) -> dict[str, Any]:
    """Columns that say which code, libraries and machine produced a row."""
    import numpy

    sha, dirty = git_state(Path(lossbench.__file__).resolve().parent)
    return {
        "git_sha": sha,
        "git_dirty": dirty,
        "lossbench_version": lossbench.__version__,
        "torch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "codecarbon_version": _installed_version("codecarbon"),
        "python_version": sys.version.split()[0],
        "device": str(device),
        "device_name": device_name(device),
    }
