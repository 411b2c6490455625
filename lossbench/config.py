"""Locate `conf/` and compose configs with Hydra (validate.py checks their values).

Composition errors become one line that names the valid choices, instead of Hydra's multi-line errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lossbench import LossbenchError

CONFIG_NAME = "config"
GROUPS = ("task", "dataset", "backbone", "loss", "loss/head", "loss/criterion", "distance", "optim", "trainer",
          "tracker", "experiment")
HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}


def conf_dir() -> Path:
    """The config tree: packaged inside the wheel as `lossbench/conf`, or `conf/` beside the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / f"{CONFIG_NAME}.yaml").is_file():
            return candidate
    raise LossbenchError(f"config tree not found: looked for {here / 'conf'} and {here.parent / 'conf'}")


def extra_dirs() -> list[Path]:
    """Config folders added by the user (`LOSSBENCH_CONFIG_PATH`, separated like PATH): their groups
    merge with conf/'s, so a distance, loss or task can live outside the package."""
    return [Path(p).expanduser().resolve() for p in os.environ.get("LOSSBENCH_CONFIG_PATH", "").split(os.pathsep) if p]


def search_overrides(overrides: Sequence[str] = ()) -> list[str]:
    """The `hydra.searchpath` override that adds `extra_dirs()` (none if there are none, or if the
    user set hydra.searchpath already)."""
    dirs = extra_dirs()
    if not dirs or any(o.lstrip("+").startswith("hydra.searchpath=") for o in overrides):
        return []
    return ["hydra.searchpath=[" + ",".join(f"file://{d}" for d in dirs) + "]"]


def option_file(group: str, option: str) -> Path:
    """The yaml of one option (conf/ first, then the extra folders)."""
    for root in (conf_dir(), *extra_dirs()):
        if (root / group / f"{option}.yaml").is_file():
            return root / group / f"{option}.yaml"
    raise LossbenchError(f"unknown {group} '{option}'; choose one of: {', '.join(group_options(group))}")


def group_options(group: str) -> list[str]:
    """Option names of one config group (yaml stems in `conf/<group>/` and the extra folders)."""
    return sorted({p.stem for root in (conf_dir(), *extra_dirs()) for p in (root / group).glob("*.yaml")})


@contextmanager
def _hydra(overrides: list[str]) -> Iterator[GlobalHydra]:
    """Initialise Hydra on conf/ and turn its composition errors into one-line LossbenchErrors."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(conf_dir()), version_base="1.3"):
            yield GlobalHydra.instance()
    except MissingConfigException as exc:
        raise LossbenchError(_missing_option_message(exc)) from None
    except (ConfigCompositionException, OverrideParseException, OmegaConfBaseException, ValueError) as exc:
        raise LossbenchError(_composition_message(exc, overrides)) from None
    finally:
        GlobalHydra.instance().clear()


def compose_run(overrides: list[str]) -> tuple[DictConfig, dict[str, str]]:
    """Compose one run's config; returns (config without the `hydra` node, group choices).

    Raises LossbenchError with a one-line message for unknown options, unknown keys and bad syntax.
    """
    with _hydra(overrides):
        cfg = compose(CONFIG_NAME, overrides=[*search_overrides(overrides), *overrides], return_hydra_config=True)
    choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra")}
    with _writable(cfg):
        del cfg["hydra"]
    _no_new_root_keys(cfg, overrides)
    return cfg, choices


def _no_new_root_keys(cfg: DictConfig, overrides: list[str]) -> None:
    """`+key=value` at the top level adds a key nothing reads (Hydra accepts it): a typo would silently
    make a new run id. Refused unless the key names a config group (`+experiment=...`, a user's group) or
    is a top-level key without it too (`++seed=1`). Below the top, the classes' signatures check added keys
    (validate.py)."""
    added = {item.split("=", 1)[0].lstrip("+"): item for item in overrides
             if re.match(r"\+{1,2}[^.=/~]+=", item)}
    added = {key: item for key, item in added.items() if key != "hydra" and key in cfg and not group_options(key)}
    if not added:
        return
    rest = [item for item in overrides if item not in added.values()]
    with _hydra(rest):
        known = compose(CONFIG_NAME, overrides=[*search_overrides(rest), *rest])
    for key, item in added.items():
        if key not in known:
            raise LossbenchError(f"unknown key '{key}' ({item}); valid keys: {', '.join(map(str, known))}")


def hydra_settings(overrides: list[str]) -> DictConfig:
    """The `hydra` node these overrides compose (launcher, sweeper, sweep folder); no sweep syntax."""
    with _hydra(overrides):
        return compose(CONFIG_NAME, overrides=[*search_overrides(overrides), *overrides], return_hydra_config=True).hydra


def sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """The override list of every job of `lossbench run -m`, in Hydra's BasicSweeper order.

    Sweeper params from the config (`hydra.sweeper.params`, e.g. an experiment grid) are combined
    with the command line, whose keys win; comma lists and glob(*) expand as in Hydra.
    """
    overrides = [*search_overrides(overrides), *overrides]
    with _hydra(overrides) as gh:
        parser = OverridesParser.create(config_loader=gh.hydra.config_loader)
        command_line = parser.parse_overrides(overrides)
        for o in command_line:
            if o.is_interval_sweep():
                raise LossbenchError(f"{o.input_line}: interval() is a search space, which the basic sweeper cannot "
                                     "expand; a sampling sweeper can: add hydra/sweeper=optuna hydra.sweeper.n_trials=N")
        fixed = [o.input_line for o in command_line if not o.is_sweep_override()]
        cfg = compose(CONFIG_NAME, overrides=fixed, return_hydra_config=True)
        params = cfg.hydra.sweeper.get("params") or {}
        keys = {o.get_key_element() for o in command_line}
        grid = [f"{k}={v}" for k, v in params.items() if k not in keys]
        batches = BasicSweeper.split_arguments(parser.parse_overrides(grid + list(overrides)), None)
    return [job for batch in batches for job in batch]


def split_hydra(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """(Hydra's own overrides: `hydra.*`, `hydra/launcher=...`; the task's overrides)."""
    hydra, task = [], []
    for item in overrides:
        (hydra if item.lstrip("+~").startswith(("hydra.", "hydra/")) else task).append(item)
    return hydra, task


def _missing_option_message(exc: MissingConfigException) -> str:
    missing = exc.missing_cfg_file or ""
    group, _, option = missing.rpartition("/")
    options = exc.options or group_options(group)
    if not options:
        return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    hint = " (joblib and submitit launchers: pip install 'lossbench[slurm]')" if group == "hydra/launcher" else ""
    return f"unknown {group} '{option}'; choose one of: {', '.join(options)}{hint}"


def _composition_message(exc: BaseException, overrides: list[str]) -> str:
    text = str(exc) or str(exc.__cause__ or "") or type(exc).__name__
    if text.startswith("Could not override '") and "+" in text:
        key = text.split("'")[1]
        parent, _, _ = key.rpartition(".")
        rest = [o for o in overrides if not o.lstrip("+~").startswith(f"{key}=")]
        valid = _keys_of(parent, rest)
        if parent == "hydra.launcher" and valid == "(none)":
            return f"unknown key '{key}': Hydra's basic launcher takes no settings; pick one first, e.g. " \
                   "hydra/launcher=joblib"
        return f"unknown key '{key}'; valid keys{' of ' + parent if parent else ''}: {valid}"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _keys_of(parent: str, overrides: list[str]) -> str:
    try:
        if parent.split(".")[0] == "hydra":
            node = OmegaConf.select(OmegaConf.create({"hydra": hydra_settings(overrides)}), parent)
        else:
            cfg, _ = compose_run(overrides)
            node = OmegaConf.select(cfg, parent) if parent else cfg
        keys = [k for k in node if k not in HYDRA_KEYS] if isinstance(node, DictConfig) else []
        return ", ".join(keys) or "(none)"
    except LossbenchError:
        return "?"


class _writable:
    """Context manager that lifts struct/readonly flags on a config for in-place edits."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg

    def __enter__(self) -> DictConfig:
        OmegaConf.set_struct(self.cfg, False)
        OmegaConf.set_readonly(self.cfg, False)
        return self.cfg

    def __exit__(self, *exc: object) -> None:
        OmegaConf.set_struct(self.cfg, True)
