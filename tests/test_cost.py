"""Cost figures that describe the run, not the machine: FLOPs against closed forms, CPU-time energy that a
busy neighbour does not inflate, and threads per job."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from lossbench.config import compose_run, group_options
from lossbench.cost.flops import step_flops
from lossbench.cost.threads import MachineLoad
from lossbench.losses.cross_entropy import CrossEntropy
from lossbench.models.classifier import Classifier
from lossbench.models.heads import DistanceHead, LinearHead
from lossbench.results import load_runs
from lossbench.tasks.classification import Classification

M, N0, N, V = 37, 9, 16, 11  # rows, input width, feature width, classes
BUSY = [sys.executable, "-c", "while True: pass"]  # a process that keeps one core busy


def _step(head: nn.Module) -> int:
    model = Classifier(nn.Linear(N0, N), head)
    return step_flops(model, CrossEntropy(), Classification(), torch.randn(M, N0), torch.randint(0, V, (M,)))


def test_linear_head_flops_equal_the_closed_form():
    # backbone: forward 2 M N0 N, backward only dL/dW (inputs need no gradient) 2 M N0 N;
    # linear head: forward 2 M N V, backward dL/dx and dL/dW: 4 M N V
    assert _step(LinearHead(N, V)) == 4 * M * N0 * N + 6 * M * N * V


def _distance(name: str):
    cfg, _ = compose_run([f"distance={name}"])
    return instantiate(cfg.distance)


@pytest.mark.parametrize("name", group_options("distance"))
def test_each_distance_head_is_counted_by_its_formula(name):
    """The distance's declared forward FLOPs, x3 for forward + backward, replace what the counter saw inside
    it (a matrix product counted twice would be wrong; an L1 kernel counted 0 would be too)."""
    distance = _distance(name)
    head = DistanceHead(N, V, distance)
    assert distance.flops(M, V, N) > 0
    assert _step(head) == 4 * M * N0 * N + 3 * distance.flops(M, V, N)


def test_distance_formulas_by_hand():
    assert _distance("euclidean").flops(M, V, N) == 2 * M * V * N  # one multiply-add per term (a matmul)
    assert _distance("manhattan").flops(M, V, N) == 3 * M * V * N  # subtract, absolute value, add
    assert _distance("braycurtis").flops(M, V, N) == 6 * M * V * N  # two L1 sums


def lossbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lossbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900)


def test_run_flops_are_the_sum_over_its_micro_batches(tmp_path):
    """spiral (240 training points, batch 64: 3 batches of 64 and one of 48 per epoch), MLP [32], 3 classes."""
    proc = lossbench("run", "dataset=spiral", "backbone=mlp", "backbone.widths=[32]", "trainer.batch_size=64",
                     "trainer.epochs=2", "tracker=off", f"results_dir={tmp_path / 'r'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    row = load_runs(tmp_path / "r").iloc[0]
    sizes = Counter()
    for _ in range(2):
        full, rest = divmod(int(row.n_train), 64)
        sizes[64] += full
        sizes[rest] += 1 if rest else 0
    per_row = 2 * 2 * 32 + 2 * 32 * 3  # forward FLOPs per example: layer 2->32, head 32->3
    backward = 2 * 2 * 32 + 4 * 32 * 3  # dL/dW of layer 1 (no input gradient), dL/dx and dL/dW of the head
    assert row.flops == sum(count * b * (per_row + backward) for b, count in sizes.items())


def test_busy_neighbours_change_duration_not_flops_or_cpu_energy(tmp_path):
    """The same run three times alone and three times beside two processes that keep both cores busy, alone and
    loaded taking turns so that whatever else the shared machine does falls on both sides alike: FLOPs identical,
    modelled CPU (and total) energy within +-30 % (medians of three; a model on wall time would double it, since
    the run gets about half a core; CPU time itself moves by up to ~20 % with what shares the core's caches);
    duration free to differ."""
    args = ["run", "dataset=mnist1d", "backbone=cnn", "trainer.epochs=10", "threads=1", "tracker=codecarbon",
            "trainer.progress=false"]

    def run(name: str, seed: int) -> None:
        proc = lossbench(*args, f"results_dir={tmp_path / name}", f"seed={seed}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr

    for seed in range(3):
        run("alone", seed)
        busy = [subprocess.Popen(BUSY) for _ in range(2)]
        try:
            time.sleep(0.5)
            run("loaded", seed)
        finally:
            for proc in busy:
                proc.kill()
                proc.wait()
    alone, loaded = (load_runs(tmp_path / name).sort_values("seed") for name in ("alone", "loaded"))
    assert loaded.flops.tolist() == alone.flops.tolist() and set(loaded.threads) == set(alone.threads) == {1}
    assert set(alone.cpu_energy_source) == set(loaded.cpu_energy_source) == {"model:cpu-time"}
    assert loaded.cpu_energy_kwh.median() == pytest.approx(alone.cpu_energy_kwh.median(), rel=0.3)
    assert loaded.energy_kwh.median() == pytest.approx(alone.energy_kwh.median(), rel=0.3)
    intensity = (loaded.emissions_kg / loaded.energy_kwh).tolist() + (alone.emissions_kg / alone.energy_kwh).tolist()
    assert max(intensity) == pytest.approx(min(intensity), rel=1e-9)


TWO_CPUS = sorted(os.sched_getaffinity(0))[:2] if hasattr(os, "sched_getaffinity") else []
two_cpus = pytest.mark.skipif(len(TWO_CPUS) < 2 or not shutil.which("taskset"),
                              reason="needs 2 CPUs this process may use and taskset (Linux)")


def _pinned(cpus: list[int], command: list[str]) -> list[str]:
    return ["taskset", "-c", ",".join(map(str, cpus)), *command]


class ConstructedLoad(MachineLoad):
    """The meter on counters this test writes: (wall s, busy s of our CPUs, CPU s of this process)."""

    def __init__(self, readings: list[tuple[float, float, float]], min_interval_s: float = 0.5) -> None:
        self.readings = iter(readings)
        super().__init__(min_interval_s)

    def _counters(self) -> tuple[float, float, float]:
        return next(self.readings)


def test_machine_load_counts_busy_time_of_others_not_its_own():
    """Constructed load: over 2 s the CPUs were busy 3.0 s, 1.2 s of it this process's: 0.9 cores elsewhere;
    then 1 s with our own 1.0 s of work only: 0 elsewhere; a look after 0.1 s keeps the last estimate."""
    load = ConstructedLoad([(0.0, 10.0, 5.0), (2.0, 13.0, 6.2), (3.0, 14.0, 7.2), (3.1, 14.2, 7.2)])
    assert load.busy_elsewhere() == pytest.approx(0.9)
    assert load.busy_elsewhere() == pytest.approx(0.0)
    assert load.busy_elsewhere() == pytest.approx(0.0)  # 0.1 s: shorter than min_interval_s, not re-estimated


@two_cpus
def test_machine_load_sees_a_busy_neighbour_relative_to_the_machine_before_it():
    """The real counters, on whatever else the machine runs: a process busy on one of our CPUs raises the
    estimate by the idle capacity it took (up to one core) over a baseline measured just before."""
    load = MachineLoad(min_interval_s=1.5)
    before = load.busy_elsewhere()
    busy = subprocess.Popen(_pinned(TWO_CPUS[1:], BUSY))
    try:
        time.sleep(1.6)
        during = load.busy_elsewhere()
    finally:
        busy.kill()
        busy.wait()
    idle = max(0.0, len(TWO_CPUS) - before - 0.1)  # what the neighbour could take (this test sleeps)
    assert during >= before + 0.6 * min(1.0, idle) - 0.15, (before, during)
    assert during <= len(TWO_CPUS) + 0.1


@two_cpus
def test_auto_threads_leave_a_busy_neighbour_its_core(tmp_path):
    """A run that may use two CPUs, one of them held by a busy process, uses 1 thread, and its CPU time is not
    inflated by a second thread spinning while its partner waits for the held core (with 2 threads there it
    took 2.3x the CPU time of the run alone). Relative to runs alone in the same test, so other load on the
    machine changes neither claim: alone they may use 1 or 2 threads, beside the neighbour 1."""
    args = [sys.executable, "-m", "lossbench", "run", "trainer.epochs=10", "tracker=off", "trainer.progress=false"]

    def runs(name: str) -> pd.DataFrame:
        for seed in (0, 1):
            proc = subprocess.run(_pinned(TWO_CPUS, [*args, f"results_dir={tmp_path / name}", f"seed={seed}"]),
                                  cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
            assert proc.returncode == 0, proc.stderr
        return load_runs(tmp_path / name)

    alone = runs("alone")
    busy = subprocess.Popen(_pinned(TWO_CPUS[1:], BUSY))
    try:
        time.sleep(0.5)
        loaded = runs("loaded")
    finally:
        busy.kill()
        busy.wait()
    assert set(loaded.threads) == {1} and min(alone.threads) >= 1
    assert loaded.cpu_time_s.median() <= 1.3 * alone.cpu_time_s.median()


def test_joblib_n_jobs_2_gives_each_job_one_thread(tmp_path):
    proc = lossbench("run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1", "backbone=mlp",
                     "trainer.epochs=1", "tracker=off", "trainer.progress=false", f"results_dir={tmp_path / 'r'}",
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = load_runs(tmp_path / "r")
    cpus = len(__import__("os").sched_getaffinity(0))
    assert len(runs) == 2 and set(runs.threads) == {max(1, cpus // 2)}


@pytest.mark.parametrize("n_jobs,expected", [(1, 1), (2, 2), (3, 3), (-1, None), ("auto", 1)])
def test_parallel_jobs_of_a_launcher_config(n_jobs, expected):
    from omegaconf import OmegaConf

    from lossbench.launch import _parallel_jobs

    got = _parallel_jobs(OmegaConf.create({"n_jobs": n_jobs}))
    assert got == (expected if expected is not None else (__import__("os").cpu_count() or 1))
