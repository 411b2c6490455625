"""What a `lossbench run` command will do, and what became of it: preflight, run identity, skip-if-done,
the sweep manifest, and the summary read back from the result rows. Launching is launch.py's.

Every job is composed and validated once, here, before anything is written; the launched job
trains the config composed here (it is handed to the task function, not composed again by
lossbench; Hydra's launcher composes its own copy only to set up the job's folder and logging).
Jobs are identified by run id (identity.py): a grid that names one effective config twice
(`loss=ce,harmonic distance=a,b`: CE ignores the distance) launches it once, runs that completed
are not launched again (`--force` launches them), and the launch order cycles through the variants
within each seed, so slow drift in machine load does not line up with variants.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lossbench import LossbenchError, cluster, search_space, store
from lossbench.config import compose_run, hydra_settings, search_overrides, split_hydra, sweep_jobs
from lossbench.context import RunContext
from lossbench.identity import RunIdentity, hash_id, run_identity
from lossbench.locks import describe_holder, live_lock, load_markers, lock_path
from lossbench.statuses import UNFINISHED, RunStatus
from lossbench.validate import validate, validate_launcher


@dataclass
class Job:
    """One job as the preflight composed it: task overrides, config, group choices, identity."""

    overrides: list[str]
    cfg: DictConfig
    choices: dict[str, str]
    identity: RunIdentity

    @property
    def run_id(self) -> str:
        return self.identity.run_id

    @property
    def results_dir(self) -> Path:
        return Path(self.cfg.results_dir).expanduser()


@dataclass
class Plan:
    """What a command will do: every distinct job, the ones to launch, and the sweep's id."""

    jobs: list[Job]
    launch: list[Job]
    hydra_overrides: list[str]
    sweep: str | None
    command: str
    context: RunContext = RunContext()  # --force, --restart, and the sweep's id
    already_done: set[str] = field(default_factory=set)
    held: dict[str, dict[str, Any]] = field(default_factory=dict)  # run id -> the live lock of its trainer


@dataclass
class CommandResult:
    """Summary lines for the user and the command's exit code."""

    lines: list[str]
    exit_code: int


def preflight(overrides: list[str], multirun: bool) -> list[Job]:
    """Compose, validate and dry-build every job of the command once, before anything runs.

    Raises LossbenchError (one line) for the first bad job; returns the jobs in launch order, one per
    distinct run id. Checks that need no torch run first (composition, the launcher, the results folder),
    so most bad input is refused before torch is imported.
    """
    here = not (multirun and _for_a_cluster(overrides))
    validate_launcher(hydra_settings(search_space.split(overrides)[0]).launcher)
    grid = sweep_jobs(overrides) if multirun else [overrides]
    if not grid:
        raise LossbenchError(f"the sweep {' '.join(overrides)} has no jobs (an empty range or list); nothing to run")
    composed = [(job_overrides, *compose_run(job_overrides)) for job_overrides in grid]
    for results_dir in {Path(cfg.results_dir).expanduser() for _, cfg, _ in composed}:
        store.check_layout(results_dir)
    from lossbench.build import dry_build  # torch: imported once the command line composes

    jobs: dict[str, Job] = {}
    built: set[str] = set()  # cells dry-built: the seeds of a cell build the same objects
    cache: dict = {}  # each distinct dataset is read, and each distinct model run, once
    for job_overrides, cfg, choices in composed:
        validate(cfg)
        identity = run_identity(cfg, choices)
        if identity.cell_id not in built:
            dry_build(cfg, choices, here, cache)
            built.add(identity.cell_id)
        jobs.setdefault(identity.run_id, Job(split_hydra(job_overrides)[1], cfg, choices, identity))
    ordered = list(jobs.values())
    ordered.sort(key=lambda job: job.identity.axes["seed"])  # stable: variants cycle within each seed
    return ordered


def _for_a_cluster(overrides: list[str]) -> bool:
    """Whether the command's jobs go to cluster nodes (a SLURM launcher chosen on the command line): then
    the device and the data are checked on the node, not on the submitting (login) host."""
    return any(o.split("=", 1)[0].lstrip("+~") == "hydra/launcher" and "slurm" in o.split("=", 1)[-1]
               for o in overrides)


def sweep_id(overrides: list[str]) -> str:
    """A sweep's id: a hash of its task overrides (not `hydra.*`: a launcher setting changes no run),
    so re-running the same command resumes the same sweep."""
    _, task_overrides = split_hydra(overrides)
    return hash_id({"overrides": sorted(task_overrides)})[:8]


def plan(overrides: list[str], multirun: bool, context: RunContext = RunContext()) -> Plan:
    """Preflight every job, then decide what to launch: everything not yet completed (all with --force)."""
    jobs = preflight(overrides, multirun)
    from lossbench.results import completed  # pandas and pyarrow: once the command is valid

    done = set() if context.force else {rid for folder in {j.results_dir for j in jobs}
                                      for rid in completed(folder, [j.run_id for j in jobs if j.results_dir == folder])}
    held = {j.run_id: lock for j in jobs if j.run_id not in done
            for lock in [live_lock(j.results_dir, j.run_id)] if lock}
    hydra_overrides, _ = split_hydra([*search_overrides(overrides), *overrides])
    sweep = sweep_id(overrides) if multirun else None
    return Plan(jobs, [j for j in jobs if j.run_id not in done and j.run_id not in held], hydra_overrides, sweep,
                "lossbench run " + ("-m " if multirun else "") + " ".join(overrides), replace(context, sweep=sweep),
                done, held)


def record_stopped(the_plan: Plan, stopped: str) -> None:
    """After a launcher stopped: wait for the sweep's other cluster jobs to end, then write a row for every
    launched run without one. A run that started has a running marker naming its SLURM job, whose
    accounting says how it ended; one that never started was not submitted (or cancelled while queued),
    with the launcher's message as the reason."""
    from lossbench.results import read_run
    from lossbench.run import record_unfinished

    cluster.wait_for_jobs(f"lossbench-{the_plan.sweep}")
    markers: dict[tuple[str, str], dict[str, Any]] = {}
    for results_dir in {job.results_dir for job in the_plan.launch}:
        markers.update({(m["run_id"], str(results_dir)): m for m in load_markers(results_dir)})
    for job in the_plan.launch:
        if read_run(job.results_dir, job.run_id) is not None:
            continue
        marker = markers.get((job.run_id, str(job.results_dir)), {})
        if marker.get("slurm_job_id"):
            status, reason = cluster.job_state(str(marker["slurm_job_id"]), marker.get("job_log"))
        else:
            status, reason = RunStatus.NOT_SUBMITTED, stopped
        where = {k: marker.get(k) for k in ("host", "slurm_job_id", "slurm_array_task_id", "job_log")}
        record_unfinished(job.cfg, job.identity, the_plan.sweep, status, reason, where)
        lock_path(job.results_dir, job.run_id).unlink(missing_ok=True)


def sweep_summary(the_plan: Plan) -> CommandResult:
    """What became of every job, read from the result rows (whatever the launcher said), and the exit code."""
    from lossbench.results import read_rows

    found = {folder: read_rows(folder, [j.run_id for j in the_plan.jobs if j.results_dir == folder])
             for folder in {j.results_dir for j in the_plan.jobs}}
    rows = {j.run_id: found[j.results_dir].get(j.run_id) for j in the_plan.jobs}
    for job in the_plan.jobs:  # no row, but a live trainer elsewhere (e.g. an overlapping sweep's job)
        lock = live_lock(job.results_dir, job.run_id) if rows[job.run_id] is None else None
        if lock:
            the_plan.held.setdefault(job.run_id, lock)
    status = {rid: RunStatus((row or {}).get("status", RunStatus.RUNNING_ELSEWHERE if rid in the_plan.held
                                                      else RunStatus.MISSING)) for rid, row in rows.items()}
    counts = Counter(status.values())
    parts = [f"{counts[s]} {s}" for s in (RunStatus.COMPLETED, RunStatus.DIVERGED, RunStatus.FAILED, *UNFINISHED,
                                          RunStatus.RUNNING_ELSEWHERE, RunStatus.MISSING) if counts[s]]
    skipped = f" ({len(the_plan.already_done)} already done, skipped)" if the_plan.already_done else ""
    lines = [f"{len(the_plan.jobs)} runs: {', '.join(parts)}{skipped}"]
    for job in the_plan.jobs:
        st = status[job.run_id]
        if st != RunStatus.COMPLETED:
            row = rows[job.run_id] or {}
            detail = row.get("error") or {RunStatus.DIVERGED: "non-finite training loss",
                                          RunStatus.MISSING: "no result row (killed?)"}.get(st, "")
            if st == RunStatus.RUNNING_ELSEWHERE:
                detail = f"training {describe_holder(the_plan.held[job.run_id])}: not submitted again"
            where = f"  [SLURM job {row['slurm_job_id']}]" if row.get("slurm_job_id") else ""
            lines.append(f"  {st:<9} {job.run_id}  {job.identity.label}  {detail}{where}")
    return CommandResult(lines, 0 if counts[RunStatus.COMPLETED] == len(the_plan.jobs) else 1)


def single_exit_code(job: Job) -> int:
    """A single run's exit code: 0 when its row says completed."""
    from lossbench.results import is_completed

    return 0 if is_completed(job.results_dir, job.run_id) else 1
