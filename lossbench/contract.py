"""What an extension point requires of a class, checked when the class is defined: a distance or a
criterion that leaves out part of its contract fails on import, with a message saying what to add,
instead of failing later in a test (AttributeError) or, worse, writing null columns in a real run."""

from __future__ import annotations

from collections.abc import Iterable


def require(cls: type, base: type, own: Iterable[str], inherited: Iterable[str], kind: str, where: str) -> None:
    """Raise TypeError unless `cls` declares each of `own` itself (a `name` is never borrowed from a parent:
    two classes would write the same label) and each of `inherited` itself or through a class between it
    and `base` (a class attribute, or a method overriding the base's placeholder). `kind` and `where` (the
    file that documents the contract) go into the message."""
    missing = [member for member in own if member not in vars(cls)]
    missing += [member for member in inherited
                if not any(member in vars(k) for k in cls.__mro__ if k is not base and issubclass(k, base))]
    if missing:
        raise TypeError(f"{kind} {cls.__module__}.{cls.__qualname__} must declare {', '.join(missing)} "
                        f"(the {kind} contract: {where}); a shared intermediate class says abstract=True")
