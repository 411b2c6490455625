"""The tuned protocol, as one command (`lossbench tune`): fair per-variant tuning, then seeds.

Stage 1: for every variant of the grid, the same search space and the same number of trials of the same
sampler, on validation (the objective: the task's selection score, or `objective=`), at the first seed;
each variant's trials run in `<results_dir>/tuning/` (their own results folder) and its Optuna study is
kept there (study.py). Stage 2: each variant's best configuration over every seed, in `<results_dir>`, so a
report of `<results_dir>` compares stage-2 runs only. Equal budget per variant is the fairness rule: a
variant is never tuned longer than another (failed trials count against the budget, as they would for
any variant). `<results_dir>/tuning/protocol-<id>.json` records the space, budget, each variant's chosen
values and its stage-2 runs; the report's tuning table is read from it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from lossbench import LossbenchError, search_space, store, study
from lossbench.config import split_hydra
from lossbench.context import RunContext
from lossbench.identity import hash_id
from lossbench.launch import run_command, run_sweeper
from lossbench.plan import CommandResult, preflight, sweep_id
from lossbench.trial import objective_columns

log = logging.getLogger(__name__)
TUNING = "tuning"


def tune(overrides: list[str], space: list[str], trials: int, seeds: list[int],
         context: RunContext = RunContext()) -> CommandResult:
    """Run the protocol; returns one summary line per variant and the manifest's path."""
    if trials < 1:
        raise LossbenchError(f"--trials: got {trials}; valid: an integer >= 1 (trials per variant)")
    if not seeds:
        raise LossbenchError("--seeds: got no seed; valid: a comma list of integers, e.g. 0,1,2,3,4")
    _, searched = search_space.split(space)
    plain = [s for s in space if s not in {o.input_line for o in searched.values()}]
    if plain or not searched:
        raise LossbenchError(f"--space {plain[0] if plain else ''}: give a search space, e.g. "
                             "'optim.optimizer.lr=tag(log,interval(1e-4,1e-1))' or 'key=choice(a,b)'")
    hydra_overrides, task_overrides = split_hydra(overrides)
    jobs = preflight([*_without(task_overrides, "seed"), f"seed={seeds[0]}"], multirun=True)
    objective = [c.name for c in objective_columns(jobs[0].cfg)]
    if len(objective) != 1:  # stage 2 needs one best configuration per variant, not a Pareto front
        raise LossbenchError(f"objective={objective}: lossbench tune picks one best configuration per variant, so it "
                             "needs one objective column; for a Pareto front use lossbench run -m hydra/sweeper=optuna")
    results_dir = jobs[0].results_dir
    tuning_dir = results_dir / TUNING
    key = hash_id({"overrides": sorted(task_overrides), "space": sorted(space), "trials": trials, "seeds": seeds})[:8]
    manifest: dict[str, Any] = {"protocol": key, "command": _command(overrides, space, trials, seeds),
                                "space": space, "trials": trials, "seeds": seeds, "created_at": time.time(),
                                "sampler": next((o.split("=", 1)[1] for o in hydra_overrides
                                                 if o.startswith("hydra/sweeper/sampler=")), "tpe"),
                                "objective": objective,
                                "tuning_dir": str(tuning_dir), "variants": []}
    lines = []
    for job in jobs:
        label = job.identity.axes["variant"]
        variant = _without(job.overrides, "seed", "results_dir")
        stage1 = [*variant, *space, f"seed={seeds[0]}", f"results_dir={tuning_dir}", "hydra/sweeper=optuna",
                  f"hydra.sweeper.n_trials={trials}", *hydra_overrides]
        log.info("tuning %s: %d trials of %s", label, trials, " ".join(space))
        run_sweeper(stage1, context)
        name = sweep_id(stage1)
        found = next((s for s in study.summaries(tuning_dir) if s["study"] == name), None)
        if not found or not found["best"]:
            lines.append(f"{label}: no trial completed; not run over seeds")
            manifest["variants"].append({"variant": label, "overrides": variant, "study": name, "best": None})
            continue
        best = found["best"][0]
        chosen = [f"{k}={v}" for k, v in best["params"].items()]
        stage2 = [*variant, *chosen, f"seed={','.join(map(str, seeds))}", f"results_dir={results_dir}",
                  *hydra_overrides]
        run_ids = [j.run_id for j in preflight(stage2, multirun=True)]
        result = run_command(stage2, multirun=True, context=context)
        manifest["variants"].append({"variant": label, "overrides": variant, "study": name,
                                     "storage": study.storage_url(tuning_dir, name), "trials": found["trials"],
                                     "complete": found["complete"], "failed": found["failed"],
                                     "objective": found["best"][0]["values"], "directions": found["directions"],
                                     "best": best["params"], "runs": run_ids})
        lines.append(f"{label}: {found['complete']}/{found['trials']} trials completed, best "
                     f"{', '.join(f'{v:.4g}' for v in best['values'])} at {' '.join(chosen)}; "
                     f"{len(seeds)} seeds: {result.lines[0] if result.lines else ''}")
    path = store.write_json(tuning_dir / f"protocol-{key}.json", manifest)
    lines.append(f"protocol {key}: {path}  (lossbench report {results_dir} adds its tuning table)")
    return CommandResult(lines, 0 if all(v.get("best") for v in manifest["variants"]) else 1)


def _without(overrides: list[str], *keys: str) -> list[str]:
    """The overrides that do not set any of `keys`."""
    return [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in keys]


def _command(overrides: list[str], space: list[str], trials: int, seeds: list[int]) -> str:
    spaces = " ".join(f"--space '{s}'" for s in space)
    return f"lossbench tune {' '.join(overrides)} {spaces} --trials {trials} --seeds {','.join(map(str, seeds))}"


def protocols(results_dir: Path) -> list[dict[str, Any]]:
    """The tuned protocols recorded in a results folder (for the report's tuning table)."""
    import json

    out = []
    for path in sorted((results_dir / TUNING).glob("protocol-*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            log.warning("skipping unreadable tuning protocol %s (%s)", path, exc)
    return out
