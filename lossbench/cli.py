"""The `lossbench` command line: parsing only; `run` delegates to launch.py, `report` to the report
package, `status` to status.py, `export` to results.py, `list` reads conf/.

Bad input anywhere is one line `error: ...` on stderr and exit code 2, with nothing written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from lossbench import LossbenchError
from lossbench.config import CONFIG_NAME, GROUPS, conf_dir, group_options, option_file

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Benchmark loss functions (cross-entropy, harmonic distance heads, ...) on equal terms.",
    rich_markup_mode="markdown",
)

RUN_HELP = """
Train one model, or a sweep with -m. Arguments are Hydra overrides: `group=option` picks a config
file (see `lossbench list`), `key.sub=value` sets a value.

**Examples**

* `lossbench run` — offline default (MNIST-1D, small CNN, cross-entropy), about 10 s on 2 CPU cores
* `lossbench run loss=harmonic distance=cosine dataset=mnist1d backbone=mlp seed=3`
* `lossbench run dataset=cifar10 backbone=resnet18 trainer.epochs=30 data_dir=~/data`
* `lossbench run trainer.epochs=5 optim=sgd optim.optimizer.lr=0.1 tracker=off`
* `lossbench run task=lm loss=harmonic distance=cosine` — a small GPT on offline text, cosine harmonic head
* `lossbench run -m loss=ce,harmonic distance=euclidean,cosine seed=0,1,2` — a sweep
* `lossbench run -m experiment=smoke` — a named grid from conf/experiment/
* `lossbench run -m hydra/launcher=joblib hydra.launcher.n_jobs=2 seed=0,1,2,3` — in parallel

Runs that already completed (same run_id) are skipped; `--force` re-runs them. A run that was interrupted
(killed, cancelled, preempted) resumes from its last checkpoint when run again; `--restart` starts it over.

Results: one summary row in `<results_dir>/runs/<run_id>.parquet`, per-evaluation history in
`<results_dir>/history/<run_id>.parquet`; read them with `lossbench.results.load_runs`, or as one table with pandas, pyarrow, polars or DuckDB.
"""


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _stopped(exc: OSError, action: str = "cannot write") -> None:
    """A file could not be written (or read) mid-command (disk full, quota, permissions): one line, exit 1."""
    where = f" {exc.filename}" if exc.filename else ""
    typer.echo(f"error: stopped: {action}{where}: {exc.strerror or exc}; files written before are intact",
               err=True)
    raise typer.Exit(1)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    help=RUN_HELP,
)
def run(
    ctx: typer.Context,
    multirun: Annotated[bool, typer.Option("--multirun", "-m", help="Sweep over comma-separated values.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Re-run runs that already completed.")] = False,
    restart: Annotated[bool, typer.Option("--restart", help="Discard the checkpoints of unfinished runs and train "
                                          "them from the start (default: resume them).")] = False,
) -> None:
    from lossbench.context import RunContext
    from lossbench.launch import run_command

    try:
        result = run_command(list(ctx.args), multirun, RunContext(force=force, restart=restart))
    except LossbenchError as exc:
        _fail(str(exc))
    except OSError as exc:  # a full disk, a quota, a folder gone: earlier files are intact (atomic writes)
        _stopped(exc)
    for line in result.lines:
        typer.echo(line, err=True)
    raise typer.Exit(result.exit_code)


TUNE_HELP = """
Fair per-variant tuning, then seeds, as one command. Stage 1: every variant of the grid (comma lists, as
in `lossbench run -m`) gets the same search space (`--space`, Hydra sweep syntax) and the same number of
Optuna trials (`--trials`) on validation, at the first seed. Stage 2: each variant's best configuration
over every seed (`--seeds`). Trials go to `<results_dir>/tuning/`, stage-2 runs to `<results_dir>`, so
`lossbench report <results_dir>` compares the tuned runs, with a tuning table (budget, chosen values).

**Example**

* `lossbench tune dataset=mnist1d loss=ce,harmonic distance=euclidean,cosine --space 'optim.optimizer.lr=tag(log,interval(1e-4,1e-1))' --trials 8 --seeds 0,1,2,3,4`
"""


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, help=TUNE_HELP)
def tune(
    ctx: typer.Context,
    space: Annotated[list[str], typer.Option("--space", help="A searched key, e.g. "
                                             "'optim.optimizer.lr=tag(log,interval(1e-4,1e-1))' (repeatable).")],
    trials: Annotated[int, typer.Option("--trials", help="Trials per variant: the same budget for each.")] = 8,
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds of stage 2 (comma list; stage 1 uses the first).")]
    = "0,1,2,3,4",
    force: Annotated[bool, typer.Option("--force", help="Re-run runs that already completed.")] = False,
) -> None:
    from lossbench.context import RunContext
    from lossbench.cost.threads import machine_load
    from lossbench.protocol import tune as run_protocol

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        _fail(f"--seeds {seeds}: give a comma list of integers, e.g. 0,1,2,3,4")
    machine_load()
    try:
        result = run_protocol(list(ctx.args), list(space), trials, seed_list, RunContext(force=force))
    except LossbenchError as exc:
        _fail(str(exc))
    except OSError as exc:
        _stopped(exc)
    for line in result.lines:
        typer.echo(line, err=True)
    raise typer.Exit(result.exit_code)


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
    formats: Annotated[str, typer.Option("--format", help="Comma list: markdown, latex, csv, html (index.html: "
                                         "one self-contained page).")] = "markdown,latex,csv,html",
    table: Annotated[str, typer.Option("--table", help="all, performance, interpretability or sustainability.")] = "all",
    x: Annotated[str | None, typer.Option("--x", help="Also plot the first metric against this config path "
                                          "(e.g. backbone.widths), one line per variant.")] = None,
    split: Annotated[str | None, typer.Option("--split", help="With --x: a config path that splits variants "
                                              "(e.g. loss.criterion.amplitude).")] = None,
    baseline: Annotated[str | None, typer.Option("--baseline", help="Variant every other one is compared with, "
                                          "paired by seed (default: ce).")] = None,
    across: Annotated[str | None, typer.Option("--across", help="Also rank the variants across the values of "
                                               "this column (e.g. dataset): mean ranks, Friedman, CD diagram.")] = None,
) -> None:
    """Three-way tables (performance / interpretability / sustainability) and figures from a results folder."""
    from lossbench.report import build_report
    from lossbench.report.formats import FORMAT_ALIASES, to_markdown

    split_list = lambda text: [t.strip() for t in text.split(",") if t.strip()]  # noqa: E731
    if not results_dir.is_dir():
        _fail(f"no results folder at {results_dir}; valid: a folder lossbench run wrote (it holds runs/)")
    try:
        built = build_report(results_dir, out, split_list(group_by), split_list(metrics) if metrics else None,
                             split_list(formats), table, x, split, baseline, across)
    except LossbenchError as exc:
        _fail(str(exc))
    except OSError as exc:
        _stopped(exc, "cannot read or write")
    markdown = "md" in {FORMAT_ALIASES.get(f) for f in split_list(formats)}
    for t in built.tables if markdown else ():  # the terminal shows markdown only when markdown was asked for
        typer.echo(to_markdown(t, t.metrics))
    if built.rankings and markdown:
        typer.echo(built.rankings)
    if built.sweep:
        typer.echo(built.sweep)
    page = f" and {built.html}" if built.html else ""
    typer.echo(f"wrote {out / 'index.md'}{page} ({len(built.tables)} group(s): tables and figures)")


@app.command()
def export(
    results_dir: Annotated[Path, typer.Argument(help="A results folder.")] = Path("results"),
    out: Annotated[Path, typer.Option("--out", help="The Parquet file the runs go to.")] = Path("runs.parquet"),
    history: Annotated[Path | None, typer.Option("--history", help="Also write every history row to this "
                                                 "Parquet file.")] = None,
) -> None:
    """One Parquet file of a results folder's runs (the declared schema), for sharing a result set."""
    from lossbench.results import export as write

    if not (results_dir / "runs").is_dir():
        _fail(f"no results folder at {results_dir} (it has no runs/ folder)")
    for option, path in (("--out", out), ("--history", history)):
        if path is not None and path.is_dir():
            _fail(f"{option} {path}: is a folder; valid: a Parquet file's path, e.g. {path / 'runs.parquet'}")
        if path is not None and not path.parent.is_dir():
            _fail(f"{option} {path}: folder {path.parent} does not exist; valid: a file in an existing folder")
    if history is not None and history.resolve() == out.resolve():
        _fail(f"--history {history}: must differ from --out")
    try:
        runs, rows = write(results_dir, out, history)
    except OSError as exc:
        _stopped(exc)
    typer.echo(f"wrote {runs} runs to {out}" + (f" and {rows} history rows to {history}" if history else ""))


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
        typer.echo(f"{option + mark:<{width}}  {_description(option_file(group, option))}")


def main() -> None:
    """Console-script entry point."""
    app()
