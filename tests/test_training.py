"""The training step: targets are the right ones, the schedule is the configured one, the net learns."""
import numpy as np
import pytest
import torch

from go_core.learn.net import NetConfig, PolicyValueNet
from go_core.learn.replay import Batch, ReplayBuffer
from go_core.learn.training import TrainConfig, losses, lr_factor, make_optimizer, train_steps, to_tensors
from tests.test_replay import fake_game

torch.set_num_threads(1)  # the test machine is shared: one thread per process avoids contention

SMALL = NetConfig(blocks=1, channels=16, gpool_every=1, gpool_channels=4, policy_channels=8,
                  value_channels=8, value_hidden=16)


def test_policy_loss_ignores_samples_without_a_policy_target():
    torch.manual_seed(0)
    net = PolicyValueNet(SMALL).eval()
    s = fake_game(0, 6)
    planes = s.planes()
    policy = s.policy.copy()
    has = np.array([True, True, True, False, False, False])
    b1 = Batch(planes, policy, has, s.value)
    policy2 = policy.copy()
    policy2[3:] = np.eye(26, dtype=np.float32)[[0, 1, 2]]  # garbage where there is no target
    b2 = Batch(planes, policy2, has, s.value)
    cfg = TrainConfig()
    l1 = losses(net, *to_tensors(b1, torch.device("cpu")), cfg)
    l2 = losses(net, *to_tensors(b2, torch.device("cpu")), cfg)
    assert float(l1["policy_loss"].detach()) == pytest.approx(float(l2["policy_loss"].detach()))
    # and it is the mean cross-entropy over the three with targets
    with torch.no_grad():
        logits, v = net(torch.from_numpy(planes))
    ce = -(torch.from_numpy(policy) * torch.log_softmax(logits, -1)).sum(-1)[:3].mean()
    assert float(l1["policy_loss"].detach()) == pytest.approx(float(ce), rel=1e-5)
    assert float(l1["value_loss"].detach()) == pytest.approx(float(((v - torch.from_numpy(s.value)) ** 2).mean()), rel=1e-5)


def test_schedule_warms_up_then_decays():
    cfg = TrainConfig(warmup_steps=10, schedule="cosine", decay_steps=100, min_lr_ratio=0.1)
    f = [lr_factor(s, cfg) for s in range(200)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0) and f[60] == pytest.approx(0.55) and f[150] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    step = TrainConfig(warmup_steps=0, schedule="step", step_every=5, step_gamma=0.5)
    assert [lr_factor(s, step) for s in (0, 4, 5, 10)] == [1.0, 1.0, 0.5, 0.25]
    with pytest.raises(ValueError, match="cosine, step or constant"):
        lr_factor(0, TrainConfig(warmup_steps=0, schedule="linear"))


@pytest.mark.parametrize("value_loss", ["mse", "bce"])
def test_the_net_fits_its_replay_window(value_loss):
    torch.manual_seed(0)
    net = PolicyValueNet(SMALL)
    buf = ReplayBuffer(1000)
    for g in range(4):
        buf.add(fake_game(g, 16))
    cfg = TrainConfig(lr=3e-3, warmup_steps=5, decay_steps=200, value_loss=value_loss, augment=False)
    opt, sched = make_optimizer(net, cfg)
    rng = np.random.default_rng(0)
    first = train_steps(net, opt, sched, buf, 3, 64, cfg, torch.device("cpu"), rng)
    for _ in range(4):
        last = train_steps(net, opt, sched, buf, 25, 64, cfg, torch.device("cpu"), rng)
    assert last["value_loss"] < 0.5 * first["value_loss"]
    assert last["policy_loss"] < first["policy_loss"] - 0.2
    assert sched.last_epoch == 103


def test_gradient_clipping_bounds_the_update():
    torch.manual_seed(0)
    net = PolicyValueNet(SMALL)
    buf = ReplayBuffer(100)
    buf.add(fake_game(0, 32))
    cfg = TrainConfig(grad_clip=1e-3, warmup_steps=0, augment=True)
    opt, sched = make_optimizer(net, cfg)
    stats = train_steps(net, opt, sched, buf, 1, 32, cfg, torch.device("cpu"), np.random.default_rng(0))
    assert stats["grad_norm"] > 1e-3  # the raw norm is reported; the step used the clipped one
    total = sum(float(p.grad.norm() ** 2) for p in net.parameters() if p.grad is not None) ** 0.5
    assert total == pytest.approx(1e-3, rel=1e-3)
