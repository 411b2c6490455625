"""Every result column, declared once: name, dtype, unit, description, and for reported metrics the
report block, label, direction and number format.

Writers (run, engine, cost tracking), the report, `lossbench status` and the tests read this module;
nothing else spells a column's meaning. A column is one of:
- common: written by every run of every task (`SUMMARY`, `HISTORY`);
- a score of a task, written per split (`train_/val_/test_` + name): declared as `per_split=True` with
  the task that computes it, and expanded by `split_columns`;
- a task's own column (probes, per-token throughput, grokking measures): declared with the code that
  computes it (tasks/*.py, probes.py) and listed by that task's `columns`; results.py collects the
  columns of every known task into the one schema.

`present` says on which rows a column has a value: `always` (every row), `trained` (rows of runs that
trained: completed or diverged) or `failed` (rows of failed runs). Every file holds every declared column
all the same (a typed null where the row has no value): `arrow_schema` turns declarations into the one
Arrow schema every writer writes (lossbench/results.py). `check_row` compares a row with the
declaration; the tests call it for every task.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import pyarrow as pa

from lossbench.statuses import TRAINED

# 2: run ids hash the effective config only; head, variant, cost-free identity columns.
# 3: every file on one declared Arrow schema (typed nulls, declared int/float types); run ids without
#    measurement and presentation settings (tracker, trainer.progress, trainer.eval_batch_size); cell_id.
SCHEMA_VERSION = 3
BLOCKS = ("Performance", "Interpretability", "Sustainability")
SPLITS = ("train", "val", "test")
SPLIT_LABELS = {"train": "Train", "val": "Val.", "test": "Test"}

Dtype = Literal["float", "int", "str", "bool"]
Presence = Literal["always", "trained", "failed"]
ARROW_TYPES: dict[str, pa.DataType] = {"float": pa.float64(), "int": pa.int64(), "str": pa.string(),
                                       "bool": pa.bool_()}


@dataclass(frozen=True)
class Column:
    """One result column. `block`, `higher_is_better` (None: no agreed direction, shown but never
    ranked) and `fmt` matter for columns that reports show."""

    name: str
    dtype: Dtype
    description: str
    unit: str = ""
    label: str = ""
    block: str | None = None
    higher_is_better: bool | None = None
    fmt: str = ".3f"
    present: Presence = "trained"
    per_split: bool = False
    distance_heads_only: bool = False  # meaningless for a linear head: reports show n/a there
    nullable: bool = True  # False: every row of every status has a value
    energy_derived: bool = False  # computed from energy_kwh: labelled "(modelled)" where any energy is a model

    @property
    def title(self) -> str:
        """The table header: label (or name) and unit."""
        text = self.label or self.name
        return f"{text} [{self.unit}]" if self.unit and self.unit not in text else text


def split_columns(scores: Iterable[Column], splits: Sequence[str] = SPLITS) -> list[Column]:
    """Expand per-split score declarations to `train_x, val_x, test_x` columns."""
    out = []
    for column in scores:
        for split in splits:
            label = f"{SPLIT_LABELS[split]} {column.label or column.name}"
            out.append(replace(column, name=f"{split}_{column.name}", label=label, per_split=False,
                               description=f"{column.description} ({split} split, selected checkpoint)"))
    return out


def column(name: str, dtype: Dtype, description: str, **kw: object) -> Column:
    """A Column, declared where its value is computed (tasks, probes) or below for the common ones."""
    return Column(name, dtype, description, **kw)  # type: ignore[arg-type]


_c = column


# --- columns every run writes ------------------------------------------------------------------------
IDENTITY = [
    _c("run_id", "str", "hash of the identity keys of the effective config (lossbench/identity.py; 16 hex digits)",
       present="always", nullable=False),
    _c("cell_id", "str", "hash of the same keys without the seed: the runs of one cell differ only by seed, and the "
       "report's mean, std and tests are over one cell's runs, never across cells", present="always",
       nullable=False),
    _c("task", "str", "the task (classification, lm, ...)", present="always", nullable=False),
    _c("dataset", "str", "dataset config", present="always", nullable=False),
    _c("backbone", "str", "backbone config", present="always", nullable=False),
    _c("head", "str", "head of the loss: linear or harmonic (a distance head)", present="always", nullable=False),
    _c("loss", "str", "the loss as users name it: the criterion for a linear head, harmonic for a distance head",
       present="always", nullable=False),
    _c("criterion", "str", "the criterion on the logits (ce, focal, dce, ...)", present="always", nullable=False),
    _c("distance", "str", "the distance of a harmonic head; none for a linear head", present="always",
       nullable=False),
    _c("variant", "str", "report label from the effective config: ce, focal, harmonic/cosine, harmonic/cosine + focal",
       present="always", nullable=False),
    _c("optim", "str", "optimizer config", present="always", nullable=False),
    _c("seed", "int", "run seed (backbone init, data order, dropout)", present="always", nullable=False),
    _c("experiment", "str", "named grid the run belongs to (conf/experiment), or null", present="always"),
    _c("sweep", "str", "id of the sweep command that launched it, or null", present="always"),
    _c("status", "str", "completed, diverged (non-finite training loss), failed, or how a cluster job ended "
       "without a row of its own: cancelled, timeout, out_of_memory, node_fail, preempted, not_submitted",
       present="always", nullable=False),
]
FAILURE = [
    _c("error", "str", "the exception of a failed run, or the SLURM state and reason, one line", present="failed"),
    _c("error_log", "str", "path of the failed run's traceback (errors/<run_id>.log) or of its job's log",
       present="failed"),
]
LOSS_SCORE = _c("loss", "float", "the training criterion (target-weighted mean)", label="loss", per_split=True,
                block="Performance", higher_is_better=False)
TRAINING = [
    _c("best_epoch", "float", "epoch of the selected checkpoint"),
    _c("epochs", "float", "epochs trained (fractional for step-based runs)"),
    _c("steps", "int", "optimizer steps taken"),
    _c("resumed_from_step", "int", "the step this run resumed from after an interruption (its checkpoint); null "
       "when it trained in one go. Cost columns (duration, CPU/GPU time, energy) cover the last segment only"),
    _c("grad_norm_mean", "float", "mean global L2 gradient norm over steps, before clipping"),
    _c("grad_norm_std", "float", "population std of the gradient norm over steps"),
    _c("grad_norm_max", "float", "largest gradient norm"),
    _c("grad_norm_cv", "float", "coefficient of variation (std / mean) of the gradient norm", label="Grad-norm CV",
       block="Performance", higher_is_better=False),
    _c("grad_spikes", "int", "steps whose norm exceeds trainer.spike_factor x the median of the previous "
       "trainer.spike_window", label="Grad spikes", block="Performance", higher_is_better=False, fmt=".1f"),
    _c("grad_clip_rate", "float", "fraction of steps whose norm exceeds trainer.grad_clip (NaN without clipping)",
       label="Clip rate", block="Performance", higher_is_better=False),
    _c("head_param_norm", "float", "global L2 norm of the head's parameters"),
    _c("model_param_norm", "float", "global L2 norm of all parameters"),
    _c("n_params", "int", "parameters of the model"),
    _c("n_head_params", "int", "parameters of the head"),
    _c("n_train", "int", "training examples (tokens for language models)"),
    _c("n_val", "int", "validation examples (evaluated tokens)"),
    _c("n_test", "int", "test examples (evaluated tokens)"),
    _c("duration_s", "float", "training + evaluation + probes: the window the energy tracker measures", unit="s",
       label="Duration", block="Sustainability", higher_is_better=False, fmt=".1f"),
    _c("train_time_s", "float", "time inside optimizer steps", unit="s"),
    _c("time_per_epoch_s", "float", "training time per epoch", unit="s", label="s / epoch", block="Sustainability",
       higher_is_better=False, fmt=".3g"),
    _c("samples_per_s", "float", "training targets per second"),
    _c("samples_seen", "int", "training targets seen: examples, or tokens for language models"),
    _c("precision", "str", "fp32, or bf16 (autocast on CUDA)"),
    _c("cpu_time_s", "float", "user + system CPU time of the process (all threads) over duration_s: what the run "
       "computed, not how long it waited", unit="s", label="CPU time", block="Sustainability", higher_is_better=False,
       fmt=".3g"),
    _c("gpu_time_s", "float", "GPU time over duration_s (CUDA events); null off CUDA", unit="s"),
    _c("flops", "float", "forward + backward FLOPs of the whole training run (torch.utils.flop_counter + the "
       "distance heads' declared formulas)", unit="FLOP", label="FLOPs", block="Sustainability",
       higher_is_better=False, fmt=".3g"),
    _c("s_per_epoch_per_gflop", "float", "the Rethinking paper's Duration / Epoch / GFLOP axis: time_per_epoch_s "
       "over the GFLOPs of one training example (flops / samples_seen / 1e9, forward + backward), so a bigger "
       "model is not penalised for its size alone", unit="s/GFLOP", label="s / epoch / GFLOP", block="Sustainability",
       higher_is_better=False, fmt=".3g"),
    _c("threads", "int", "torch intra-op threads the run started with (threads=auto: its share of the CPUs)"),
]
ENERGY = [
    _c("energy_kwh", "float", "energy attributed to the run over duration_s: cpu + gpu + ram parts (see the "
       "sources)", unit="kWh", label="Energy", block="Sustainability", higher_is_better=False, fmt=".3g",
       energy_derived=True),
    _c("emissions_kg", "float", "energy_kwh x the carbon intensity of tracker.country_iso_code", unit="kg CO2eq",
       label="Emissions", block="Sustainability", higher_is_better=False, fmt=".3g", energy_derived=True),
    _c("cpu_energy_kwh", "float", "CPU part of energy_kwh", unit="kWh"),
    _c("gpu_energy_kwh", "float", "GPU part of energy_kwh", unit="kWh"),
    _c("ram_energy_kwh", "float", "RAM part of energy_kwh", unit="kWh"),
    _c("cpu_energy_source", "str", "measured:rapl, model:cpu-time (CPU time x per-core power) or none"),
    _c("gpu_energy_source", "str", "measured:nvml (the device's energy counter) or none"),
    _c("ram_energy_source", "str", "model:ram (RAM power x CPU time / cores) or none"),
    _c("carbon_intensity_kg_per_kwh", "float", "CodeCarbon's grid intensity for country_iso_code",
       unit="kg CO2eq / kWh"),
    _c("codecarbon_energy_kwh", "float", "CodeCarbon's own total over the window (wall-time models; reference "
       "only)", unit="kWh"),
    _c("energy_duration_s", "float", "the tracker's own measured duration", unit="s"),
    _c("cpu_power_w", "float", "per-core CPU power of the model (CodeCarbon's TDP / cores), or RAPL's mean", unit="W"),
    _c("gpu_power_w", "float", "GPU power the tracker reported", unit="W"),
    _c("ram_power_w", "float", "RAM power the tracker reported", unit="W"),
    _c("tracking_mode", "str", "CodeCarbon tracking mode (process or machine)"),
    _c("country_iso_code", "str", "country whose grid intensity converts energy to emissions"),
    _c("energy_tracker", "str", "codecarbon, or off"),
]
PROVENANCE = [
    _c("wall_time_s", "float", "the whole run, data loading included", unit="s", present="always"),
    _c("git_sha", "str", "commit of the lossbench checkout, or null outside git", present="always"),
    _c("git_dirty", "bool", "uncommitted changes in that checkout", present="always"),
    _c("lossbench_version", "str", "package version", present="always"),
    _c("torch_version", "str", "torch version", present="always"),
    _c("numpy_version", "str", "numpy version", present="always"),
    _c("codecarbon_version", "str", "codecarbon version, or null when it cannot be imported", present="always"),
    _c("python_version", "str", "Python version", present="always"),
    _c("device", "str", "torch device of the run", present="always"),
    _c("device_name", "str", "GPU or CPU model", present="always"),
    _c("host", "str", "machine that ran it", present="always"),
    _c("slurm_job_id", "str", "SLURM job id (array job: <array job>_<task>), or null outside SLURM", present="always"),
    _c("slurm_array_task_id", "str", "SLURM array task id, or null", present="always"),
    _c("job_log", "str", "the submitit log folder of the job, or null outside SLURM", present="always"),
    _c("started_at", "str", "UTC start (ISO 8601)", present="always"),
    _c("finished_at", "str", "UTC end (ISO 8601)", present="always"),
    _c("schema_version", "int", "version of this schema the row follows", present="always", nullable=False),
    _c("config_json", "str", "the effective config (resolved, sorted JSON)", present="always", nullable=False),
]
SUMMARY: list[Column] = IDENTITY + FAILURE + split_columns([LOSS_SCORE]) + TRAINING + ENERGY + PROVENANCE

# --- history: one row per evaluation ----------------------------------------------------------------------
HISTORY: list[Column] = [
    _c("run_id", "str", "the run", present="always", nullable=False),
    _c("epoch", "float", "epochs so far (fractional for step-based runs)", present="always", nullable=False),
    _c("step", "int", "optimizer steps so far", present="always", nullable=False),
    _c("lr", "float", "learning rate of the first parameter group", present="always"),
    _c("train_loss", "float", "mean training criterion since the previous evaluation", present="always"),
    _c("grad_norm_mean", "float", "mean gradient norm since the previous evaluation", present="always"),
    _c("grad_norm_std", "float", "std of the gradient norm since the previous evaluation", present="always"),
    _c("grad_norm_max", "float", "largest gradient norm since the previous evaluation", present="always"),
    _c("grad_norm_cv", "float", "CV of the gradient norm since the previous evaluation", present="always"),
    _c("head_param_norm", "float", "head parameter norm", present="always"),
    _c("model_param_norm", "float", "model parameter norm", present="always"),
    _c("epoch_time_s", "float", "training time per epoch at this point", unit="s", present="always"),
    _c("samples_per_s", "float", "training targets per second since the previous evaluation", present="always"),
    _c("eval_time_s", "float", "time of this evaluation", unit="s"),
]


def summary_columns(task_columns: Iterable[Column], scores: Iterable[Column]) -> list[Column]:
    """Every summary column of a task's rows: the common ones, its per-split scores, its own columns."""
    return SUMMARY + split_columns(scores) + list(task_columns)


def history_columns(scores: Iterable[Column], train_score: Column, test_each_eval: bool) -> list[Column]:
    """Every history column of a task: common ones, train_<score>, val_ (and test_) loss and scores."""
    scores = [LOSS_SCORE, *scores]
    train = replace(train_score, name=f"train_{train_score.name}", present="always", per_split=False)
    return HISTORY + [train] + split_columns(scores, ("val", "test") if test_each_eval else ("val",))


def union(columns: Iterable[Column]) -> list[Column]:
    """Columns by name, first declaration first; one name declared with two types is an error (a file
    can hold one type per column)."""
    out: dict[str, Column] = {}
    for column in columns:
        first = out.setdefault(column.name, column)
        if first.dtype != column.dtype:
            raise TypeError(f"column {column.name} is declared as {first.dtype} and as {column.dtype}")
    return list(out.values())


def arrow_schema(columns: Iterable[Column]) -> pa.Schema:
    """The Arrow schema of these declarations: each column's declared type and nullability, in order."""
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.dtype], nullable=c.nullable) for c in columns])


def check_row(row: dict[str, object], declared: Sequence[Column], status: str) -> tuple[set[str], set[str]]:
    """(undeclared columns in the row, declared columns the row misses) for a row of this status, as a
    run builds it (the writer then adds every other column of the schema as a typed null)."""
    trained = status in TRAINED  # every other status (failed, cancelled, ...) did not finish
    expected = {c.name for c in declared if c.present == "always"
                or (c.present == "trained" and trained) or (c.present == "failed" and not trained)}
    names = set(row)
    return names - {c.name for c in declared}, expected - names


def markdown(tasks: Sequence[type]) -> str:
    """The documented column reference (docs/schema.md): every summary column (common, then each task's), then
    history."""

    def rows(columns: Iterable[Column]) -> list[str]:
        out = []
        for c in columns:
            direction = {True: "↑", False: "↓", None: ""}[c.higher_is_better] if c.block else ""
            where = {"always": "", "trained": "", "failed": " (failed runs)"}[c.present]
            where += "" if c.nullable else " (never null)"
            out.append(f"| `{c.name}` | {c.dtype} | {c.unit} | {c.block or ''} {direction} | {c.description}{where} |")
        return out

    head = ["| column | dtype | unit | report block | description |", "|---|---|---|---|---|"]
    lines = ["**Every run** (`runs/<run_id>.parquet`, one row; every file holds the columns of every task, null "
             "where a row has no value):", "", *head, *rows(SUMMARY)]
    for task in tasks:
        own = split_columns(task.score_columns) + list(task.columns)  # type: ignore[attr-defined]
        lines += ["", f"**task={task.name}** adds:", "", *head, *rows(own)]  # type: ignore[attr-defined]
    lines += ["", "**History** (`history/<run_id>.parquet`, one row per evaluation) — every task:", "", *head,
              *rows(HISTORY), "", "plus `train_<score>` (the task's training score, e.g. `train_acc`), `val_loss` and "
              "`val_<score>` for each of the task's scores, and the same for `test_` when "
              "`trainer.eval_test_each_epoch` is true (learning curves only; never used for selection)."]
    return "\n".join(lines) + "\n"
