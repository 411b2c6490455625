"""The object a config's `_target_` names, imported with a one-line error.

Hydra's `get_class` / `get_method` do the same lookup, but log a multi-line error ("Error loading ...",
the exception, "Are you sure that module ... is installed?") before re-raising, so a class that fails its
contract on import, or a module missing from PYTHONPATH, printed four lines instead of one.
"""

from __future__ import annotations

import importlib
from typing import Any

from lossbench import LossbenchError


def locate(target: str, key: str) -> Any:
    """`module.attribute` (or `module.Class.attribute`) imported; LossbenchError naming `key`, the target
    and the first line of what went wrong (no such module or name, or importing the module raised: e.g. a
    distance that leaves out part of its contract, contract.py)."""
    try:
        return _import(target)
    except Exception as exc:  # noqa: BLE001 - whatever the user's module raised: said in one line
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LossbenchError(f"{key}: cannot import '{target}': {why}") from None


def _import(target: str) -> Any:
    """The longest importable module prefix of `target`, then attributes down to its last part."""
    parts = target.split(".")
    if len(parts) < 2 or not all(parts):
        raise ImportError("not a dotted path (module.Name)")
    for cut in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as exc:  # this module (or its package) is absent: try a shorter prefix
            if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
                continue
            raise  # the module exists, but something it imports does not
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ModuleNotFoundError(f"No module named '{parts[0]}' (is its folder on PYTHONPATH?)")
