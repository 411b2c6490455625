"""`lossbench status`: what a results folder holds, per sweep, from rows, manifests and run locks (liveness by
heartbeat), joined for SLURM sweeps with the cluster's accounting of the sweep's jobs (`sacct` by job name),
and the tuning studies it keeps (trials done, best value and parameters)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from lossbench import store, study
from lossbench.cluster import sweep_job_states
from lossbench.locks import describe_holder, heartbeat, load_markers
from lossbench.results import load_runs
from lossbench.statuses import UNFINISHED, RunStatus

COLUMNS = ["run_id", "status", "error", "error_log", "slurm_job_id", "dataset", "backbone", "variant", "seed", "sweep"]
STATES = ("done", "running", "failed", "diverged", "stopped", "pending")  # stopped: cancelled, timeout, ... by the cluster


def sweep_status(results_dir: Path) -> str:
    """A plain-text table (one line per sweep, then single runs) and the failed / diverged / stale runs."""
    runs = load_runs(results_dir, COLUMNS)
    status = dict(zip(runs.run_id, runs.status)) if not runs.empty else {}
    markers = {m["run_id"]: m for m in load_markers(results_dir) if not str(m["run_id"]).startswith("study-")}
    live = {rid for rid, m in markers.items() if m["alive"] and status.get(rid) != RunStatus.COMPLETED}
    manifests = store.load_manifests(results_dir)
    in_sweeps = {rid for m in manifests for rid in m["run_ids"]}
    # a sampling sweeper's trials (no manifest: their runs are not known in advance), by the sweep in their rows
    trials = {} if runs.empty else {sweep: sorted(set(group.run_id) - in_sweeps) for sweep, group in
                                    runs[runs.sweep.notna()].groupby("sweep")}
    trials = {sweep: ids for sweep, ids in trials.items() if ids}
    single = sorted((set(status) | live) - in_sweeps - {rid for ids in trials.values() for rid in ids})

    lines = [f"{'sweep':<9} {'runs':>5} " + " ".join(f"{s:>8}" for s in STATES) + "  command"]
    for manifest in manifests:
        counts = _counts(manifest["run_ids"], status, live)
        lines.append(f"{manifest['sweep']:<9} {len(manifest['run_ids']):>5} "
                     + " ".join(f"{counts[s]:>8}" for s in STATES) + f"  {manifest['command']}")
        jobs = sweep_job_states(manifest["sweep"]) if "slurm" in manifest["command"] else {}
        if jobs:  # joined with the cluster's accounting: queued, running, failed jobs of the sweep
            lines.append(f"{'':<9} SLURM jobs lossbench-{manifest['sweep']}: "
                         + ", ".join(f"{n} {state}" for state, n in sorted(jobs.items())))
    for sweep, ids in trials.items():
        counts = _counts(ids, status, live)
        lines.append(f"{sweep:<9} {len(ids):>5} " + " ".join(f"{counts[s]:>8}" for s in STATES) + "  (tuning trials)")
    if single:
        counts = _counts(single, status, live)
        lines.append(f"{'-':<9} {len(single):>5} " + " ".join(f"{counts[s]:>8}" for s in STATES) + "  (single runs)")

    problems = runs[runs.status.isin([RunStatus.FAILED, RunStatus.DIVERGED, *UNFINISHED])] if not runs.empty else pd.DataFrame()
    for row in problems.itertuples():
        error = getattr(row, "error", None)
        detail = error if isinstance(error, str) else "non-finite training loss"
        where = f" (log: {row.error_log})" if isinstance(getattr(row, "error_log", None), str) else ""
        job = getattr(row, "slurm_job_id", None)
        where += f" [SLURM job {job}]" if isinstance(job, str) else ""
        lines.append(f"{row.status:<9} {row.run_id}  {row.dataset} {row.backbone} {row.variant} "
                     f"seed={row.seed}: {detail}{where}")
    for rid, marker in markers.items():
        if not marker["alive"] and status.get(rid) != RunStatus.COMPLETED:
            beat = heartbeat(marker)
            age = f"{time.time() - beat:.0f} s ago" if beat is not None else "never"
            lines.append(f"stale     {rid}  its trainer {describe_holder(marker)} is gone (last heartbeat "
                         f"{age}); re-running the same command resumes it")
    for found in study.summaries(results_dir):
        best = "; ".join(f"{', '.join(f'{v:.4g}' for v in b['values'])} at {b['params']}" for b in found["best"])
        lines.append(f"study {found['study']}: {found['trials']} trials ({found['complete']} complete, "
                     f"{found['failed']} failed, {found['running']} running), "
                     f"{'/'.join(found['directions'])}: best {best or 'none yet'}")
    return "\n".join(lines)


def _counts(run_ids: list[str], status: dict[str, str], live: set[str]) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for rid in run_ids:
        st = status.get(rid)
        state = {RunStatus.COMPLETED: "done", RunStatus.FAILED: "failed", RunStatus.DIVERGED: "diverged",
                 **dict.fromkeys(UNFINISHED, "stopped")}.get(st or "", None)
        counts[state or ("running" if rid in live else "pending")] += 1
    return counts
