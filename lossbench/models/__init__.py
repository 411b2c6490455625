"""Backbones (features only) and heads (linear or distance prototypes), joined by `Classifier`."""

from lossbench.models.classifier import Classifier

__all__ = ["Classifier"]
