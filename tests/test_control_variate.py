"""The control-variate helpers of benchmarks/seed_noise.py: r and its Fisher interval, centring per
group, the variance a control would remove, and (by simulation) the catch the report warns about."""
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from autoresearch.agent_config import VerdictConfig

_spec = importlib.util.spec_from_file_location(
    "seed_noise", Path(__file__).resolve().parents[1] / "benchmarks" / "seed_noise.py")
seed_noise = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seed_noise)


def test_pearson_r_and_fisher_interval_by_hand():
    # x centred -2..2, y centred (-2, 0, 1, 0, 1): sum xy 6, sxx 10, syy 6 -> r = 6 / sqrt(60)
    out = seed_noise.pearson_fisher([1, 2, 3, 4, 5], [2, 4, 5, 4, 5])
    r = 6 / math.sqrt(60)
    assert out["r"] == pytest.approx(r) and out["n"] == 5
    h = 1.959963984540054 / math.sqrt(5 - 3)
    assert out["ci95"] == pytest.approx([math.tanh(math.atanh(r) - h), math.tanh(math.atanh(r) + h)])


def test_too_few_points_give_the_whole_interval_and_no_spread_gives_no_r():
    assert seed_noise.pearson_fisher([1, 2, 4], [3, 1, 2])["ci95"] == [-1.0, 1.0]
    assert seed_noise.pearson_fisher([1, 2, 3], [5, 5, 5])["r"] is None


def test_group_means_do_not_make_a_correlation():
    # within each group x and y are uncorrelated; the paired group sits at (+300, +1) as a
    # treatment effect would: pooled raw, r would be 0.98
    paired = [(290, 0.9), (310, 1.1), (290, 1.1), (310, 0.9)]
    ring = [(-10, -0.1), (10, 0.1), (-10, 0.1), (10, -0.1)]
    assert seed_noise.pearson_fisher(*zip(*(paired + ring)))["r"] > 0.95
    out = seed_noise.within_group_correlation({"paired": paired, "ring": ring})
    assert out["r"] == pytest.approx(0.0, abs=1e-12) and out["groups"] == 2 and out["n"] == 8


def test_fisher_interval_covers_the_true_correlation_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    rho, n, hits, reps = 0.6, 12, 0, 600
    for _ in range(reps):
        x = rng.normal(size=n)
        y = rho * x + math.sqrt(1 - rho * rho) * rng.normal(size=n)
        groups = {"a": list(zip(x[:4] + 5, y[:4] - 3)), "b": list(zip(x[4:], y[4:]))}
        lo, hi = seed_noise.within_group_correlation(groups)["ci95"]
        hits += lo <= rho <= hi
    assert 0.92 <= hits / reps <= 0.98


def test_adjusted_sigma_is_plain_at_r_0_and_only_games_at_r_1():
    d, s = [10, 60, -20, 30], [30, 30, 30, 30]
    plain = seed_noise.sigma_paired_from(d, s)["elo"]
    assert seed_noise.cv_adjusted_sigma(d, s, 0.0)["sigma_paired_adjusted_elo"] == pytest.approx(plain)
    assert seed_noise.cv_adjusted_sigma(d, s, 1.0)["sigma_paired_adjusted_elo"] == 0.0
    half = seed_noise.cv_adjusted_sigma(d, s, math.sqrt(0.5))
    assert half["sd_d_adjusted_elo"] ** 2 == pytest.approx(3400 / 3 / 2)


def test_the_catch_a_treatment_that_moves_only_the_loss_makes_the_adjusted_test_lie():
    """Child and parent equally strong; the child's change lowers the loss by 0.1 nats. The plain
    paired test keeps its 5% level; the control-adjusted one calls most such children different."""
    rng = np.random.default_rng(0)
    k, reps, beta = 4, 2000, -300.0          # Elo per nat: lower loss goes with higher Elo
    plain_rej = adj_rej = 0
    for _ in range(reps):
        noise = rng.normal(size=k)                       # training noise shared by Elo and loss
        dl = 0.03 * noise + 0.005 * rng.normal(size=k) - 0.1   # the treatment moves the loss
        d = beta * 0.03 * noise + 20 * rng.normal(size=k)      # ...but not the strength
        for stat, is_adj in ((d, False), (d - beta * dl, True)):
            t = stat.mean() / (stat.std(ddof=1) / math.sqrt(k))
            rej = abs(t) > 3.182                                # t(3) two-sided 5%
            plain_rej += rej and not is_adj
            adj_rej += rej and is_adj
    assert plain_rej / reps < 0.07
    assert adj_rej / reps > 0.5


def _match(elo, se, dl):
    return {"elo": elo, "se": se, "control_diff": {"policy_loss": dl}}


def test_report_has_r_reduction_effect_and_recommendation():
    paired = [_match(100, 30, -0.05), _match(20, 30, 0.0), _match(150, 30, -0.08), _match(60, 30, -0.02)]
    rings = {"parent": [_match(-200, 40, 0.1), _match(80, 40, -0.03), _match(120, 40, -0.07)]}
    out = seed_noise.control_variate_report(paired, rings, ["policy_loss"], VerdictConfig(), 0.1, 3.0, 100.0)
    c = out["controls"]["policy_loss"]
    assert c["correlation"]["pooled"]["n"] == 7 and c["correlation"]["pooled"]["r"] < -0.9
    assert c["variance_reduction"] == pytest.approx(1 - c["correlation"]["pooled"]["r"] ** 2)
    assert c["sigma_paired_adjusted_elo"] < seed_noise.sigma_paired_from([m["elo"] for m in paired],
                                                                          [30] * 4)["elo"]
    lo, hi = c["sigma_paired_adjusted_elo_at_r_ci95"]
    assert lo <= c["sigma_paired_adjusted_elo"] <= hi
    assert c["treatment_effect_on_control"]["mean_paired_diff"] == pytest.approx(-0.0375)
    assert "not effect_elo" in out["catch"] and out["recommendation"].startswith("Do not adjust verdicts")


def test_controls_are_computed_once_per_checkpoint_and_again_when_it_changes(tmp_path, monkeypatch):
    from go_core.arena.katago_positions import default_path, load_positions
    from go_core.learn.net import NetConfig, PolicyValueNet, save_checkpoint
    tiny = NetConfig(blocks=1, channels=8, gpool_every=0, gpool_channels=4, policy_channels=4,
                     value_channels=4, value_hidden=8)
    small = tmp_path / "two.jsonl"
    small.write_text("\n".join(default_path(9).read_text().splitlines()[:3]) + "\n")
    positions = load_positions(small)
    ck = save_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt", PolicyValueNet(tiny), board_size=9)
    first, terms = seed_noise.controls_of(ck, positions, "sha-a")
    assert (ck.parent / "controls.json").exists() and set(seed_noise.CONTROLS) <= set(first)
    assert len(terms["policy_loss"]) == len(positions)
    assert float(terms["policy_loss"].mean()) == pytest.approx(first["policy_loss"])
    import benchmarks.position_loss as pl
    monkeypatch.setattr(pl, "per_position", lambda *a, **k: pytest.fail("recomputed a cached control"))
    again, terms2 = seed_noise.controls_of(ck, positions, "sha-a")
    assert again == first and np.array_equal(terms2["value_loss"], terms["value_loss"])
    monkeypatch.undo()
    save_checkpoint(ck, PolicyValueNet(tiny), board_size=9)         # a retrained net: new values
    assert seed_noise.controls_of(ck, positions, "sha-a")[0]["policy_loss"] != first["policy_loss"]
    assert seed_noise.controls_of(ck, positions, "sha-b")            # another position set: recomputed


def test_with_two_seeds_the_single_ring_edges_are_pooled_into_one_group():
    paired = [_match(100, 30, -0.05), _match(20, 30, 0.0)]
    rings = {"parent": [_match(-200, 40, 0.1)], "child": [_match(80, 40, -0.03)]}
    out = seed_noise.control_variate_report(paired, rings, ["policy_loss"], VerdictConfig(), 0.1, 3.0, 100.0)
    c = out["controls"]["policy_loss"]
    assert (c["correlation"]["pooled"]["n"], c["correlation"]["pooled"]["groups"]) == (4, 2)
    # 4 points in 2 centred groups leave no degrees of freedom for an interval: no reduction claimed
    assert c["variance_reduction"] is None and c["r_used"].startswith("none")
