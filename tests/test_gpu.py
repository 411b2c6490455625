"""The CUDA path, end to end: runs on the GPU agree with the CPU, bf16 / channels_last / torch.compile
train, language models with fused-kernel heads train, probes and the schema hold, and GPU energy is
NVML's own counter. Marked `gpu`: they run wherever CUDA exists (the rest of the suite, the fused
kernels included, also runs compiled on the GPU there; see test_kernels.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import schema_gaps
from test_distances import N_FEATURES, make
from test_lm import TINY_LM, VOCAB

from lossbench.build import build
from lossbench.config import group_options
from lossbench.results import load_runs
from lossbench.run import execute

pytestmark = pytest.mark.gpu


def _run(compose, *overrides: str):
    cfg, choices = compose(*overrides, "device=cuda")
    return cfg, execute(cfg, choices).summary


@pytest.mark.parametrize("loss", ["ce", "harmonic"])
def test_a_cuda_run_matches_the_cpu_run(compose, tmp_path, loss):
    """Same seed, fp32: the GPU run's accuracy is the CPU run's up to reduction order, and its row is
    complete (probes included) and says where it ran."""
    overrides = ("dataset=digits", "backbone=mlp", f"loss={loss}", "trainer.epochs=3")
    cfg, gpu = _run(compose, *overrides)
    cpu = execute(*compose(*overrides, f"results_dir={tmp_path / 'cpu'}")).summary  # its own folder: one row each
    assert gpu["status"] == cpu["status"] == "completed"
    assert gpu["device"].startswith("cuda") and gpu["device_name"] and gpu["precision"] == "fp32"
    assert gpu["test_acc"] == pytest.approx(cpu["test_acc"], abs=0.02)
    assert gpu["gpu_time_s"] > 0 and 0 < gpu["train_time_s"] <= gpu["duration_s"]
    row = load_runs(cfg.results_dir).iloc[0].to_dict()
    assert schema_gaps(gpu, build(cfg, "task"), cfg.results_dir) == (set(), set(), set(), set())
    for probe in ("pc2_ev", "pca90", "effective_rank", "nc1"):
        assert math.isfinite(row[probe]), probe


def test_bf16_channels_last_and_compile_train_a_cnn(compose):
    _, s = _run(compose, "dataset=digits", "backbone=cnn", "trainer.epochs=4", "trainer.precision=bf16",
                "trainer.channels_last=true", "trainer.compile=true")
    assert s["status"] == "completed" and s["precision"] == "bf16"
    assert s["test_acc"] > 0.5  # ten classes: chance is 0.1


@pytest.mark.parametrize("distance", ["manhattan", "chebyshev", "canberra", "euclidean"])
def test_language_model_with_a_harmonic_head_trains_in_bf16(compose, distance):
    _, s = _run(compose, *TINY_LM, "trainer.steps=40", "loss=harmonic", f"distance={distance}")
    assert s["status"] == "completed" and s["precision"] == "bf16"
    assert math.isfinite(s["test_ppl"]) and s["test_ppl"] < VOCAB  # better than uniform guessing


def test_gpu_energy_is_the_nvml_counter_over_the_run(compose):
    """measured:nvml, positive, and no more than the counter's own difference around the whole call."""
    import pynvml

    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{torch.cuda.get_device_properties(0).uuid}")
    before = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    _, s = _run(compose, "tracker=codecarbon", "dataset=digits", "backbone=cnn", "trainer.epochs=3")
    outside_kwh = (pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) - before) / 1000 / 3.6e6
    assert s["gpu_energy_source"] == "measured:nvml"
    assert 0 < s["gpu_energy_kwh"] <= outside_kwh
    assert s["energy_kwh"] == pytest.approx(s["cpu_energy_kwh"] + s["ram_energy_kwh"] + s["gpu_energy_kwh"], rel=1e-12)


@pytest.mark.parametrize("name", group_options("distance"))
def test_every_distance_on_cuda_matches_its_float64_reference(name):
    """At a size spanning several tiles of every autotuning configuration (fused kernels included)."""
    metric = make(name).cuda()
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(300, N_FEATURES, generator=g), torch.randn(260, N_FEATURES, generator=g)
    got = metric(x.cuda(), w.cuda()).detach().double().cpu().numpy()
    want = metric.reference(x.double().numpy(), w.double().numpy())
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
