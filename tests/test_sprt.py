"""Head-to-head statistics: pentanomial counts, the GSPRT LLR, the three-outcome sequential test's
error rates and power (by simulation), and the interval's coverage."""
import math

import numpy as np
import pytest

from autoresearch.verdict_sim import pair_probs
from go_core.arena.sprt import (PAIR_VALUES, constrained_mle, elo_to_score, estimate, game_se_elo,
                                llr, llr_normal, mde_elo, pentanomial, score_to_elo, sequential_test)
from go_core.arena.stats import wilson_interval


def test_pentanomial_counts_pair_scores_and_refuses_impossible_ones():
    assert pentanomial([0, 0.5, 1, 1, 1.5, 2, 2, 2]) == (1, 1, 2, 1, 3)
    with pytest.raises(ValueError, match="0, 0.5, 1, 1.5 or 2"):
        pentanomial([0.75])


def test_elo_score_round_trip_and_known_value():
    assert elo_to_score(0) == 0.5
    assert elo_to_score(400) == pytest.approx(10 / 11)      # 10:1 odds at +400 Elo
    for e in (-300, -42.5, 0, 100, 700):
        assert score_to_elo(elo_to_score(e)) == pytest.approx(e)


def test_llr_matches_a_hand_computed_binary_case():
    # Only LL and WW pairs: the constrained MLE with mean s puts s on WW and 1 - s on LL, so
    # LLR = n_WW ln(s1/s0) + n_LL ln((1-s1)/(1-s0)) (the 1e-3 regularisation of empty cells aside).
    counts = (12, 0, 0, 0, 20)
    s0, s1 = 0.5, elo_to_score(100)
    hand = 20 * math.log(s1 / s0) + 12 * math.log((1 - s1) / (1 - s0))
    # s1 = 1/(1 + 10^-0.25) = 0.64006; 20 ln(1.28013) + 12 ln(0.71987) = 4.9391 - 3.9441 = 0.9950
    assert hand == pytest.approx(0.9950, abs=1e-3)
    assert llr(counts, 0, 100) == pytest.approx(hand, abs=2e-3)


def test_constrained_mle_is_the_maximum_on_the_constraint_set():
    rng = np.random.default_rng(3)
    a = np.array(PAIR_VALUES)
    for _ in range(20):
        c = rng.integers(1, 40, size=5).astype(float)
        s = float(rng.uniform(0.2, 0.8))
        p = np.array(constrained_mle(c, s))
        assert p.sum() == pytest.approx(1) and (p * a).sum() == pytest.approx(s) and (p > 0).all()
        # directions that keep both constraints: orthogonal to (1,...,1) and to a
        basis = np.linalg.svd(np.vstack([np.ones(5), a]))[2][2:]
        loglik = lambda q: float((c * np.log(q)).sum())   # noqa: E731
        for v in basis:
            for eps in (1e-4, -1e-4):
                assert loglik(p + eps * v) < loglik(p)


def test_llr_agrees_with_its_normal_approximation_for_small_differences():
    counts = (20, 80, 160, 100, 40)
    assert llr(counts, 0, 10) == pytest.approx(llr_normal(counts, 0, 10), rel=0.05)
    assert llr(counts, 0, 10) > 0 > llr(counts, 0, -10)   # the sample leans to the child


def test_sequential_test_false_verdicts_stay_under_5_percent_between_equal_players():
    rng = np.random.default_rng(11)
    runs, wrong = 2000, 0
    probs = pair_probs(0.0, colour_elo=40.0)
    for _ in range(runs):
        c = np.zeros(5, dtype=np.int64)
        while True:
            c += rng.multinomial(25, probs)
            r = sequential_test(c.tolist(), 100.0, 200)
            if r.outcome:
                wrong += r.outcome in ("better", "worse")
                break
    lo, hi = wilson_interval(wrong, runs)
    assert hi <= 0.06, f"{wrong}/{runs} false verdicts, 95% [{lo:.3f}, {hi:.3f}]"


def test_sequential_test_finds_a_planted_100_elo_difference():
    rng = np.random.default_rng(12)
    runs, found, pairs = 400, 0, 0
    for _ in range(runs):
        c = np.zeros(5, dtype=np.int64)
        while True:
            c += rng.multinomial(25, pair_probs(100.0))
            r = sequential_test(c.tolist(), 100.0, 200)
            if r.outcome:
                found += r.outcome == "better"
                pairs += r.pairs
                break
    assert found / runs >= 0.85          # 200 pairs measure +-17 Elo: +100 is plain to see
    assert pairs / runs < 120            # and the SPRT stops well before the cap on average


def test_sequential_test_ruling_out_and_the_cap():
    even = sequential_test((40, 0, 120, 0, 40), 100.0, 400)   # dead even, 200 pairs
    assert even.outcome == "inconclusive" and "ruled out" in even.reason
    few = sequential_test((1, 0, 2, 0, 2), 100.0, 200)
    assert few.outcome is None                                 # 5 pairs: keep playing
    capped = sequential_test((1, 0, 2, 0, 2), 100.0, 5)
    assert capped.outcome == "inconclusive" and "cap" in capped.reason


def test_interval_covers_the_true_difference_about_95_percent():
    rng = np.random.default_rng(5)
    hits = total = 0
    for truth in (-150.0, 0.0, 60.0):
        for _ in range(500):
            e = estimate(rng.multinomial(100, pair_probs(truth, 30.0)).tolist())
            hits += e.ci95[0] <= truth <= e.ci95[1]
            total += 1
    lo, hi = wilson_interval(hits, total)
    assert lo <= 0.95 + 0.01 and hi >= 0.95 - 0.01, f"coverage {hits / total:.3f}"


def test_degenerate_samples_keep_a_finite_elo_and_a_wide_interval():
    e = estimate((0, 0, 3, 0, 0))
    assert e.elo == 0 and e.ci95[1] - e.ci95[0] > 300
    sweep = estimate((0, 0, 0, 0, 5))
    assert math.isfinite(sweep.elo) and sweep.elo > 0 and sweep.ci95[0] > 0


def test_minimum_detectable_difference_at_200_pairs():
    se = game_se_elo(200)                                     # 245.7 / sqrt(200)
    assert se == pytest.approx(17.37, abs=0.01)
    assert mde_elo(se) == pytest.approx(2.8016 * 17.37, abs=0.05)
