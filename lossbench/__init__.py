"""lossbench: compare cross-entropy, harmonic (distance-head) and other losses on equal terms."""

__version__ = "0.1.0"


class LossbenchError(Exception):
    """An error caused by the user's input or environment, reported as one line with exit code 2."""


class SettingError(LossbenchError, ValueError):
    """A configured value that a class rejects (a negative exponent, an empty split): the one error type
    that constructors raise for bad settings; reported as one line naming the config node, exit code 2."""
