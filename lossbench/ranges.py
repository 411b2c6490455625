"""Bounded setting types: `Annotated` hints with `annotated_types` constraints, declared where a class
takes the setting (e.g. `epochs: PositiveInt`), and checked for every job in preflight (config.py), so an
out-of-range value is one line naming the key, the value and the valid range, before anything is written.

`annotated_types` is the constraint vocabulary pydantic and others share; what it lacks is a checker
for plain config values and a one-line description of a range, written here.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from annotated_types import Ge, Gt, Interval, Le, Lt, MinLen

PositiveInt = Annotated[int, Ge(1)]
NonNegativeInt = Annotated[int, Ge(0)]
PositiveFloat = Annotated[float, Gt(0)]
NonNegativeFloat = Annotated[float, Ge(0)]
OpenFraction = Annotated[float, Interval(gt=0, lt=1)]  # (0, 1): a split's share of the data
Probability = Annotated[float, Interval(ge=0, le=1)]  # [0, 1]
UnitInterval = Annotated[float, Interval(ge=0, lt=1)]  # [0, 1): a decay rate (Adam's betas)
Seed = Annotated[int, Interval(ge=0, le=2**63 - 1)]  # torch.manual_seed takes 64-bit values; stay signed-safe


def _bounds(constraint: Any) -> list[tuple[str, float]]:
    """(operator, bound) pairs of one constraint."""
    if isinstance(constraint, Interval):
        pairs = [(">", constraint.gt), (">=", constraint.ge), ("<", constraint.lt), ("<=", constraint.le)]
        return [(op, b) for op, b in pairs if b is not None]
    for kind, op, field in ((Gt, ">", "gt"), (Ge, ">=", "ge"), (Lt, "<", "lt"), (Le, "<=", "le")):
        if isinstance(constraint, kind):
            return [(op, getattr(constraint, field))]
    return []


_OPS = {">": lambda v, b: v > b, ">=": lambda v, b: v >= b, "<": lambda v, b: v < b, "<=": lambda v, b: v <= b}


def satisfies(value: Any, constraints: tuple[Any, ...]) -> bool:
    """True when a value (already of the right type) meets every constraint (numbers: no NaN)."""
    for constraint in constraints:
        if isinstance(constraint, MinLen):
            if len(value) < constraint.min_length:
                return False
            continue
        pairs = _bounds(constraint)
        if pairs and (not isinstance(value, (int, float)) or math.isnan(value)):
            return False
        if not all(_OPS[op](value, bound) for op, bound in pairs):
            return False
    return True


def describe(constraints: tuple[Any, ...]) -> str:
    """`>= 1`, `> 0 and < 1`, `at least 1 item`."""
    parts = []
    for constraint in constraints:
        if isinstance(constraint, MinLen):
            parts.append(f"at least {constraint.min_length} item{'s' if constraint.min_length != 1 else ''}")
        parts += [f"{op} {bound:g}" if isinstance(bound, float) else f"{op} {bound}" for op, bound in _bounds(constraint)]
    return " and ".join(parts)
