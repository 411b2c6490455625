"""Every criterion against its own float64 oracle, the way tests/test_distances.py checks every distance:
parametrized over conf/loss/criterion/*.yaml (and any folder on LOSSBENCH_CONFIG_PATH), so a new
criterion is covered by adding its class and yaml, with no edit here.

Each criterion's `reference` is the paper's formula in numpy (test_losses.py checks the references against
independently computed values); these tests hold the torch implementation to it: values on random logits
(and at several steps, for dynamical losses), gradients (torch.autograd.gradcheck against finite
differences), and half-precision logits. The class contract (name, reference; for distances also
term_flops) is checked when a class is defined.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from lossbench.config import compose_run, group_options
from lossbench.distances.base import Distance
from lossbench.losses.base import Criterion, nll

CRITERIA = group_options("loss/criterion")
STEPS = (0, 1, 1250, 2500, 6001)  # dynamical losses: start, rising, peak, second period


def build(name: str) -> Criterion:
    cfg, _ = compose_run([f"loss/criterion={name}"])
    return instantiate(cfg.loss.criterion)


def batch(seed: int, b: int = 16, k: int = 5, scale: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(b, k, generator=g, dtype=torch.float64), torch.randint(0, k, (b,), generator=g)


def mismatches(loss: Criterion) -> list[str]:
    """Where the criterion's value differs from its reference (float64; random logits, several steps)."""
    out = []
    for seed in range(4):
        z, y = batch(seed, scale=[0.3, 1.0, 3.0, 10.0][seed])
        for step in STEPS:
            got, want = float(loss(z, y, step)), loss.reference(z.numpy(), y.numpy(), step)
            if not np.isclose(got, want, rtol=1e-10, atol=1e-12):
                out.append(f"seed {seed} step {step}: {got!r} != reference {want!r}")
    return out


def test_there_are_fourteen_builtin_criteria():
    assert len(CRITERIA) >= 14 and {"ce", "focal", "dce", "ldr_kl", "zloss_spherical"} <= set(CRITERIA)


@pytest.mark.parametrize("name", CRITERIA)
def test_value_matches_the_reference(name):
    assert mismatches(build(name)) == []


@pytest.mark.parametrize("name", CRITERIA)
def test_gradients_match_finite_differences(name):
    loss = build(name)
    z, y = batch(7, b=6, k=4)
    for step in (0, 2500):
        assert torch.autograd.gradcheck(lambda logits, s=step: loss(logits, y, s), (z.clone().requires_grad_(),))


@pytest.mark.parametrize("name", CRITERIA)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_logits_give_the_float32_value_and_finite_gradients(name, dtype):
    loss = build(name)
    z, y = batch(3)
    z = z.to(dtype)  # what a bf16/fp16 forward pass hands the criterion
    want = loss.reference(z.double().numpy(), y.numpy(), 2500)  # the same (rounded) logits in float64
    half = z.clone().requires_grad_()
    got = loss(half, y, 2500)
    got.backward()
    assert got.dtype in (torch.float32, torch.float64)  # criteria accumulate in float32 or wider
    assert float(got.detach()) == pytest.approx(want, rel=1e-5, abs=1e-6)
    assert torch.isfinite(half.grad).all()


def test_a_wrong_criterion_is_caught_by_its_reference():
    """A sign-flipped, mis-scaled generalised CE (the bug these tests exist for) fails the value check."""

    class GeneralisedCE(Criterion):
        name = "gce_broken"

        def __init__(self, q: float = 0.7) -> None:
            super().__init__()
            self.q = q

        def forward(self, logits, target, step=0):
            p_y = torch.exp(-nll(logits, target))
            return -(1 - p_y.pow(self.q)).mean()  # sign flipped and the 1/q scale dropped

        def reference(self, logits, target, step=0):
            z = logits - logits.max(1, keepdims=True)
            p_y = np.exp(z[np.arange(len(target)), target]) / np.exp(z).sum(1)
            return float(np.mean((1 - p_y ** self.q) / self.q))  # Zhang & Sabuncu 2018

    assert len(mismatches(GeneralisedCE())) == 4 * len(STEPS)


def test_a_class_missing_part_of_its_contract_fails_when_defined():
    with pytest.raises(TypeError, match="criterion .*NoOracle must declare reference"):
        class NoOracle(Criterion):
            name = "no_oracle"

            def forward(self, logits, target, step=0):
                return nll(logits, target).mean()

    with pytest.raises(TypeError, match="criterion .*Unnamed must declare name"):
        class Unnamed(build("focal").__class__):  # a name is never inherited: rows would say "focal"
            pass

    with pytest.raises(TypeError, match="distance .*Lorentzian must declare term_flops"):
        class Lorentzian(Distance):
            name = "lorentzian"

            def pairwise(self, x, w):
                return (x[:, None] - w[None]).abs().log1p().sum(-1)

            def reference(self, x, w):
                return np.log1p(np.abs(x[:, None] - w[None])).sum(-1)

    class Shared(Criterion, abstract=True):  # an intermediate base class declares nothing
        pass

    assert issubclass(Shared, Criterion)
