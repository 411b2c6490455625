"""A sweep's overrides as a search space: which keys a sweeper searches (Hydra's `interval(...)`,
`choice(...)`, `range(...)`, comma lists, `tag(log, ...)`) and which are fixed, and one representative
value of each searched key, so the preflight can compose a config that names every key."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.errors import OverrideParseException

from lossbench import LossbenchError


def parse(overrides: Sequence[str]) -> list[Override]:
    """Hydra's parse of the overrides; malformed syntax (`lr=interval(1e-4`) is one LossbenchError line."""
    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as exc:
        bad = next((o for o in overrides if _malformed(o)), "")
        raise LossbenchError(f"cannot parse the override '{bad}': {str(exc).splitlines()[0]}") from None


def _malformed(override: str) -> bool:
    try:
        OverridesParser.create().parse_overrides([override])
        return False
    except OverrideParseException:
        return True


def split(overrides: Sequence[str]) -> tuple[list[str], dict[str, Override]]:
    """(the fixed overrides as written, {key: parsed override} of the searched ones)."""
    fixed, searched = [], {}
    for override in parse(overrides):
        if override.is_sweep_override():
            searched[override.get_key_element()] = override
        else:
            fixed.append(override.input_line)
    return fixed, searched


def representative(override: Override) -> str:
    """`key=value` with one value the sweep can take (an interval's start, the first choice, a range's
    start): enough to compose a config that has the key."""
    value = override.value()
    if isinstance(value, IntervalSweep):
        first = value.start
    elif isinstance(value, RangeSweep):
        first = value.start
    elif isinstance(value, ChoiceSweep):
        first = next(iter(override.sweep_iterator()))
    else:  # a glob or another sweep kind: its first expansion
        first = next(iter(override.sweep_iterator()))
    return f"{override.get_key_element()}={first}"
