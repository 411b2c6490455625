"""A `lossbench run` command, single run or sweep: preflight, run identity, skip-if-done, manifest,
launch through Hydra's launchers, and the outcome summary read back from the result rows.

Every job is composed and validated once, here, before anything is written; the launched job
trains the config composed here (it is handed to the task function, not composed again by
lossbench; Hydra's launcher composes its own copy only to set up the job's folder and logging).
Jobs are identified by run id (identity.py): a grid that names one effective config twice
(`loss=ce,harmonic distance=a,b`: CE ignores the distance) launches it once, runs that completed
are not launched again (`--force` launches them), and the launch order cycles through the variants
within each seed, so slow drift in machine load does not line up with variants.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from lossbench import cluster, store
from lossbench.config import (
    CONFIG_NAME,
    compose_run,
    conf_dir,
    search_overrides,
    split_hydra,
    sweep_jobs,
    validate,
)
from lossbench.identity import RunIdentity, hash_id, run_identity
from lossbench.results import completed, read_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunFlags:
    """Runtime flags of a command: they steer what runs, never what a run computes."""

    force: bool = False  # re-run runs that already completed
    restart: bool = False  # discard the checkpoints of unfinished runs: train them from the start


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
    already_done: set[str] = field(default_factory=set)
    restart: bool = False  # --restart: unfinished runs discard their checkpoints
    force: bool = False  # --force: completed runs train again
    held: dict[str, dict[str, Any]] = field(default_factory=dict)  # run id -> the live lock of its trainer


@dataclass
class Outcome:
    """Summary lines for the user and the command's exit code."""

    lines: list[str]
    exit_code: int


def preflight(overrides: list[str], multirun: bool) -> list[Job]:
    """Compose, validate and dry-build every job of the command once, before anything runs.

    Raises LossbenchError (one line) for the first bad job; returns the jobs in launch order, one per
    distinct run id.
    """
    from lossbench.run import dry_build

    jobs: dict[str, Job] = {}
    here = not (multirun and _for_a_cluster(overrides))
    for job_overrides in sweep_jobs(overrides) if multirun else [overrides]:
        cfg, choices = compose_run(job_overrides)
        validate(cfg)
        dry_build(cfg, choices, here)
        identity = run_identity(cfg, choices)
        _, task_overrides = split_hydra(job_overrides)
        jobs.setdefault(identity.run_id, Job(task_overrides, cfg, choices, identity))
    for results_dir in {job.results_dir for job in jobs.values()}:
        store.check_writable(results_dir, "results_dir")
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


def plan(overrides: list[str], multirun: bool, flags: RunFlags) -> Plan:
    """Preflight every job, then decide what to launch: everything not yet completed (all with --force)."""
    jobs = preflight(overrides, multirun)
    done = set() if flags.force else {rid for folder in {j.results_dir for j in jobs}
                                      for rid in completed(folder, [j.run_id for j in jobs if j.results_dir == folder])}
    held = {j.run_id: lock for j in jobs if j.run_id not in done
            for lock in [store.live_lock(j.results_dir, j.run_id)] if lock}
    hydra_overrides, _ = split_hydra([*search_overrides(overrides), *overrides])
    return Plan(jobs, [j for j in jobs if j.run_id not in done and j.run_id not in held], hydra_overrides,
                sweep_id(overrides) if multirun else None,
                "lossbench run " + ("-m " if multirun else "") + " ".join(overrides), done, flags.restart,
                flags.force, held)


def run_command(overrides: list[str], multirun: bool, flags: RunFlags) -> Outcome:
    """`lossbench run [-m] OVERRIDES`: plan, write the sweep manifest, launch what is missing, summarise."""
    the_plan = plan(overrides, multirun, flags)
    if the_plan.sweep is not None:
        for results_dir in {j.results_dir for j in the_plan.jobs}:
            store.write_manifest(results_dir, the_plan.sweep, the_plan.command,
                                 sorted(j.run_id for j in the_plan.jobs if j.results_dir == results_dir))
    if not multirun and the_plan.already_done:
        job = the_plan.jobs[0]
        return Outcome([f"run {job.run_id} already completed: skipped (--force re-runs it)  {job.identity.label}"], 0)
    if not multirun and the_plan.held:
        job = the_plan.jobs[0]
        return Outcome([f"run {job.run_id} is already training {store.describe_holder(the_plan.held[job.run_id])}: "
                        f"not started  {job.identity.label}"], 1)
    stopped = launch(the_plan, multirun) if the_plan.launch else None
    if stopped is not None:
        record_unfinished(the_plan, stopped)
    result = outcome(the_plan) if multirun else Outcome([], _single_exit_code(the_plan.jobs[0]))
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
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.plugins import Plugins
    from hydra.types import HydraContext, RunMode

    GlobalHydra.instance().clear()
    hydra = Hydra.create_main_hydra2("lossbench", create_config_search_path(str(conf_dir())))
    try:
        if not multirun:
            task = _task_function(the_plan.launch, the_plan.sweep, local=True, restart=the_plan.restart,
                                  force=the_plan.force)
            hydra.run(CONFIG_NAME, task, the_plan.launch[0].overrides + the_plan.hydra_overrides)
            return
        master = hydra.compose_config(CONFIG_NAME, the_plan.launch[0].overrides + the_plan.hydra_overrides,
                                      with_log_configuration=True, run_mode=RunMode.MULTIRUN)
        slurm = "slurm" in str(master.hydra.launcher.get("_target_", "")).lower()
        if "name" in master.hydra.launcher:
            with open_dict(master):
                master.hydra.launcher.name = f"lossbench-{the_plan.sweep}"
        gpus = any((master.hydra.launcher.get(key) or 0) for key in ("gpus_per_node", "gpus_per_task"))
        task = _task_function(the_plan.launch, the_plan.sweep, not slurm, _parallel_jobs(master.hydra.launcher),
                              the_plan.restart, the_plan.force, slurm and gpus)
        context = HydraContext(config_loader=hydra.config_loader, callbacks=Callbacks(master))
        launcher = Plugins.instance().instantiate_launcher(hydra_context=context, task_function=task, config=master)
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


def record_unfinished(the_plan: Plan, stopped: str) -> None:
    """After a launcher stopped: wait for the sweep's other cluster jobs to end, then write a row for every
    launched run without one. A run that started has a running marker naming its SLURM job, whose
    accounting says how it ended; one that never started was not submitted (or cancelled while queued),
    with the launcher's message as the reason."""
    from lossbench.run import record_unfinished as write_row

    cluster.wait_for_jobs(f"lossbench-{the_plan.sweep}")
    markers: dict[tuple[str, str], dict[str, Any]] = {}
    for results_dir in {job.results_dir for job in the_plan.launch}:
        markers.update({(m["run_id"], str(results_dir)): m for m in store.load_markers(results_dir)})
    for job in the_plan.launch:
        if store.read_run(job.results_dir, job.run_id) is not None:
            continue
        marker = markers.get((job.run_id, str(job.results_dir)), {})
        if marker.get("slurm_job_id"):
            status, reason = cluster.job_state(str(marker["slurm_job_id"]), marker.get("job_log"))
        else:
            status, reason = "not_submitted", stopped
        where = {k: marker.get(k) for k in ("host", "slurm_job_id", "slurm_array_task_id", "job_log")}
        write_row(job.cfg, job.identity, the_plan.sweep, status, reason, where)
        store.lock_path(job.results_dir, job.run_id).unlink(missing_ok=True)


def _first_line(exc: BaseException) -> str:
    """The most telling line of an exception's message (sbatch's own error when there is one)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [type(exc).__name__])[-1 if errors else 0][:300]


def _task_function(jobs: list[Job], sweep: str | None, local: bool, parallel_jobs: int = 1,
                   restart: bool = False, force: bool = False, require_cuda: bool = False) -> Any:
    """The function every launched job runs: train the preflight's config of job number `hydra.job.num`.

    With a local launcher (joblib's loky workers, submitit_local's subprocesses) a job in a worker
    process ends itself when the `lossbench run` that launched it is gone (SIGKILL, SIGTERM, Ctrl-C),
    and does not start if it is gone already: no orphan keeps training and writing rows. SLURM jobs
    belong to the cluster and outlive their submitter.
    """
    launcher = (os.getpid(), _started(os.getpid()))

    def task(cfg: DictConfig) -> None:  # Hydra passes its own composition; the preflight's is used
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import OmegaConf

        from lossbench.run import execute

        if local and os.getpid() != launcher[0]:
            _exit_with_launcher(*launcher)
        num = OmegaConf.select(HydraConfig.get(), "job.num", default=0) if len(jobs) > 1 else 0
        job = jobs[num]
        execute(job.cfg, job.choices, sweep=sweep, identity=job.identity, parallel_jobs=parallel_jobs,
                restart=restart and not _requeued(), force=force, require_cuda=require_cuda)

    return task


def _requeued() -> bool:
    """True in a SLURM job that runs again after a requeue (preemption, time-limit checkpoint, `scontrol
    requeue`): `--restart` applied to its first start, not to its resumption."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def _parallel_jobs(launcher: DictConfig) -> int:
    """How many jobs a local launcher runs at once on this host (joblib's n_jobs; -1 = one per CPU)."""
    n_jobs = launcher.get("n_jobs")
    if not isinstance(n_jobs, int):
        return 1
    return (os.cpu_count() or 1) if n_jobs < 0 else max(1, n_jobs)


def _started(pid: int) -> str | None:
    """A process's start time (Linux /proc, field 22): with the pid it names one process, never a reused pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, started: str | None) -> bool:
    """The process that had this pid and start time still runs (a reused pid does not count)."""
    return store.pid_alive(pid) and (started is None or _started(pid) == started)


def _exit_with_launcher(pid: int, started: str | None, interval_s: float = 0.5) -> None:
    """End this worker process now if the launcher is gone, else as soon as it goes (a daemon thread)."""

    def end() -> None:
        log.error("the lossbench run that launched this job (pid %d) is gone: ending job process %d", pid, os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)

    if not _alive(pid, started):
        end()

    def watch() -> None:
        while _alive(pid, started):
            time.sleep(interval_s)
        end()

    threading.Thread(target=watch, name="lossbench-launcher-watch", daemon=True).start()


def outcome(the_plan: Plan) -> Outcome:
    """What became of every job, read from the result rows (whatever the launcher said), and the exit code."""
    found = {folder: read_rows(folder, [j.run_id for j in the_plan.jobs if j.results_dir == folder])
             for folder in {j.results_dir for j in the_plan.jobs}}
    rows = {j.run_id: found[j.results_dir].get(j.run_id) for j in the_plan.jobs}
    for job in the_plan.jobs:  # no row, but a live trainer elsewhere (e.g. an overlapping sweep's job)
        lock = store.live_lock(job.results_dir, job.run_id) if rows[job.run_id] is None else None
        if lock:
            the_plan.held.setdefault(job.run_id, lock)
    status = {rid: (row or {}).get("status", "running_elsewhere" if rid in the_plan.held else "missing")
              for rid, row in rows.items()}
    counts = Counter(status.values())
    parts = [f"{counts[s]} {s}" for s in ("completed", "diverged", "failed", *cluster.UNFINISHED,
                                          "running_elsewhere", "missing") if counts[s]]
    skipped = f" ({len(the_plan.already_done)} already done, skipped)" if the_plan.already_done else ""
    lines = [f"{len(the_plan.jobs)} runs: {', '.join(parts)}{skipped}"]
    for job in the_plan.jobs:
        st = status[job.run_id]
        if st != "completed":
            row = rows[job.run_id] or {}
            detail = row.get("error") or {"diverged": "non-finite training loss",
                                          "missing": "no result row (killed?)"}.get(st, "")
            if st == "running_elsewhere":
                detail = f"training {store.describe_holder(the_plan.held[job.run_id])}: not submitted again"
            where = f"  [SLURM job {row['slurm_job_id']}]" if row.get("slurm_job_id") else ""
            lines.append(f"  {st:<9} {job.run_id}  {job.identity.label}  {detail}{where}")
    return Outcome(lines, 0 if counts["completed"] == len(the_plan.jobs) else 1)


def _single_exit_code(job: Job) -> int:
    return 0 if (store.read_run(job.results_dir, job.run_id) or {}).get("status") == "completed" else 1
