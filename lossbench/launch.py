"""A `lossbench run` command from plan to summary, and launching its jobs through Hydra: the one place that
touches Hydra's internals, the task function every launched job runs, and the watchdog that ends a local
worker when its `lossbench run` is gone."""

from __future__ import annotations

import logging
import os
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from lossbench import cluster, search_space, store, study
from lossbench.config import (
    CONFIG_NAME,
    compose_run,
    conf_dir,
    hydra_settings,
    search_overrides,
    split_hydra,
)
from lossbench.context import RunContext
from lossbench.host import exit_with_launcher, process_started, requeued
from lossbench.locks import RunLocked, describe_holder, run_lock
from lossbench.plan import (
    CommandResult,
    Job,
    Plan,
    plan,
    record_stopped,
    single_exit_code,
    sweep_id,
    sweep_summary,
)
from lossbench.validate import SWEEPER_TYPES, validate, validate_launcher

log = logging.getLogger(__name__)
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def run_command(overrides: list[str], multirun: bool, context: RunContext = RunContext()) -> CommandResult:
    """`lossbench run [-m] OVERRIDES`: plan, write the sweep manifest, launch what is missing, summarise.
    A sweep whose configured Hydra sweeper is not the basic one (hydra/sweeper=optuna, ...) is that
    sweeper's to drive (`run_sweeper`)."""
    if multirun and hydra_settings(search_space.split(overrides)[0]).sweeper._target_ != BASIC_SWEEPER:
        return run_sweeper(overrides, context)
    the_plan = plan(overrides, multirun, context)
    from lossbench.cost.threads import machine_load  # torch: once the command is valid

    machine_load()  # start this process's load meter now, so the first run's thread count needs no wait
    if the_plan.sweep is not None:
        for results_dir in {j.results_dir for j in the_plan.jobs}:
            store.write_manifest(results_dir, the_plan.sweep, the_plan.command,
                                 sorted(j.run_id for j in the_plan.jobs if j.results_dir == results_dir))
    if not multirun and the_plan.already_done:
        job = the_plan.jobs[0]
        return CommandResult([f"run {job.run_id} already completed: skipped (--force re-runs it)  {job.identity.label}"], 0)
    if not multirun and the_plan.held:
        job = the_plan.jobs[0]
        return CommandResult([f"run {job.run_id} is already training {describe_holder(the_plan.held[job.run_id])}: "
                              f"not started  {job.identity.label}"], 1)
    stopped = launch(the_plan, multirun) if the_plan.launch else None
    if stopped is not None:
        record_stopped(the_plan, stopped)
    result = sweep_summary(the_plan) if multirun else CommandResult([], single_exit_code(the_plan.jobs[0]))
    if stopped is not None:
        result.lines.insert(0, f"the launcher stopped: {stopped}")
        result.exit_code = 1
    return result


def launch(the_plan: Plan, multirun: bool) -> str | None:
    """Hand the jobs to Hydra: `hydra.run` for a single run, the configured launcher (basic, joblib,
    submitit) for a sweep, exactly as a Hydra app's own command line would. SLURM jobs are named after
    the sweep and submitted in arrays no larger than the cluster's MaxArraySize. A launcher that stops
    (a cancelled or timed-out job, a rejected submission) is returned as one line, not raised: the
    summary then says what became of every run."""
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.plugins import Plugins
    from hydra.types import HydraContext, RunMode

    hydra = _hydra()
    try:
        if not multirun:
            task = _task_function(the_plan.launch, the_plan.context, local=True)
            hydra.run(CONFIG_NAME, task, the_plan.launch[0].overrides + the_plan.hydra_overrides)
            return
        master = hydra.compose_config(CONFIG_NAME, the_plan.launch[0].overrides + the_plan.hydra_overrides,
                                      with_log_configuration=True, run_mode=RunMode.MULTIRUN)
        context, slurm = _launcher_settings(master, the_plan.context, the_plan.sweep)
        task = _task_function(the_plan.launch, context, local=not slurm)
        hydra_context = HydraContext(config_loader=hydra.config_loader, callbacks=Callbacks(master))
        launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context, task_function=task,
                                                           config=master)
        overrides = [job.overrides for job in the_plan.launch]
        size = cluster.max_array_size() if slurm else len(overrides)
        for start in range(0, len(overrides), size):
            try:
                launcher.launch(overrides[start:start + size], initial_job_idx=start)
            except Exception as exc:  # noqa: BLE001 - whatever the launcher raises, the rows tell what happened
                return f"{type(exc).__name__}: {_first_line(exc)}"
        return None
    finally:
        GlobalHydra.instance().clear()


def _launcher_settings(master: DictConfig, context: RunContext, sweep: str | None) -> tuple[RunContext, bool]:
    """Name the sweep's cluster jobs after it; (the runs' context with the launcher's parallel jobs and, for
    SLURM jobs that ask for GPUs, require_cuda; whether the launcher is SLURM's)."""
    slurm = "slurm" in str(master.hydra.launcher.get("_target_", "")).lower()
    if "name" in master.hydra.launcher:
        with open_dict(master):
            master.hydra.launcher.name = f"lossbench-{sweep}"
    gpus = any((master.hydra.launcher.get(key) or 0) for key in ("gpus_per_node", "gpus_per_task"))
    return replace(context, sweep=sweep, parallel_jobs=_parallel_jobs(master.hydra.launcher),
                   require_cuda=slurm and gpus), slurm


def _hydra() -> Any:
    """Hydra's app object on lossbench's config tree (a fresh global state)."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    return Hydra.create_main_hydra2("lossbench", create_config_search_path(str(conf_dir())))


def run_sweeper(overrides: list[str], context: RunContext) -> CommandResult:
    """`lossbench run -m hydra/sweeper=<plugin> ...`: the sweeper proposes trials (the searched keys:
    `interval(...)`, `choice(...)`, ...), the launcher runs them, each trial is preflighted and run like a
    grid job and returns its objective (trial.py). Before anything runs: malformed syntax, unknown keys
    and invalid fixed values are one line (exit 2). An Optuna study lives in the results folder (study.py)."""
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.plugins import Plugins
    from hydra.types import HydraContext, RunMode

    from lossbench import trial
    from lossbench.build import dry_build

    hydra_overrides, task_overrides = split_hydra([*search_overrides(overrides), *overrides])
    fixed, searched = search_space.split(task_overrides)
    compose_run(fixed + [search_space.representative(o) for o in searched.values()])  # every key exists
    cfg, choices = compose_run(fixed)
    validate(cfg)
    settings = hydra_settings(fixed + hydra_overrides)
    validate_launcher(settings.launcher)
    validate_launcher(settings.sweeper, "hydra.sweeper", SWEEPER_TYPES)
    target = str(settings.sweeper._target_)
    dry_build(cfg, choices, here="slurm" not in str(settings.launcher.get("_target_", "")).lower())
    directions = trial.directions(trial.objective_columns(cfg))
    results_dir = Path(cfg.results_dir).expanduser()
    store.check_layout(results_dir)
    sweep = sweep_id(overrides)
    given = {o.split("=", 1)[0].lstrip("+~") for o in hydra_overrides}
    optuna = study.is_optuna(settings.sweeper)
    extra = study.settings(settings.sweeper, given, results_dir, sweep, directions) if optuna else []
    with ExitStack() as held:
        if optuna:
            try:
                held.enter_context(run_lock(results_dir, f"study-{sweep}", sweep))
            except RunLocked as exc:
                return CommandResult([f"study {sweep} is already being run {describe_holder(exc.holder)}: "
                                      "not started"], 1)
            held.enter_context(study.grid_sampler_without_stop())
        hydra = _hydra()
        try:
            master = hydra.compose_config(CONFIG_NAME, [*task_overrides, *hydra_overrides, *extra],
                                          with_log_configuration=True, run_mode=RunMode.MULTIRUN)
            run_context, slurm = _launcher_settings(master, context, sweep)
            Path(master.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)  # its results, even with 0 trials to go
            hydra_context = HydraContext(config_loader=hydra.config_loader, callbacks=Callbacks(master))
            sweeper = Plugins.instance().instantiate_sweeper(config=master, hydra_context=hydra_context,
                                                             task_function=_trial_function(run_context, not slurm))
            try:
                sweeper.sweep(arguments=list(master.hydra.overrides.task))
            except Exception as exc:  # noqa: BLE001 - e.g. no trial completed: the rows and the study say what ran
                stopped = f"the sweeper stopped: {type(exc).__name__}: {_first_line(exc)}"
            else:
                stopped = None
        finally:
            GlobalHydra.instance().clear()
    result = _study_summary(Path(master.hydra.sweep.dir), target, sweep, results_dir)
    if stopped:
        result.lines.insert(0, stopped)
        result.exit_code = 1
    return result


def _trial_function(context: RunContext, local: bool) -> Any:
    """The function every trial runs: its overrides (as the sweeper proposed them) through trial.run_trial,
    whose objective goes back to the sweeper. Local workers end with their launcher (`_task_function`)."""
    launcher = (os.getpid(), process_started(os.getpid()))

    def task(cfg: DictConfig) -> float | list[float]:
        from hydra.core.hydra_config import HydraConfig

        from lossbench import trial

        if local and os.getpid() != launcher[0]:
            exit_with_launcher(*launcher)
        return trial.run_trial(list(HydraConfig.get().overrides.task), context, here=local)

    return task


def _study_summary(sweep_dir: Path, target: str, sweep: str, results_dir: Path) -> CommandResult:
    """The sweeper's result (`optimization_results.yaml`, which Hydra's sweepers write) and, for a stored
    Optuna study, its trial counts."""
    import yaml

    path = sweep_dir / "optimization_results.yaml"
    found = yaml.safe_load(path.read_text()) if path.is_file() else {}
    lines = [f"sweep {sweep} ({target.rsplit('.', 1)[-1]}): results in {path}"]
    for summary in study.summaries(results_dir):
        if summary["study"] == sweep:
            lines.append(f"study {sweep}: {summary['trials']} trials, {summary['complete']} complete, "
                         f"{summary['failed']} failed  (storage {study.storage_url(results_dir, sweep)})")
    if "best_value" in found:
        lines.append(f"best value {found['best_value']:.6g} at {found.get('best_params')}")
    for solution in found.get("solutions", []):
        lines.append(f"pareto: values {solution['values']} at {solution['params']}")
    return CommandResult(lines, 0 if found.get("best_value") is not None or found.get("solutions") else 1)


def _first_line(exc: BaseException) -> str:
    """The most telling line of an exception's message (sbatch's own error when there is one)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [type(exc).__name__])[-1 if errors else 0][:300]


def _task_function(jobs: list[Job], context: RunContext, local: bool) -> Any:
    """The function every launched job runs: train the preflight's config of job number `hydra.job.num`.

    With a local launcher (joblib's loky workers, submitit_local's subprocesses) a job in a worker
    process ends itself when the `lossbench run` that launched it is gone (SIGKILL, SIGTERM, Ctrl-C),
    and does not start if it is gone already: no orphan keeps training and writing rows. SLURM jobs
    belong to the cluster and outlive their submitter.
    """
    launcher = (os.getpid(), process_started(os.getpid()))

    def task(cfg: DictConfig) -> None:  # Hydra passes its own composition; the preflight's is used
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import OmegaConf

        from lossbench.run import execute

        if local and os.getpid() != launcher[0]:
            exit_with_launcher(*launcher)
        num = OmegaConf.select(HydraConfig.get(), "job.num", default=0) if len(jobs) > 1 else 0
        job = jobs[num]
        # --restart applies to a job's first start, not to its resumption after a SLURM requeue
        execute(job.cfg, job.choices, replace(context, restart=context.restart and not requeued()), job.identity)

    return task


def _parallel_jobs(launcher: DictConfig) -> int:
    """How many jobs a local launcher runs at once on this host (joblib's n_jobs; -1 = one per CPU)."""
    n_jobs = launcher.get("n_jobs")
    if not isinstance(n_jobs, int):
        return 1
    return (os.cpu_count() or 1) if n_jobs < 0 else max(1, n_jobs)
