"""Every declared setting (an `Annotated` bound or a `Literal` choice in the type hints of the class it
configures, or a root key) rejects out-of-range and wrong-type values in preflight: exit code 2, one
line naming the key, and nothing written. Values are drawn by hypothesis from the declared bounds."""

from __future__ import annotations

import inspect
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path

from annotated_types import Ge, Gt, Interval, Le, Lt, MinLen
from hydra.utils import get_class
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig
from typer.testing import CliRunner

from lossbench.cli import app
from lossbench.config import GROUPS, compose_run, group_options
from lossbench.validate import ROOT_TYPES

# what selecting an option needs besides itself (token datasets need task=lm, text_file a path)
NEEDS = {("dataset", "text_file"): ["task=lm", "dataset.path=/nonexistent.txt"], ("dataset", "text_builtin"): ["task=lm"],
         ("dataset", "openwebtext"): ["task=lm"], ("loss/head", "distance"): ["loss=harmonic"]}


@dataclass(frozen=True)
class Setting:
    select: tuple[str, ...]  # overrides that select the config holding it
    key: str
    hint: typing.Any


def _declared(hint: typing.Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is typing.Annotated or origin is typing.Literal:
        return True
    return origin in (typing.Union, types.UnionType) and any(_declared(a) for a in typing.get_args(hint))


def _walk(node: DictConfig, path: str):
    if "_target_" in node:
        yield path, node
    for key in node:
        if isinstance(node[key], DictConfig):
            yield from _walk(node[key], f"{path}.{key}" if path else key)


def declared_settings() -> list[Setting]:
    """One entry per (class, key) with a declared bound or choice, plus the bounded root keys."""
    found: dict[tuple[str, str], Setting] = {}
    selections = [()] + [(f"{g}={o}", *NEEDS.get((g, o), [])) for g in GROUPS if g != "experiment"
                         for o in group_options(g)]
    for select in selections:
        cfg, _ = compose_run(list(select))
        for path, node in _walk(cfg, ""):
            if path == "loss.head.distance":
                continue  # the same node as `distance`
            target = get_class(node["_target_"]) if "." in node["_target_"] else None
            if target is None:
                continue
            init = target.__init__ if inspect.isclass(target) else target
            hints = typing.get_type_hints(init, include_extras=True)  # unresolvable: an error, not less coverage
            for key, hint in hints.items():
                if key in node and _declared(hint):
                    found.setdefault((node["_target_"], key), Setting(tuple(select), f"{path}.{key}", hint))
    for key, hint in ROOT_TYPES.items():
        if _declared(hint):
            found[("root", key)] = Setting((), key, hint)
    return list(found.values())


SETTINGS = declared_settings()


def _numeric_bad(base: type, constraints: tuple) -> st.SearchStrategy:
    """Numbers outside the declared bounds, read from the annotation itself."""
    options = []
    for c in constraints:
        if isinstance(c, Interval):
            parts = [Gt(c.gt) if c.gt is not None else None, Ge(c.ge) if c.ge is not None else None,
                     Lt(c.lt) if c.lt is not None else None, Le(c.le) if c.le is not None else None]
            options += [_numeric_bad(base, (p,)) for p in parts if p is not None]
        elif isinstance(c, (Gt, Ge)):
            bound = c.gt if isinstance(c, Gt) else c.ge
            below = st.integers(1, 10**6).map(lambda k, b=bound: b - k) if base is int else st.floats(
                min_value=-1e6, max_value=bound, exclude_max=isinstance(c, Ge), allow_nan=False)
            options.append(below)
        elif isinstance(c, (Lt, Le)):
            bound = c.lt if isinstance(c, Lt) else c.le
            above = st.integers(1, 10**6).map(lambda k, b=bound: b + k) if base is int else st.floats(
                min_value=bound, max_value=1e6, exclude_min=isinstance(c, Le), allow_nan=False)
            options.append(above)
    if base is float:  # never finite-bounded alone: NaN and infinities are no setting's value
        options += [st.just(math.nan), st.just(math.inf), st.just(-math.inf)]
    if base is int:  # values feed C integers: beyond int64 is rejected before torch overflows
        options.append(st.sampled_from([2**63, -(2**63) - 1, 10**23]))
    return st.one_of(options) if options else st.nothing()


def bad_values(hint: typing.Any) -> st.SearchStrategy:
    """Values a setting with this hint must reject: out of its bounds or of the wrong type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    wrong_type = st.sampled_from(["'not-a-value'", "[1,2]", "{a: 1}"])
    if origin is typing.Literal:
        return st.one_of(wrong_type, st.text("abcdefghij", min_size=1, max_size=8).filter(lambda t: t not in args)
                         .map(lambda t: f"'{t}'"))
    if origin is typing.Annotated:
        base, constraints = args[0], hint.__metadata__
        if any(isinstance(c, MinLen) for c in constraints):
            return st.just("''") if base is str else st.one_of(st.just("[]"), st.just("'not-a-list'"))
        return st.one_of(wrong_type, _numeric_bad(base, constraints).map(repr),
                         *([st.just("1.5")] if base is int else []))
    members = [a for a in args if a is not type(None)]
    literals = {v for a in members if typing.get_origin(a) is typing.Literal for v in typing.get_args(a)}
    numeric = [a for a in members if typing.get_origin(a) is typing.Annotated]
    out = [st.just("'not-a-value'")] if "not-a-value" not in literals else []
    for member in numeric:
        base, constraints = typing.get_args(member)[0], member.__metadata__
        out.append(_numeric_bad(base, constraints).map(repr))
    return st.one_of(out)


def test_every_declared_setting_is_found():
    keys = {s.key for s in SETTINGS}
    for key in ("trainer.epochs", "trainer.batch_size", "dataset.val_fraction", "loss.criterion.label_smoothing",
                "loss.head.n", "seed", "probe_samples", "optim.scheduler.warmup_fraction", "backbone.channels",
                "tracker.measure_power_secs", "trainer.precision", "distance.p"):
        assert key in keys, key
    assert len(SETTINGS) >= 50


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_out_of_range_or_wrong_type_is_exit_2_one_line_nothing_written(tmp_path_factory, data):
    setting = data.draw(st.sampled_from(SETTINGS), label="setting")
    value = data.draw(bad_values(setting.hint), label="value")
    root = tmp_path_factory.mktemp("bad")
    results = root / "results"
    result = CliRunner().invoke(app, ["run", *setting.select, f"results_dir={results}", "tracker=off",
                                      f"{setting.key}={value}"])  # last: the tested value wins
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (setting.key, value, result.output)
    assert len(lines) == 1 and lines[0].startswith("error: ") and setting.key.rsplit(".", 1)[-1] in lines[0], lines
    assert not results.exists() and sorted(p.name for p in Path(root).iterdir()) == []
