"""Faults never lose a finished run or corrupt results, and bad data is caught before anything is written:
an optional dependency that fails at import, an unreadable result file, an unwritable or full results
folder, unusable text corpora, and killed launchers whose workers must not live on."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from lossbench.locks import load_markers
from lossbench.results import load_runs

FAST = ["backbone=mlp", "trainer.epochs=1", "tracker=off", "trainer.progress=false"]


def lossbench(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600,
              preexec=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lossbench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=preexec)


def test_codecarbon_failing_at_import_still_writes_the_run(tmp_path):
    fake = tmp_path / "fake" / "codecarbon"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('codecarbon is broken here')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "fake")}
    proc = lossbench("run", "dataset=spiral", "tracker=codecarbon", *FAST[:2], f"results_dir={tmp_path / 'r'}",
                     cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    row = load_runs(tmp_path / "r").iloc[0]
    assert row.status == "completed" and pd.isna(row.energy_kwh) and row.test_acc > 0
    assert "codecarbon failed to start" in proc.stderr


def test_a_truncated_result_file_is_named_skipped_and_redone(tmp_path):
    results = tmp_path / "r"
    grid = ["-m", "seed=0,1", *FAST, f"results_dir={results}"]
    assert lossbench("run", *grid, cwd=tmp_path).returncode == 0
    files = sorted((results / "runs").glob("*.parquet"))
    broken, intact = files[0], files[1]
    broken.write_bytes(broken.read_bytes()[:100])  # truncated mid-file
    for command in (["status", str(results)], ["report", str(results), "--out", str(tmp_path / "rep")]):
        proc = lossbench(*command, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        warnings = [line for line in proc.stderr.splitlines() if "unreadable" in line]
        assert len(warnings) == 1 and str(broken) in warnings[0]
    rerun = lossbench("run", *grid, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert "(1 already done, skipped)" in rerun.stderr  # the unreadable run is redone, the other is not
    runs = load_runs(results)
    assert len(runs) == 2 and (runs.status == "completed").all() and intact.exists()


@pytest.mark.parametrize("where", ["under-a-file", "/proc/lossbench-results"])
def test_unwritable_results_folder_is_one_line_before_training(tmp_path, where):
    (tmp_path / "a-file").write_text("x")
    results = tmp_path / "a-file" / "results" if where == "under-a-file" else Path(where)
    proc = lossbench("run", *FAST, f"results_dir={results}", cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: results_dir={results}: cannot write there")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.parametrize("content,expected", [
    (b"", "needs at least 2 distinct characters, it has 0"),
    (b"\x00\x01\x02binary" * 200, "looks binary"),
    (b"\xff\xfe\xfa not utf-8" * 100, "is not UTF-8 text"),
    (b"ab" * 5000, None),  # 2 distinct characters, long enough: accepted
    (b"abcdefgh" * 30, "too few for dataset.block_size=128"),
])
def test_text_corpus_checks_in_preflight(tmp_path, content, expected):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(content)
    args = ["run", "task=lm", "dataset=text_file", f"dataset.path={corpus}", "backbone.n_layer=1",
            "backbone.n_embd=16", "backbone.n_head=2", "trainer.steps=2", "trainer.eval_every=2", "tracker=off",
            f"results_dir={tmp_path / 'r'}"]
    proc = lossbench(*args, cwd=tmp_path)
    if expected is None:
        assert proc.returncode == 0, proc.stderr
        return
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], proc.stderr
    assert not (tmp_path / "r").exists()


def test_a_full_disk_loses_no_earlier_result_and_says_so_in_one_line(tmp_path):
    results = tmp_path / "r"
    assert lossbench("run", *FAST, f"results_dir={results}", cwd=tmp_path).returncode == 0
    before = {p: p.read_bytes() for p in results.rglob("*.parquet")}
    limit = 6000  # bytes per file: enough for logs and markers, not for a result row

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = lossbench("run", *FAST, "seed=7", f"results_dir={results}", cwd=tmp_path, preexec=small_files)
    assert proc.returncode == 1
    assert [line for line in proc.stderr.splitlines() if "could not be written" in line and "earlier results are intact" in line]
    assert {p: p.read_bytes() for p in results.rglob("*.parquet")} == before  # old rows untouched, nothing new
    assert not [p for p in results.rglob(".tmp-*")]
    assert len(load_runs(results)) == 1


def test_report_out_naming_a_file_is_one_line(tmp_path):
    results = tmp_path / "r"
    assert lossbench("run", *FAST, f"results_dir={results}", cwd=tmp_path).returncode == 0
    (tmp_path / "out.md").write_text("mine")
    proc = lossbench("report", str(results), "--out", str(tmp_path / "out.md"), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"error: --out {tmp_path / 'out.md'}: exists and is not a folder; name a folder for the report"]
    assert (tmp_path / "out.md").read_text() == "mine"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")  # zombies are gone


def _descendants(root: int) -> set[int]:
    """Every live process below `root` (Linux /proc)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parent.items() if ppid in frontier} - found
        found |= frontier
    return found


def _mentioning(text: str) -> set[int]:
    """Live processes whose command line contains `text`."""
    pids = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                pids.add(int(cmdline.parent.name))
        except (OSError, ValueError):
            continue
    return {p for p in pids if p != os.getpid() and _alive(p)}


@pytest.mark.parametrize("launcher", [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                                      ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=30"]],
                         ids=["joblib", "submitit_local"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["SIGKILL", "SIGTERM", "Ctrl-C"])
def test_killing_a_local_launcher_ends_its_workers(tmp_path, launcher, sig):
    results = tmp_path / "r"
    cmd = [sys.executable, "-m", "lossbench", "run", "-m", *launcher, "seed=0,1,2,3,4,5", "backbone=mlp",
           "trainer.epochs=300", "tracker=off", "trainer.progress=false", f"results_dir={results}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, markers = time.time() + 300, []
    while time.time() < deadline and not markers:  # wait until a job trains (its marker names its pid)
        markers = load_markers(results) if (results / "running").is_dir() else []
        time.sleep(0.1)
    assert markers, "no job started"
    workers = _descendants(proc.pid)
    assert {m["pid"] for m in markers} <= workers and proc.pid not in workers  # jobs run in worker processes
    os.kill(proc.pid, sig)  # the launcher only, as a parent killed alone would be
    proc.wait(timeout=120)
    deadline = time.time() + 30
    while time.time() < deadline and (any(_alive(p) for p in workers) or _mentioning(str(results))):
        time.sleep(0.2)
    assert not [p for p in workers if _alive(p)], f"workers still alive after {sig!r}"
    time.sleep(3)  # nothing starts later either: no process, no live marker, no row
    assert not _mentioning(str(results))
    assert not [m for m in load_markers(results) if _alive(m["pid"])]
    assert len(load_runs(results)) == 0  # 300-epoch runs: none finished
