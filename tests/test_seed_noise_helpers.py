"""The pure helpers of benchmarks/seed_noise.py: the sigma formulas it reports must be right.

Made-up numbers with answers worked out by hand, and a Monte Carlo check that the ring estimator of
sigma_train is unbiased (a formula off by the factor 2 of a difference of two seeds would fail it).
"""
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from autoresearch.agent_config import VerdictConfig
from go_core.arena.sprt import game_se_elo, mde_elo

_spec = importlib.util.spec_from_file_location(
    "seed_noise", Path(__file__).resolve().parents[1] / "benchmarks" / "seed_noise.py")
seed_noise = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seed_noise)


def test_sigma_paired_is_sample_variance_less_game_variance():
    # d = 10, 60, -20, 30: mean 20, var (100 + 1600 + 1600 + 100) / 3 = 3400/3; game var 900
    r = seed_noise.sigma_paired_from([10, 60, -20, 30], [30, 30, 30, 30])
    assert r["elo"] == pytest.approx(math.sqrt(3400 / 3 - 900))
    assert r["df"] == 3
    assert r["verdict_estimate_sigma_paired_prior_df0"] == pytest.approx(r["elo"])
    lo, hi = r["ci95"]
    assert 0 <= lo <= r["elo"] <= hi


def test_sigma_paired_floors_at_zero_when_games_explain_the_spread():
    r = seed_noise.sigma_paired_from([10, -10, 5], [80, 80, 80])
    assert r["elo"] == 0.0
    assert r["ci95"][1] > 0          # the interval still says how large it could be


def test_sigma_train_from_ring_halves_the_difference_variance():
    # e^2 mean = (100^2 + 50^2 + 80^2 + 130^2) / 4 = 8950; game var 1600 -> sigma^2 = 3675
    r = seed_noise.sigma_train_from_ring([100, -50, 80, -130], [40, 40, 40, 40])
    assert r["elo"] == pytest.approx(math.sqrt(3675))
    assert r["sd_independent_diff_elo"] == pytest.approx(math.sqrt(2 * 3675))


def test_ring_df_is_satterthwaite_of_the_ring_laplacian():
    assert seed_noise.ring_df(3) == pytest.approx(2.0)      # a 3-ring is a full round robin: K - 1
    assert seed_noise.ring_df(4) == pytest.approx(8 / 3)    # eigenvalues 0, 2, 4, 2


def test_ring_estimator_is_unbiased_by_simulation():
    rng = np.random.default_rng(7)
    sigma, s, k, reps = 100.0, 40.0, 4, 20000
    r = rng.normal(0, sigma, (reps, k))
    e = r - np.roll(r, -1, axis=1) + rng.normal(0, s, (reps, k))
    est = ((e ** 2).mean(axis=1) - s * s) / 2        # the helper's formula before the floor
    assert est.mean() == pytest.approx(sigma ** 2, rel=0.03)
    one = seed_noise.sigma_train_from_ring(list(e[0]), [s] * k)["elo"]
    assert one == pytest.approx(math.sqrt(max(est[0], 0)))
    # and the ratings it fits reproduce a consistent ring exactly
    true = [30.0, -10.0, 50.0, -70.0]
    ring = [true[j] - true[(j + 1) % 4] for j in range(4)]
    assert seed_noise.ring_ratings(ring) == pytest.approx(true)


def test_mde_table_adds_training_and_game_noise_per_seed_pair():
    cfg = VerdictConfig(pairs_per_seed_pair=200, max_seed_pairs=3)
    rows = seed_noise.mde_table(90.0, 0.1, cfg, train_min=3.0, games_per_min=400.0)
    s = game_se_elo(200, 0.1)
    assert [r["seed_pairs"] for r in rows] == [1, 2, 3]
    assert rows[1]["mde_elo"] == pytest.approx(mde_elo(math.sqrt((90.0 ** 2 + s * s) / 2)))
    assert rows[2]["minutes_per_child"] == pytest.approx(3 * 3.0 + 3 * 400 / 400.0)


def test_rings_pool_their_edges_and_degrees_of_freedom():
    a = ([100, -50, -50], [40, 40, 40])
    b = ([30, -60, 30], [20, 20, 20])
    r = seed_noise.sigma_train_from_rings([a, b])
    ms = (100 ** 2 + 2 * 50 ** 2 + 2 * 30 ** 2 + 60 ** 2) / 6
    assert r["elo"] == pytest.approx(math.sqrt((ms - (3 * 1600 + 3 * 400) / 6) / 2))
    assert r["df"] == pytest.approx(4.0)          # two 3-rings: 2 + 2
    assert seed_noise.ring_df(4, 4) == pytest.approx(16 / 3)


def test_two_seeds_give_one_edge_per_arm_with_one_df_each():
    r = seed_noise.sigma_train_from_rings([([150.0], [30.0]), ([-90.0], [30.0])])
    assert r["df"] == pytest.approx(2.0)
    assert r["elo"] == pytest.approx(math.sqrt(((150 ** 2 + 90 ** 2) / 2 - 900) / 2))
    with pytest.raises(ValueError):
        seed_noise.sigma_train_from_rings([([1.0, 2.0], [1.0, 1.0])])   # a 2-ring double-counts its edge


def test_chi2_quantiles_match_tables_at_small_df():
    assert seed_noise.chi2_quantile(0.025, 1) == pytest.approx(0.000982, rel=1e-3)
    assert seed_noise.chi2_quantile(0.975, 1) == pytest.approx(5.0239, rel=1e-4)
    assert seed_noise.chi2_quantile(0.025, 3) == pytest.approx(0.2158, rel=1e-3)
    assert seed_noise.chi2_quantile(0.975, 3) == pytest.approx(9.3484, rel=1e-4)
