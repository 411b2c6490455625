"""Datasets: each builder returns a `Splits` of in-memory tensors (train / val / test)."""

from lossbench.data.base import Splits, TensorLoader

__all__ = ["Splits", "TensorLoader"]
