"""An Optuna study (Hydra's Optuna sweeper) kept in the results folder, so a tuning sweep resumes where it
stopped and `n_trials` is the study's whole budget, not a number of trials to add.

lossbench sets, unless the command line sets them itself: the study's name (the sweep id: the same
command is the same study), its storage (`<results_dir>/studies/<name>.db`, SQLite), the directions
(from the objective columns' declarations), a sampler seed (the number of trials the study has asked so far: the
same command on the same stored study proposes the same trials, and a resumed study does not repeat its
first random proposals), `max_failure_rate=1` (a failed trial fails alone; the study goes on) and `n_trials` = the budget
minus the trials already finished. Trials left running by a killed command are marked failed (with the
user attribute `lossbench: interrupted`, not counted in the budget) and proposed again first, so their
runs resume from their checkpoints.

Why SQLite and not Optuna's journal file storage: Hydra's Optuna sweeper (1.3, the current release) pins
optuna < 3, which has no journal storage, and its SQLAlchemy 1.4 storage is what that pin supports. One
process writes the study (the `lossbench run` that drives the sweeper); the trials themselves run wherever
the launcher puts them (joblib workers, SLURM array jobs) and return their values to it, so a study on a
shared file system has a single writer. A lock (running/study-<name>.json) keeps a second command off a
study that is being run.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

log = logging.getLogger(__name__)

OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
STUDIES = "studies"
INTERRUPTED = "interrupted"


def storage_url(results_dir: Path, name: str) -> str:
    """The SQLite URL of a study in a results folder."""
    return f"sqlite:///{(results_dir / STUDIES / f'{name}.db').resolve()}"


def is_optuna(sweeper: DictConfig) -> bool:
    """Whether the configured Hydra sweeper is Optuna's."""
    return str(sweeper.get("_target_", "")) == OPTUNA_SWEEPER


def settings(sweeper: DictConfig, given: set[str], results_dir: Path, name: str, directions: list[str]) -> list[str]:
    """Hydra overrides for the Optuna sweeper's settings lossbench owns (those not in `given`, the
    `hydra.sweeper.*` keys the command line sets), after resuming the stored study."""
    storage = storage_url(results_dir, name) if "hydra.sweeper.storage" not in given else sweeper.storage
    study = name if "hydra.sweeper.study_name" not in given else sweeper.study_name
    if "hydra.sweeper.storage" not in given:
        (results_dir / STUDIES).mkdir(parents=True, exist_ok=True)
    done, asked = resume(storage, study) if storage else (0, 0)
    wanted: dict[str, Any] = {
        # quoted: Hydra reads a bare sweep id such as 42132e52 as the float 4.2132e+56, a path with ',' as a list
        "hydra.sweeper.study_name": quoted(study),
        "hydra.sweeper.storage": quoted(storage) if storage else None,
        "hydra.sweeper.direction": "[" + ",".join(directions) + "]" if len(directions) > 1 else directions[0],
        "hydra.sweeper.max_failure_rate": 1.0,
        # a seeded sampler (where it has a seed and none is set): the same command on the same stored study
        # proposes the same trials; seeded by the trials already done, so a resumed study does not draw its
        # first random proposals again
        "hydra.sweeper.sampler.seed": asked if sweeper.get("sampler") and "seed" in sweeper.sampler
        and sweeper.sampler.seed is None else None,
    }
    out = [f"{key}={value}" for key, value in wanted.items() if key not in given and value is not None]
    if done:
        remaining = max(0, int(sweeper.n_trials) - done)
        log.info("study %s: %d of %d trials done; %d to go", study, done, sweeper.n_trials, remaining)
        out.append(f"hydra.sweeper.n_trials={remaining}")
    return out


@contextmanager
def grid_sampler_without_stop() -> Iterator[None]:
    """While the sweeper runs: Optuna's GridSampler does not call `study.stop()` after the last grid point.

    Why: under Hydra's Optuna sweeper (1.3) the study is driven by ask/tell, where `stop()` raises
    RuntimeError; the sweeper swallows that error after a completed trial but not after a failed one
    (hydra_optuna_sweeper/_impl.py, the `study.tell` in its `except` branch), so a grid whose last trial
    failed stopped the whole sweep. Nothing needs stopping: the sweeper already sets `n_trials` to the
    grid's size. The sweeper checks for GridSampler itself (`sampler.func == GridSampler`), so a subclass
    in its place would lose the grid handling; the method is swapped for the duration instead."""
    from optuna.samplers import GridSampler

    original = GridSampler.after_trial
    GridSampler.after_trial = lambda self, study, trial, state, values: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        GridSampler.after_trial = original  # type: ignore[method-assign]


def quoted(text: str) -> str:
    """`text` as a quoted string of Hydra's override grammar: always a string, whatever it looks like (a
    quote is escaped, and so are the backslashes right before a quote or the closing quote, Hydra's rule)."""
    body = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), str(text))
    return f"'{body}'"


def resume(storage: str, name: str) -> tuple[int, int]:
    """(finished trials, trials ever asked) of a stored study ((0, 0) if there is none); trials a killed
    command left running are marked failed and interrupted, and their parameters queued to be proposed
    again (a trial whose run finished before the kill then gets its value from the stored row)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:  # no such study yet
        return 0, 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(trial._trial_id, "lossbench", INTERRUPTED)
        study._storage.set_trial_state(trial._trial_id, optuna.trial.TrialState.FAIL)
        with warnings.catch_warnings():  # enqueue_trial is "experimental" in optuna 2.10; it is what resumes
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.enqueue_trial(trial.params)
        log.info("study %s: trial %d was interrupted; proposing %s again", name, trial.number, trial.params)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED)
    done = sum(1 for t in study.get_trials(deepcopy=False, states=finished)
               if t.user_attrs.get("lossbench") != INTERRUPTED)
    return done, len(study.get_trials(deepcopy=False))


def summaries(results_dir: Path) -> list[dict[str, Any]]:
    """Every stored study of a results folder: name, trials done and failed, best value(s) and parameters
    (empty without optuna installed)."""
    paths = sorted((results_dir / STUDIES).glob("*.db"))
    if not paths:
        return []
    try:
        import optuna
    except ImportError:
        return []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = []
    for path in paths:
        storage = storage_url(results_dir, path.stem)
        for summary in optuna.get_all_study_summaries(storage):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            trials = [t for t in study.trials if t.user_attrs.get("lossbench") != INTERRUPTED]
            states = [t.state.name.lower() for t in trials]
            best = study.best_trials if len(study.directions) > 1 else (
                [study.best_trial] if "complete" in states else [])
            out.append({"study": summary.study_name, "trials": len(trials), "complete": states.count("complete"),
                        "failed": states.count("fail"), "running": states.count("running"),
                        "directions": [d.name.lower() for d in study.directions],
                        "best": [{"values": t.values, "params": t.params} for t in best]})
    return out
