"""The referee's health checks on what a job recorded (autoresearch/health_sample.py) and on its
net (autoresearch/health_symmetry.py): each passes on a sound run and fails on a broken one."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace as NS

import numpy as np
import pytest

from autoresearch import health_sample as hs
from autoresearch.health_symmetry import symmetry_invariant, symmetry_spread
from experiments.rundir import SELFPLAY_SAMPLE, append_jsonl, append_metrics
from go_core.learn.evaluators import UniformEvaluator
from go_core.learn.mcts import BatchedMCTS
from go_core.learn.mcts_config import MCTSConfig
from go_core.learn.selfplay import SelfPlayConfig, play_games, sample_record

ROOT = Path(__file__).resolve().parents[1]
KOMI = 7.0


class WhiteDespairs(UniformEvaluator):
    """Uniform prior; black is sure to win, so white resigns where resignation is on."""

    def evaluate(self, boards):
        priors, _ = super().evaluate(boards)
        return priors, np.array([1.0 if b.to_play == 1 else -1.0 for b in boards], np.float32)


@pytest.fixture(scope="module")
def games():
    """Real self-play records (5x5, uniform net; some resign, some are played out)."""
    cfg = MCTSConfig(leaves_per_game=2)
    s = SelfPlayConfig(visits=6, cheap_visits=2, full_search_prob=0.7, temperature_moves=4,
                       parallel_games=4, no_resign_fraction=0.5, resign_min_moves=4)
    rng = np.random.default_rng(3)
    samples, finished, _ = play_games(6, BatchedMCTS(WhiteDespairs(), cfg, rng), s, rng, size=5, komi=KOMI)
    return [sample_record(g, samples) for g in finished]


def write_run(run_dir: Path, records, black=3, n=6, sims=1200.0) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    for r in records:
        append_jsonl(run_dir / SELFPLAY_SAMPLE, r)
    append_metrics(run_dir, {"games": n, "black_winrate": black / n, "sims_per_s": sims})
    return run_dir


def test_sound_self_play_passes_every_sample_check(games, tmp_path):
    run = write_run(tmp_path, games)
    assert any(g["resigned"] for g in games) and any(not g["resigned"] for g in games)
    for flag in (hs.value_targets(run), hs.policy_targets(run),
                 hs.komi_colour(run, KOMI, (0.1, 0.9), 0.01),
                 hs.throughput(run, "cpu", {"cpu": [100, 200000]})):
        assert flag.ok is True, flag


def test_a_flipped_value_target_is_flagged(games, tmp_path):
    bad = json.loads(json.dumps(games))
    played_out = next(g for g in bad if not g["resigned"])
    played_out["value"][3] = -played_out["value"][3] or 1.0    # one sign flipped
    f = hs.value_targets(write_run(tmp_path, bad))
    assert f.ok is False and "position 3" in f.detail and "Tromp-Taylor" in f.detail
    # a learner scoring with the wrong komi: every target of a close game flips (or a colour swap)
    swapped = [dict(g, value=[-v for v in g["value"]]) for g in games]
    assert hs.value_targets(write_run(tmp_path / "swap", swapped)).ok is False


def test_policy_mass_on_an_illegal_move_or_a_target_not_summing_to_one_is_flagged(games, tmp_path):
    bad = json.loads(json.dumps(games))
    g = bad[0]
    i = next(i for i, p in enumerate(g["policy"]) if p is not None and i > 0)
    occupied = g["moves"][0]                          # a stone stands there at position i > 0
    g["policy"][i] = [[occupied, 0.5]] + [[m, p / 2] for m, p in g["policy"][i]]
    f = hs.policy_targets(write_run(tmp_path / "illegal", bad))
    assert f.ok is False and f"move(s) [{occupied}]" in f.detail
    bad = json.loads(json.dumps(games))
    bad[0]["policy"][i] = [[m, 2 * p] for m, p in bad[0]["policy"][i]]
    f = hs.policy_targets(write_run(tmp_path / "sum", bad))
    assert f.ok is False and "sums to 2" in f.detail


def test_a_missing_or_malformed_sample_is_a_failed_check(games, tmp_path):
    run = write_run(tmp_path / "gone", games)
    (run / SELFPLAY_SAMPLE).unlink()                  # a node deleted it
    for check in (hs.value_targets, hs.policy_targets):
        f = check(run)
        assert f.ok is False and SELFPLAY_SAMPLE in f.detail
    (run / SELFPLAY_SAMPLE).write_text('{"size": 5}\n')
    assert hs.value_targets(run).ok is False
    short = [dict(games[0], value=games[0]["value"][:-1])]
    f = hs.policy_targets(write_run(tmp_path / "short", short))
    assert f.ok is False and "one per position" in f.detail


def test_komi_and_colour(games, tmp_path):
    # all 64 games won by black: outside [0.1, 0.9] beyond chance (0.9^64 = 0.0012 < 0.01)
    f = hs.komi_colour(write_run(tmp_path / "black", games, black=64, n=64), KOMI, (0.1, 0.9), 0.01)
    assert f.ok is False and "64/64" in f.detail and "false-alarm rate 0.01" in f.detail
    # a weak net's white lean (6/64 black, as measured on the tiny budget) is no alarm
    assert hs.komi_colour(write_run(tmp_path / "lean", games, black=6, n=64), KOMI, (0.1, 0.9), 0.01).ok
    # played with another komi than the run's
    f = hs.komi_colour(write_run(tmp_path / "komi", games), 0.5, (0.1, 0.9), 0.01)
    assert f.ok is False and "komi 7.0" in f.detail
    # the false-alarm rate: a true share on the band's edge is flagged at most alpha of the time
    rng = np.random.default_rng(0)
    k = rng.binomial(64, 0.1, 4000)
    alarms = np.mean([hs.binomial_tail(int(x), 64, 0.1, upper=False) < 0.01 for x in k])
    assert alarms <= 0.01


def test_throughput_outside_the_devices_range_is_flagged(games, tmp_path):
    run = write_run(tmp_path, games, sims=20.0)
    f = hs.throughput(run, "cpu", {"cpu": [100, 200000]})
    assert f.ok is False and "20 simulations/s on cpu" in f.detail
    assert hs.throughput(run, "mps", {"cpu": [100, 200000]}).ok is None


# -- symmetry -----------------------------------------------------------------------------------

def _symmetrize(net):
    """Make every conv kernel D4-symmetric: the fully-convolutional net is then exactly equivariant."""
    import torch
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d) and m.kernel_size[0] > 1:
                w = m.weight
                ws = [torch.rot90(w, k, (2, 3)) for k in range(4)]
                ws += [torch.flip(x, (3,)) for x in ws]
                w.copy_(torch.stack(ws).mean(0))


@pytest.fixture(scope="module")
def learner_repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("learner")
    for rel in ("go_core/__init__.py", "go_core/game", "go_core/learn"):
        subprocess.run(f"git -C {ROOT} archive HEAD {rel} | tar -x -C {repo}", shell=True, check=True)
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "learner"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True)
    return repo


@pytest.mark.parametrize("symmetric", [True, False])
def test_a_net_that_is_not_symmetric_under_augmentation_is_flagged(learner_repo, tmp_path, symmetric):
    import torch
    from go_core.learn.net import NetConfig, PolicyValueNet, save_checkpoint
    torch.manual_seed(0)
    net = PolicyValueNet(NetConfig(blocks=1, channels=16, gpool_every=0, gpool_channels=8,
                                   policy_channels=8, value_channels=8, value_hidden=16))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(4.0)                                   # sharp outputs: asymmetry shows
    if symmetric:
        _symmetrize(net)
    ckpt = tmp_path / "ckpt" / "latest.pt"
    ckpt.parent.mkdir()
    save_checkpoint(ckpt, net, board_size=9)
    node = NS(id=5, overrides=[], patch=None)
    f = symmetry_invariant(learner_repo, tmp_path / "ws", node, ckpt, 9, 7.0, max_tv=0.05, positions=4)
    assert f.ok is symmetric, f.detail
    # augmentation off in the config: nothing to check
    off = NS(id=6, overrides=["train.augment=false"], patch=None)
    assert symmetry_invariant(learner_repo, tmp_path / "ws", off, ckpt, 9, 7.0, 0.05).ok is None


def test_symmetry_spread_is_zero_for_equivariant_outputs():
    from go_core.game.symmetry import transform_policy
    rng = np.random.default_rng(1)
    p = rng.random(82)
    p /= p.sum()
    priors = np.stack([transform_policy(p, k, 9) for k in range(8)])
    tv, dv = symmetry_spread(priors, np.full(8, 0.3), 9)
    assert tv == pytest.approx(0.0) and dv == 0.0
    tv, _ = symmetry_spread(np.stack([p] * 8), np.full(8, 0.3), 9)    # not transformed: differs
    assert tv > 0.1


def test_a_real_training_checkpoint_loads_for_the_weights_check(tmp_path):
    """A checkpoint as experiments/train.py writes it (numpy RNG state and replay arrays inside)
    is read with weights_only and passes; a NaN in its state_dict fails."""
    import math

    import torch

    from autoresearch.health import weights_finite
    from go_core.learn.net import NetConfig, PolicyValueNet, save_checkpoint
    net = PolicyValueNet(NetConfig(blocks=1, channels=8, gpool_every=0, gpool_channels=4,
                                   policy_channels=4, value_channels=4, value_hidden=8))
    rng = np.random.default_rng(0)
    extra = {"rng": {"numpy": rng.bit_generator.state, "np_global": np.random.get_state()},
             "replay": {"data": np.zeros((3, 5), np.int8)}}
    save_checkpoint(tmp_path / "a.pt", net, board_size=9, **extra)
    assert weights_finite(tmp_path / "a.pt").ok is True, weights_finite(tmp_path / "a.pt").detail
    with torch.no_grad():
        next(net.parameters()).view(-1)[0] = math.nan
    save_checkpoint(tmp_path / "b.pt", net, board_size=9, **extra)
    f = weights_finite(tmp_path / "b.pt")
    assert f.ok is False and "state_dict" in f.detail
