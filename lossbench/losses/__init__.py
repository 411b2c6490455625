"""Criteria: map (logits, target, step) to a scalar loss. They work on any head's logits."""

from lossbench.losses.base import Criterion

__all__ = ["Criterion"]
