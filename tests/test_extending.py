"""Extending lossbench without editing it: a distance, a loss and a whole third task, each written in a
temporary folder (or tests/extensions/) and picked up through LOSSBENCH_CONFIG_PATH, then checked by the
same tests and commands as the built-in ones.

The distance and the loss are the documentation's own recipes: their code blocks are read from
docs/extending.md and written to disk, so the documented recipe is what is tested.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossbench.results import load_history, load_runs
from lossbench.tasks.registry import known_tasks

ROOT = Path(__file__).resolve().parents[1]
EXTENSIONS = Path(__file__).resolve().parent / "extensions"


def docs_recipe(heading: str, folder: Path) -> dict[str, Path]:
    """Write the code blocks of one section of docs/extending.md to `folder`: Python modules flat in folder/pkg (the
    `lossbench.<sub>.` prefix of their yaml targets dropped), yamls under folder/conf/<group>/."""
    section = (ROOT / "docs" / "extending.md").read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    written, end = {}, 0
    for block in re.finditer(r"```(python|yaml)\n(.*?)```", section, flags=re.S):
        lang, body = block.groups()
        if lang == "python":  # a class file starts with its path; a yaml's first comment is its description, so
            first = body.splitlines()[0]  # its path is named in the prose just before it
            assert first.startswith("# "), f"a recipe's class file must start with its path: {first!r}"
            path = first[2:].strip()
        else:
            named = re.findall(r"`(conf/[\w/]+\.yaml)`", section[end:block.start()])
            assert named, f"the prose before a recipe's yaml must name its file: {body.splitlines()[0]!r}"
            path = named[-1]
        end = block.end()
        if lang == "python":
            target = folder / "pkg" / Path(path).name
        else:
            target = folder / path  # conf/<group>/<name>.yaml
            body = re.sub(r"_target_: lossbench\.\w+\.", "_target_: ", body)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
        written[path] = target
    return written


def env_with(folder: Path, pkg: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(pkg), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "LOSSBENCH_CONFIG_PATH": str(folder), "PYTHONPATH": path}


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def recipe(heading: str, folder: Path) -> tuple[dict[str, Path], dict[str, str], str]:
    """(files, environment, option name) of a documented recipe written to `folder`: exactly one class file
    and one yaml, found through LOSSBENCH_CONFIG_PATH and PYTHONPATH."""
    files = docs_recipe(heading, folder)
    assert sorted(p.suffix for p in files.values()) == [".py", ".yaml"]
    name = next(p.stem for p in files.values() if p.suffix == ".yaml")
    return files, env_with(folder / "conf", folder / "pkg"), name


def generic_tests(name: str, env: dict[str, str], cwd: Path, *modules: str) -> subprocess.CompletedProcess[str]:
    """The project's own test modules, run on the tests whose id names `name`."""
    return run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", name,
                *(str(ROOT / "tests" / m) for m in modules)], env, cwd)


def passed(proc: subprocess.CompletedProcess[str]) -> int:
    match = re.search(r"(\d+) passed", proc.stdout)
    return int(match.group(1)) if match else 0


def test_adding_a_distance_is_one_class_file_and_one_yaml(tmp_path):
    _, env, name = recipe("Adding a distance", tmp_path)
    # every generic distance check (oracle values, gradcheck, half precision, d = 0, chunking, training)
    proc = generic_tests(name, env, tmp_path, "test_distances.py", "test_run.py")
    assert proc.returncode == 0 and passed(proc) >= 7, proc.stdout[-3000:]
    listing = run([sys.executable, "-m", "lossbench", "list", "distance"], env, tmp_path)
    description = (tmp_path / "conf" / "distance" / f"{name}.yaml").read_text().splitlines()[0].lstrip("# ")
    assert not description.endswith(".yaml")  # a pasted recipe lists a description, not its own file name
    assert re.search(rf"^{name}\s+{re.escape(description)}$", listing.stdout, flags=re.M), listing.stdout
    trained = run([sys.executable, "-m", "lossbench", "run", "loss=harmonic", f"distance={name}", "backbone=mlp",
                   "trainer.epochs=1", "tracker=off", f"results_dir={tmp_path / 'results'}"], env, tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert load_runs(tmp_path / "results").variant.tolist() == [f"harmonic/{name}"]


def test_adding_a_loss_is_one_class_file_and_one_yaml(tmp_path):
    files, env, name = recipe("Adding a loss", tmp_path)
    # value against its reference, gradcheck, two half precisions, training with a linear and a distance head
    proc = generic_tests(name, env, tmp_path, "test_criteria.py", "test_losses.py")
    assert proc.returncode == 0 and passed(proc) == 6, proc.stdout[-3000:]
    for head, variant in (("ce", name), ("harmonic", f"harmonic/euclidean + {name}")):
        trained = run([sys.executable, "-m", "lossbench", "run", f"loss={head}", f"loss/criterion={name}",
                       "backbone=mlp", "trainer.epochs=1", "tracker=off", f"results_dir={tmp_path / 'results'}"],
                      env, tmp_path)
        assert trained.returncode == 0, trained.stderr
        assert variant in load_runs(tmp_path / "results").variant.tolist()
    # the recipe's criterion against its formula (Taylor CE of order t: sum_k (1 - p_y)^k / k), in numpy
    sys.path.insert(0, str(tmp_path / "pkg"))
    try:
        import importlib

        module = importlib.import_module(next(p.stem for p in files.values() if p.suffix == ".py"))
    finally:
        sys.path.pop(0)
    import torch

    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]], dtype=torch.float64)
    target = torch.tensor([0, 2])
    z = logits.numpy()
    p = np.exp(z - z.max(1, keepdims=True))
    p = (p / p.sum(1, keepdims=True))[np.arange(2), target.numpy()]
    want = np.mean([sum((1 - q) ** k / k for k in (1, 2)) for q in p])
    criterion = module.TaylorCrossEntropy(order=2)
    assert float(criterion(logits, target)) == pytest.approx(want, rel=1e-12)


def test_a_third_task_trains_stores_and_reports_without_touching_lossbench(tmp_path, monkeypatch):
    """tests/extensions/regression.py: a regression task, its dataset and its criterion, defined outside."""
    env = env_with(EXTENSIONS / "conf", EXTENSIONS)
    results = tmp_path / "results"
    for extra in (["seed=0,1"], ["loss=harmonic", "distance=cosine", "seed=0,1"]):
        proc = run([sys.executable, "-m", "lossbench", "run", "-m", "task=regression", "backbone=mlp",
                    "trainer.epochs=3", "tracker=off", "trainer.progress=false", *extra, f"results_dir={results}"],
                   env, tmp_path)
        assert proc.returncode == 0, proc.stderr
    monkeypatch.setenv("LOSSBENCH_CONFIG_PATH", str(EXTENSIONS / "conf"))  # its columns join the schema read
    monkeypatch.syspath_prepend(str(EXTENSIONS))
    runs, history = load_runs(results), load_history(results)
    assert len(runs) == 4 and (runs.status == "completed").all() and set(runs.task) == {"regression"}
    assert sorted(set(runs.variant)) == ["harmonic/cosine + squared_error", "squared_error"]
    # the task's own scores, computed by the engine with the task's selection (lowest validation MSE)
    for row in runs.itertuples():
        rows = history[history.run_id == row.run_id].sort_values("epoch")
        assert row.best_epoch == rows.epoch.iloc[int(rows.val_mse.to_numpy().argmin())]
        assert row.test_r2 < 1 and row.test_mse > 0 and row.target_std > 0
    from regression import Regression

    from lossbench.results import runs_columns

    own = {c.name for c in runs_columns([Regression])}  # the common columns and the task's own
    others = {c.name for c in runs_columns(known_tasks())} - own  # the other tasks' columns: null in these rows
    assert runs[["train_mse", "val_r2", "test_r2", "target_std", "grad_norm_cv"]].notna().all().all()
    assert runs[sorted(others)].isna().all().all()
    report = run([sys.executable, "-m", "lossbench", "report", str(results), "--out", str(tmp_path / "report")],
                 env, tmp_path)
    assert report.returncode == 0, report.stderr
    table = pd.read_csv(tmp_path / "report" / "tables" / "linear-data_mlp_all.csv").set_index("variant")
    ce_like = runs[runs.variant == "squared_error"].test_mse
    assert table.at["squared_error", "test_mse_mean"] == pytest.approx(ce_like.mean())
    assert "test_f1_mean" not in table.columns and (tmp_path / "report" / "figures" / "test_mse_linear-data_mlp.png").is_file()
