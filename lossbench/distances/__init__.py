"""Distance metrics for harmonic heads: each maps features x (M, N) and prototypes w (V, N) to d (M, V) >= 0."""

from lossbench.distances.base import Distance

__all__ = ["Distance"]
