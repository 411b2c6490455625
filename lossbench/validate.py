"""Validate a composed config before anything runs: every value resolves, the root keys and every
`_target_` node's values match the type hints of the class they configure (`Annotated` ranges from
ranges.py included), and the launcher settings lossbench passes to Hydra are in range. A typo or a wrong
type fails at the command line, one line naming the key, the value and what is valid, instead of inside
training.

Written here because no library checks plain config values against a constructor's type hints with
one-line messages: OmegaConf's structured configs need dataclasses, pydantic needs models of its own.
"""

from __future__ import annotations

import copy
import inspect
import math
import types
import typing
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Literal

from annotated_types import MinLen
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lossbench import LossbenchError
from lossbench.config import HYDRA_KEYS
from lossbench.ranges import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    Seed,
    UnitInterval,
    describe,
    satisfies,
)
from lossbench.targets import locate

ROOT_TYPES: dict[str, Any] = {
    "seed": Seed, "data_dir": Annotated[str, MinLen(1)], "results_dir": Annotated[str, MinLen(1)],
    "device": str, "probe_samples": PositiveInt,
    "threads": PositiveInt | Literal["auto"], "objective": list[str] | None,
}



# Settings of Hydra's launchers that lossbench passes through (joblib, submitit): checked like any other
LAUNCHER_TYPES: dict[str, Any] = {
    "n_jobs": Literal[-1] | PositiveInt, "timeout_min": PositiveInt, "cpus_per_task": PositiveInt | None,
    "gpus_per_node": NonNegativeInt | None, "gpus_per_task": NonNegativeInt | None, "tasks_per_node": PositiveInt,
    "nodes": PositiveInt, "mem_gb": PositiveFloat | None, "array_parallelism": PositiveInt,
    "max_num_timeout": NonNegativeInt,
}


# Ranges torch.optim's optimizers enforce themselves (a ValueError at construction, naming no key): checked
# here with the rest, so `optim.optimizer.lr=-1` names the key and the range
OPTIMIZER_TYPES: dict[str, Any] = {"lr": NonNegativeFloat, "weight_decay": NonNegativeFloat,
                                   "momentum": NonNegativeFloat, "eps": NonNegativeFloat,
                                   "betas": tuple[UnitInterval, UnitInterval]}


# ... and of the sweepers that drive tuning (Optuna's; a plugin without these keys is not checked here)
SWEEPER_TYPES: dict[str, Any] = {"n_trials": PositiveInt, "n_jobs": PositiveInt, "max_failure_rate": Probability}


def validate_launcher(launcher: DictConfig, node: str = "hydra.launcher", types: dict[str, Any] | None = None) -> None:
    """The settings a node has, against a table of types: the launcher's (LAUNCHER_TYPES), or with `types` the
    sweeper's (SWEEPER_TYPES) or a torch optimizer's plain numbers (OPTIMIZER_TYPES); one line naming the key."""
    for key, hint in (LAUNCHER_TYPES if types is None else types).items():
        if key in launcher and not _matches(launcher[key], hint):
            raise LossbenchError(f"{node}.{key}: got {launcher[key]!r}; valid: {_valid(launcher[key], hint)}")


def validate(cfg: DictConfig) -> None:
    """Check that every value resolves and matches the type hints of the class it configures."""
    try:  # on a copy: the config keeps its interpolations (identity.py reads which keys follow the seed)
        OmegaConf.resolve(copy.deepcopy(cfg))
    except OmegaConfBaseException as exc:
        raise LossbenchError(f"cannot resolve config: {exc}".splitlines()[0]) from None
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise LossbenchError(f"{missing[0]} has no value (??? in its yaml); set it, e.g. {missing[0]}=...")
    for key, hint in ROOT_TYPES.items():
        if not _matches(cfg.get(key), hint):
            raise LossbenchError(f"{key}: got {cfg.get(key)!r}; valid: {_valid(cfg.get(key), hint)}")
    for path, node in _target_nodes(cfg, ""):
        _check_target(path, node)
        if path == "optim.optimizer" and str(node["_target_"]).startswith("torch.optim."):
            _optimizer_ranges(node, path)


def _optimizer_ranges(node: DictConfig, path: str) -> None:
    """OPTIMIZER_TYPES on the plain numbers a torch optimizer is given (a scalar, or the pair `betas`): torch
    also takes other forms, e.g. a Tensor `lr` or Adafactor's `eps` pair, which it checks itself."""
    def plain(key: str, value: Any) -> bool:
        numbers = list(value) if isinstance(value, ListConfig) else [value]
        return (key == "betas") == isinstance(value, ListConfig) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)

    validate_launcher(node, path, {k: hint for k, hint in OPTIMIZER_TYPES.items() if plain(k, node.get(k))})


def _target_nodes(node: Any, path: str) -> Iterator[tuple[str, DictConfig]]:
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield path, node
        for key in node:
            yield from _target_nodes(node[key], f"{path}.{key}" if path else str(key))
    elif isinstance(node, ListConfig):
        for i, item in enumerate(node):
            yield from _target_nodes(item, f"{path}[{i}]")


def _check_target(path: str, node: DictConfig) -> None:
    target = locate(str(node["_target_"]), f"{path}._target_")
    signature = inspect.signature(target)
    params = signature.parameters
    accepts_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    try:
        hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target, include_extras=True)
    except Exception:
        hints = {}
    for key in node:
        if key in HYDRA_KEYS:
            continue
        if key not in params and not accepts_kwargs:
            valid = ", ".join(p for p in params if p not in ("self", "args", "kwargs"))
            raise LossbenchError(f"unknown key '{path}.{key}'; valid keys: {valid}")
        value = node[key]
        nested = isinstance(value, DictConfig) and "_target_" in value  # an object of its own, checked itself
        if key in hints and not nested and not _matches(value, hints[key]):
            raise LossbenchError(f"{path}.{key}: got {value!r}; valid: {_valid(value, hints[key])}")


def _matches(value: Any, hint: Any) -> bool:
    """True when `value` (a plain config value) fits `hint`; unknown hint kinds are accepted."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _matches(value, args[0]) and satisfies(value, hint.__metadata__)
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:  # a C integer downstream (torch, numpy): the int64 range
        return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
    if hint is float:  # infinity and NaN are no setting's meaningful value: they only make runs diverge
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if inspect.isclass(hint) and origin is None and hint not in (list, tuple):
        return isinstance(value, hint)
    if origin in (list, tuple, typing.Sequence, Sequence) or hint in (list, tuple):
        if not isinstance(value, (ListConfig, list, tuple)):
            return False
        if origin is tuple and args and Ellipsis not in args:  # a fixed arity: (beta1, beta2)
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
        inner = [a for a in args if a is not Ellipsis]
        return not inner or all(_matches(v, inner[0]) for v in value)
    return True


def _valid(value: Any, hint: Any) -> str:
    """What is valid for a setting, said for the value given: an int past 64 bits is told why it fails."""
    name = _type_name(hint)
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63 and "<" not in name:
        return f"{name}, within 64 bits (|value| < 2^63)"
    return name


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Annotated:
        bounds = describe(hint.__metadata__)
        return f"{_type_name(typing.get_args(hint)[0])}{',' if bounds.startswith('at least') else ''} {bounds}".strip()
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if hint is float:
        return "finite float"
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is list and typing.get_args(hint):
        return f"a list [a,b,...] of {_type_name(typing.get_args(hint)[0])}"
    if typing.get_origin(hint) is tuple and Ellipsis not in typing.get_args(hint):
        return f"a list of {len(typing.get_args(hint))}: [" + ", ".join(map(_type_name, typing.get_args(hint))) + "]"
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


