"""Every criterion against the test values of docs/research/losses.md section 14 (float64), gradient identities,
dynamical weights, and every criterion end to end with a linear and a harmonic head."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from lossbench.config import compose_run, group_options
from lossbench.losses.base import AuxZLoss
from lossbench.losses.dynamical import class_weights
from lossbench.run import execute

T1 = torch.tensor([[2.0, 0.5, -1.0]], dtype=torch.float64)
Y0, Y2 = torch.tensor([0]), torch.tensor([2])  # T1 and T1b
TB = torch.tensor([[2, 0.5, -1], [0.1, 0.2, 0.3], [-1, 2, 0], [0.5, 0.5, 3]], dtype=torch.float64)
YB = torch.tensor([0, 2, 1, 0])


def criterion(name: str, **params: object):
    cfg, _ = compose_run([f"loss/criterion={name}", *(f"loss.criterion.{k}={v}" for k, v in params.items())])
    return instantiate(cfg.loss.criterion)


# (criterion, params, value on T1, value on T1b) from docs/research/losses.md sections 3, 4, 5, 8, 11, 14
CASES = [
    ("ce", {}, 0.2413113, 3.2413113),
    ("ce_ls", {"label_smoothing": 0.1}, 0.3913113, 3.0913113),
    ("focal", {"gamma": 2.0}, 0.0110928, 2.9927178),
    ("poly1", {"epsilon": 1.0}, 0.4557143, 4.2021987),
    ("poly1", {"epsilon": 2.0}, 0.6701172, 5.1630862),
    ("mse_prob", {}, 0.0782251, 1.5711941),
    ("mse_logit", {}, 0.75, 2.75),
    ("hinge_cs", {"margin": 1.0}, 0.0, 4.0),
    ("hinge_ww", {"margin": 1.0}, 0.0, 6.5),
    ("compsum", {"tau": 0.0}, 0.2729172, 24.5672260),
    ("compsum", {"tau": 0.5}, 0.2564727, 8.1128089),
    ("compsum", {"tau": 1.0}, 0.2413113, 3.2413113),
    ("compsum", {"tau": 1.7}, 0.2220311, 1.2808228),
    ("compsum", {"tau": 2.0}, 0.2144030, 0.9608874),
    ("zloss_spherical", {"a": 1.0, "b": 0.0, "eps": 0.0}, 0.2576089, 1.4823537),
    ("zloss_spherical", {"a": 1.0, "b": 1.0, "eps": 0.0}, 0.5870753, 2.3273872),
    ("zloss_spherical", {"a": 0.1, "b": 10.0, "eps": 0.0}, 12.2522771, 14.0424418),
    ("ldr_kl", {"lam": 1.0, "margin": 1.0, "normalize": False}, -0.5436554, 3.1176644),
    ("ldr_kl", {"lam": 1.0, "margin": 0.0, "normalize": False}, -0.8573010, 2.1426990),
    ("ldr_kl", {"lam": 10.0, "margin": 0.1, "normalize": False}, -1.3634609, 1.6464852),
    ("ldr_kl", {"lam": 10.0, "margin": 0.1, "normalize": True}, -0.7832020, 0.8157406),
    ("ldr_kl", {"lam": 1.0, "margin": 1.0, "normalize": True}, -0.1666670, 1.8581703),
    ("dice", {"alpha": 0.01, "gamma": 1.0}, 0.0816298, 0.4712395),
]


@pytest.mark.parametrize("name,params,t1,t1b", CASES)
def test_criterion_matches_reference_values(name, params, t1, t1b):
    loss = criterion(name, **params)
    assert loss(T1, Y0).item() == pytest.approx(t1, abs=1e-7)
    assert loss(T1, Y2).item() == pytest.approx(t1b, abs=1e-7)


@pytest.mark.parametrize("name,params,t1,t1b", CASES)
def test_each_criterions_float64_oracle_gives_the_published_values(name, params, t1, t1b):
    """Criterion.reference is the oracle of tests/test_criteria.py: it must itself give the values
    computed independently from the papers' formulas (docs/research/losses.md section 14)."""
    loss = criterion(name, **params)
    assert loss.reference(T1.numpy(), Y0.numpy()) == pytest.approx(t1, abs=1e-7)
    assert loss.reference(T1.numpy(), Y2.numpy()) == pytest.approx(t1b, abs=1e-7)


def test_batch_values_and_torch_oracles():
    assert criterion("ce")(TB, YB).item() == pytest.approx(1.0162771, abs=1e-7)
    assert criterion("dice")(TB, YB).item() == pytest.approx(0.2148847, abs=1e-7)
    assert criterion("dice", alpha=1.0)(T1, Y0).item() == pytest.approx(0.3834867, abs=1e-7)
    # torch's multi_margin_loss is Weston-Watkins divided by K
    assert criterion("hinge_ww")(TB, YB).item() == pytest.approx(3 * F.multi_margin_loss(TB, YB).item())
    for eps in (0.0, 0.1, 0.3):
        want = F.cross_entropy(TB, YB, label_smoothing=eps).item()
        assert criterion("ce_ls", label_smoothing=eps)(TB, YB).item() == pytest.approx(want, rel=1e-12)


def test_aux_zloss_adds_coefficient_times_lse_squared():
    base = criterion("ce")
    assert (AuxZLoss(base, 1e-4)(T1, Y0) - base(T1, Y0)).item() == pytest.approx(5.0235e-4, rel=1e-4)
    cfg, _ = compose_run(["loss=focal", "loss.z_loss=0.5"])
    from lossbench.build import build_criterion

    wrapped = build_criterion(cfg)
    lse = torch.logsumexp(TB, 1)
    assert wrapped(TB, YB).item() == pytest.approx(criterion("focal")(TB, YB).item() + 0.5 * lse.pow(2).mean().item())


def test_gradient_identities():
    z = T1.clone().requires_grad_()
    criterion("ce")(z, Y0).backward()
    torch.testing.assert_close(z.grad, z.detach().softmax(1) - F.one_hot(Y0, 3))
    # LDR-KL with c = 0: d/dz of lam * CE(z / lam) is softmax(z / lam) - e_y
    z.grad = None
    criterion("ldr_kl", lam=3.0, margin=0.0, normalize=False)(z, Y0).backward()
    torch.testing.assert_close(z.grad, (z.detach() / 3.0).softmax(1) - F.one_hot(Y0, 3))


def test_dynamical_weights_match_the_reference_schedule():
    a, t = 70.0, 5000
    expected = {0: [1, 1, 1], t // 4: [2.84, 0.08, 0.08], t // 2: [2.9166667, 0.0416667, 0.0416667],
                3 * t // 4: [2.84, 0.08, 0.08]}
    for tau, want in expected.items():
        torch.testing.assert_close(class_weights(tau, 3, a, t), torch.tensor(want, dtype=torch.float64), atol=1e-7, rtol=0)
    assert class_weights(t + t // 2, 3, a, t).argmax() == 1  # second period boosts class 1
    assert class_weights(0, 3, a, t, start_mid_period=True).argmax() == 0 and class_weights(0, 3, a, t, True).max() > 2.9
    assert float(class_weights(1234, 5, 10.0, 100).sum()) == pytest.approx(5.0)


def test_dce_values_and_the_static_last_period():
    dce = criterion("dce")
    assert dce(TB, YB, step=2500).item() == pytest.approx(2.1219184, abs=1e-7)
    assert dce(TB, YB, step=5000 + 1250).item() == pytest.approx(0.1984959, abs=1e-7)
    assert dce.reference(TB.numpy(), YB.numpy(), step=2500) == pytest.approx(2.1219184, abs=1e-7)
    assert dce.reference(TB.numpy(), YB.numpy(), step=5000 + 1250) == pytest.approx(0.1984959, abs=1e-7)
    static = criterion("dce", static_last_period=True, total_steps=7000)  # static from step 2000 on
    assert static(TB, YB, step=1999).item() == pytest.approx(dce(TB, YB, step=1999).item())  # still oscillating
    assert static(TB, YB, step=2500).item() == pytest.approx(1.0162771, abs=1e-7)  # A = 1: plain CE
    with pytest.raises(Exception, match="needs total_steps"):
        criterion("dce", static_last_period=True)  # epoch-based training: trainer.steps is null
    dmse1, dmse2 = criterion("dmse"), criterion("dmse", weighting="output")
    assert dmse1(TB, YB, step=0).item() == pytest.approx(criterion("mse_prob")(TB, YB).item())
    assert dmse2(TB, YB, step=0).item() == pytest.approx(criterion("mse_prob")(TB, YB).item())
    assert dmse1(TB, YB, step=2500).item() != pytest.approx(dmse2(TB, YB, step=2500).item())


def test_gamma_never_enters_autograd():
    z = TB.clone().requires_grad_()
    criterion("dce")(z, YB, step=2500).backward()
    weights = class_weights(2500, 3, 70.0, 5000)[YB]
    expected = (z.detach().softmax(1) - F.one_hot(YB, 3)) * weights[:, None] / len(YB)
    torch.testing.assert_close(z.grad, expected)


@pytest.mark.parametrize("name", group_options("loss/criterion"))
@pytest.mark.parametrize("head", ["linear", "harmonic"])
def test_every_criterion_trains_with_both_heads(compose, name, head):
    loss = ["loss=harmonic", "distance=cosine"] if head == "harmonic" else ["loss=ce"]
    loss.append(f"loss/criterion={name}")
    cfg, choices = compose(*loss, "dataset=spiral", "backbone=mlp", "trainer.epochs=2")
    s = execute(cfg, choices).summary
    assert s["status"] == "completed" and s["criterion"] == name
    assert s["distance"] == ("cosine" if head == "harmonic" else "none")
    assert torch.isfinite(torch.tensor(s["train_loss"])) and s["grad_norm_max"] > 0


def test_full_batch_step_based_training(compose):
    cfg, choices = compose("dataset=spiral", "backbone=mlp", "trainer.batch_size=full", "trainer.steps=7",
                           "trainer.eval_every=3", "loss=dce", "loss.criterion.period=4")
    s = execute(cfg, choices).summary
    from lossbench.results import load_history

    history = load_history(cfg.results_dir).sort_values("epoch")
    assert s["steps"] == 7 and s["epochs"] == 7  # full batch: one step per epoch
    # evaluated every 3 epochs and after the last step
    assert history.epoch.tolist() == [3, 6, 7] and history.step.tolist() == [3, 6, 7]
