"""lossbench: compare cross-entropy, harmonic (distance-head) and other losses on equal terms."""

__version__ = "0.1.0"


class LossbenchError(Exception):
    """An error caused by the user's input or environment, reported as one line with exit code 2."""
