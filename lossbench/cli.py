"""The `lossbench` command line: parsing only; work is delegated to config / run.

`run` validates every job's config first (one clear line and exit code 2 on bad input, nothing
written), then hands the overrides to Hydra's real entry point so sweepers and launchers work.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from lossbench import LossbenchError
from lossbench.config import CONFIG_NAME, GROUPS, compose_run, conf_dir, expand_sweep, group_options

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Benchmark loss functions (cross-entropy, harmonic distance heads, ...) on equal terms.",
    rich_markup_mode="markdown",
)
log = logging.getLogger("lossbench")

RUN_HELP = """
Train one model, or a sweep with -m. Arguments are Hydra overrides: `group=option` picks a config
file (see `lossbench list`), `key.sub=value` sets a value.

**Examples**

* `lossbench run` — offline default (MNIST-1D, small CNN, cross-entropy), about 20 s on 2 CPU cores
* `lossbench run loss=harmonic distance=cosine dataset=mnist1d backbone=mlp seed=3`
* `lossbench run dataset=cifar10 backbone=resnet18 trainer.epochs=30 data_dir=~/data`
* `lossbench run trainer.epochs=5 optim=sgd optim.optimizer.lr=0.1 tracker=off`
* `lossbench run -m loss=ce,harmonic distance=euclidean,cosine seed=0,1,2` — a sweep

Results: one summary row in `<results_dir>/runs/<run_id>.parquet`, per-epoch history in
`<results_dir>/history/<run_id>.parquet`; read them with `lossbench.store.load_runs`.
"""


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def preflight(overrides: list[str], multirun: bool) -> int:
    """Compose, validate and dry-build every job of the command before anything runs; returns the job count."""
    from lossbench.run import dry_build

    jobs = expand_sweep(overrides) if multirun else [overrides]
    for job in jobs:
        dry_build(*compose_run(job))
    return len(jobs)


def hydra_main(overrides: list[str], multirun: bool) -> None:
    """Run through `hydra.main`, exactly as a Hydra app would be run from its own command line."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from lossbench.run import execute

    @hydra.main(config_path=str(conf_dir()), config_name=CONFIG_NAME, version_base="1.3")
    def task(cfg) -> None:  # noqa: ANN001 - Hydra passes a DictConfig
        hydra_cfg = HydraConfig.get()
        choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
        try:
            execute(cfg, choices)
        except LossbenchError as exc:
            log.error("error: %s", exc)
            if hydra_cfg.mode == RunMode.RUN:
                raise SystemExit(2) from None
            raise

    sys.argv = ["lossbench", *(["--multirun"] if multirun else []), *overrides]
    task()


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    help=RUN_HELP,
)
def run(
    ctx: typer.Context,
    multirun: Annotated[bool, typer.Option("--multirun", "-m", help="Sweep over comma-separated values.")] = False,
) -> None:
    overrides = list(ctx.args)
    try:
        preflight(overrides, multirun)
    except LossbenchError as exc:
        _fail(str(exc))
    hydra_main(overrides, multirun)


def _defaults() -> dict[str, str]:
    root = yaml.safe_load((conf_dir() / f"{CONFIG_NAME}.yaml").read_text())
    return {k: v for item in root["defaults"] if isinstance(item, dict) for k, v in item.items()}


def _description(path: Path) -> str:
    first = path.read_text().splitlines()[0] if path.stat().st_size else ""
    return first.lstrip("# ").strip() if first.startswith("#") else ""


@app.command("list")
def list_options(
    group: Annotated[str | None, typer.Argument(help="Show one group's options with descriptions.")] = None,
) -> None:
    """List every config group and its options (read from conf/); * marks the default."""
    defaults = _defaults()
    if group is None:
        width = max(map(len, GROUPS))
        for name in GROUPS:
            opts = [f"{o}*" if o == defaults.get(name) else o for o in group_options(name)]
            typer.echo(f"{name:<{width}}  {', '.join(opts)}")
        typer.echo("\n`lossbench list <group>` describes each option; override with group=option.")
        return
    if group not in GROUPS:
        _fail(f"unknown group '{group}'; choose one of: {', '.join(GROUPS)}")
    options = group_options(group)
    width = max(map(len, options)) + 1
    for option in options:
        mark = "*" if option == defaults.get(group) else " "
        typer.echo(f"{option + mark:<{width}}  {_description(conf_dir() / group / f'{option}.yaml')}")


def main() -> None:
    """Console-script entry point."""
    app()
