"""The `lossbench` command line: parsing only; work is delegated to config / run.

`run` validates every job's config first (one clear line and exit code 2 on bad input, nothing
written), then hands the overrides to Hydra's real entry point so sweepers and launchers work.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
import yaml

from lossbench import LossbenchError
from lossbench.config import CONFIG_NAME, GROUPS, compose_run, conf_dir, group_options, sweep_jobs

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
* `lossbench run task=lm loss=harmonic distance=cosine` — a small GPT on offline text, cosine harmonic head
* `lossbench run -m loss=ce,harmonic distance=euclidean,cosine seed=0,1,2` — a sweep
* `lossbench run -m experiment=smoke` — a named grid from conf/experiment/
* `lossbench run -m hydra/launcher=joblib hydra.launcher.n_jobs=2 seed=0,1,2,3` — in parallel

Runs that already completed (same run_id) are skipped; `--force` re-runs them.

Results: one summary row in `<results_dir>/runs/<run_id>.parquet`, per-evaluation history in
`<results_dir>/history/<run_id>.parquet`; read them with `lossbench.store.load_runs`.
"""


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@dataclass
class Job:
    """One job of a command, as the preflight composed it."""

    run_id: str
    results_dir: Path
    label: str


def preflight(overrides: list[str], multirun: bool) -> list[Job]:
    """Compose, validate and dry-build every job of the command before anything runs."""
    from lossbench.run import dry_build, run_identity

    jobs = []
    for job in sweep_jobs(overrides) if multirun else [overrides]:
        cfg, choices = compose_run(job)
        dry_build(cfg, choices)
        rid, _, axes = run_identity(cfg, choices)
        jobs.append(Job(rid, Path(cfg.results_dir).expanduser(), " ".join(f"{k}={v}" for k, v in axes.items())))
    return jobs


def hydra_main(overrides: list[str], multirun: bool) -> None:
    """Run through `hydra.main`, exactly as a Hydra app would be run from its own command line."""
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from lossbench.run import execute

    @hydra.main(config_path=str(conf_dir()), config_name=CONFIG_NAME, version_base="1.3")
    def task(cfg) -> None:  # noqa: ANN001 - Hydra passes a DictConfig
        choices = {k: v for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}
        execute(cfg, choices)

    sys.argv = ["lossbench", *(["--multirun"] if multirun else []), *overrides]
    task()


def outcome_report(jobs: list[Job], already_done: set[str]) -> int:
    """Print what became of every job (from the result rows, whatever the launcher said); exit code."""
    from lossbench.store import read_run

    unique = {job.run_id: job for job in jobs}
    rows = {rid: read_run(job.results_dir, rid) for rid, job in unique.items()}
    status = {rid: (row or {}).get("status", "missing") for rid, row in rows.items()}
    counts = Counter(status.values())
    parts = [f"{counts[s]} {s}" for s in ("completed", "diverged", "failed", "missing") if counts[s]]
    skipped = f" ({len(already_done)} already done, skipped)" if already_done else ""
    typer.echo(f"{len(unique)} runs: {', '.join(parts)}{skipped}", err=True)
    for rid, st in status.items():
        if st != "completed":
            detail = (rows[rid] or {}).get("error") or {"diverged": "non-finite training loss",
                                                        "missing": "no result row (killed?)"}.get(st, "")
            typer.echo(f"  {st:<9} {rid}  {unique[rid].label}  {detail}", err=True)
    return 0 if counts["completed"] == len(unique) else 1


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    help=RUN_HELP,
)
def run(
    ctx: typer.Context,
    multirun: Annotated[bool, typer.Option("--multirun", "-m", help="Sweep over comma-separated values.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Re-run runs that already completed.")] = False,
) -> None:
    from lossbench.store import is_completed, write_manifest

    overrides = list(ctx.args) + (["+force=true"] if force and not any(o.startswith("+force=") for o in ctx.args) else [])
    try:
        jobs = preflight(overrides, multirun)
    except LossbenchError as exc:
        _fail(str(exc))
    forced = force or any(o in ("+force=true", "force=true") for o in overrides)
    already_done = set() if forced else {j.run_id for j in jobs if is_completed(j.results_dir, j.run_id)}
    if multirun:
        sweep = run_id_of_command(ctx.args)
        for results_dir in {j.results_dir for j in jobs}:
            write_manifest(results_dir, sweep, "lossbench run -m " + " ".join(ctx.args),
                           sorted({j.run_id for j in jobs if j.results_dir == results_dir}))
        overrides.append(f"sweep={sweep}")
    hydra_main(overrides, multirun)
    code = outcome_report(jobs, already_done) if multirun else _single_exit_code(jobs[0])
    raise typer.Exit(code)


def run_id_of_command(args: list[str]) -> str:
    """A sweep's id: a hash of its overrides, so re-running the same command resumes the same sweep."""
    from lossbench.store import run_id

    return run_id({"overrides": sorted(a for a in args if not a.lstrip("+").startswith("force="))})[:8]


def _single_exit_code(job: Job) -> int:
    from lossbench.store import read_run

    return 0 if (read_run(job.results_dir, job.run_id) or {}).get("status") == "completed" else 1


@app.command()
def status(
    results_dir: Annotated[Path, typer.Argument(help="A results folder.")] = Path("results"),
) -> None:
    """Per sweep: how many runs are done, running, failed, diverged or pending; then what failed."""
    from lossbench.status import sweep_status

    if not results_dir.is_dir():
        _fail(f"no results folder at {results_dir}")
    typer.echo(sweep_status(results_dir))


@app.command()
def report(
    results_dir: Annotated[Path, typer.Argument(help="A results folder.")] = Path("results"),
    out: Annotated[Path, typer.Option("--out", help="Where tables, figures and index.md go.")] = Path("report"),
    group_by: Annotated[str, typer.Option("--group-by", help="Columns that split the tables.")] = "dataset,backbone",
    metrics: Annotated[str | None, typer.Option("--metrics", help="Comma list of metrics (default: all).")] = None,
    formats: Annotated[str, typer.Option("--format", help="Comma list: markdown, latex, csv.")] = "markdown,latex,csv",
    table: Annotated[str, typer.Option("--table", help="all, performance, interpretability or sustainability.")] = "all",
    x: Annotated[str | None, typer.Option("--x", help="Also plot the first metric against this config path "
                                          "(e.g. backbone.widths), one line per variant.")] = None,
    split: Annotated[str | None, typer.Option("--split", help="With --x: a config path that splits variants "
                                              "(e.g. loss.criterion.amplitude).")] = None,
) -> None:
    """Three-way tables (performance / interpretability / sustainability) and figures from a results folder."""
    from lossbench.report import build_report, to_markdown

    split_list = lambda text: [t.strip() for t in text.split(",") if t.strip()]  # noqa: E731
    try:
        built = build_report(results_dir, out, split_list(group_by), split_list(metrics) if metrics else None,
                             split_list(formats), table, x, split)
    except LossbenchError as exc:
        _fail(str(exc))
    for t in built.tables:
        typer.echo(to_markdown(t, t.metrics))
    if built.sweep:
        typer.echo(built.sweep)
    typer.echo(f"wrote {out / 'index.md'} ({len(built.tables)} group(s): tables and figures)")


def _defaults() -> dict[str, str]:
    root = yaml.safe_load((conf_dir() / f"{CONFIG_NAME}.yaml").read_text())
    return {k: v for item in root["defaults"] if isinstance(item, dict) for k, v in item.items()}


def _description(path: Path) -> str:
    """The first comment line of a config file that is not a Hydra header (`# @package ...`)."""
    for line in path.read_text().splitlines():
        if line.startswith("#") and not line.lstrip("# ").startswith("@"):
            return line.lstrip("# ").strip()
    return ""


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
