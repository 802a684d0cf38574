"""Child vs parent from paired seeds: the verdict's error rates and power with training noise (by
simulation), what it asks for next, its record, and sigma pooled over the tree."""
import json
import math

import numpy as np
import pytest

from autoresearch.agent_config import VerdictConfig, load_agent_config
from autoresearch.verdict import (ADD_SEED_PAIR, MORE_GAMES, SigmaEstimate, decide,
                                  estimate_sigma_paired, estimate_sigma_train)
from autoresearch.verdict_sim import pair_probs, simulate
from go_core.arena.stats import wilson_interval


def test_no_op_children_get_better_or_worse_at_most_5_percent_of_the_time():
    # sigma_paired 60 Elo: training noise comparable to the effects, so seed pairs are added
    r = simulate(theta=0.0, sigma_true=60.0, runs=2000, seed=21, colour_elo=30.0)
    wrong = r["better"] + r["worse"]
    lo, hi = wilson_interval(wrong, r["runs"])
    assert hi <= 0.065, f"{wrong}/2000 false verdicts, 95% [{lo:.3f}, {hi:.3f}]"
    assert r["mean_seed_pairs"] > 2          # the procedure did use the seed pairs


def test_a_planted_100_elo_change_is_found_when_training_noise_is_small():
    r = simulate(theta=100.0, sigma_true=20.0, runs=300, seed=22)
    assert r["better"] / r["runs"] >= 0.8 and r["worse"] == 0


def test_training_noise_the_verdict_is_not_told_about_breaks_it():
    # the same no-op children judged with sigma_paired = 0 although seeds spread by 100 Elo:
    # the games alone look decisive, so false verdicts pile up -- why sigma_paired is in SE
    r = simulate(theta=0.0, sigma_true=100.0, runs=300, seed=23, sigma_used=0.0)
    assert (r["better"] + r["worse"]) / r["runs"] > 0.3


def test_interval_at_the_caps_covers_the_truth_about_95_percent():
    rng = np.random.default_rng(24)
    cfg = VerdictConfig()
    hits = 0
    runs = 600
    for _ in range(runs):
        seeds = [rng.multinomial(200, pair_probs(50.0 + rng.normal(0, 40.0))).tolist()
                 for _ in range(3)]
        rec = decide(seeds, cfg, 40.0)
        hits += rec.ci95[0] <= 50.0 <= rec.ci95[1]
    lo, hi = wilson_interval(hits, runs)
    assert lo <= 0.96 and hi >= 0.94, f"coverage {hits / runs:.3f}"


def test_next_step_more_games_then_a_seed_pair_then_inconclusive_at_the_caps():
    cfg = VerdictConfig(pairs_per_seed_pair=200, max_seed_pairs=2)
    close = [5, 0, 10, 0, 6]                          # 21 pairs, about even: games unsettled
    rec = decide([close], cfg, 10.0)
    assert rec.verdict is None and rec.next == MORE_GAMES
    # training noise 150 Elo dwarfs the games' 54 Elo: the games are settled, add a seed pair
    rec = decide([close], cfg, 150.0)
    assert rec.verdict is None and rec.next == ADD_SEED_PAIR
    assert decide([close, [0] * 5], cfg, 150.0).next == MORE_GAMES   # the new pair has no games
    rec = decide([close, [6, 0, 9, 0, 6]], cfg, 150.0)               # both seed pairs settled
    assert rec.verdict == "inconclusive" and rec.next is None
    assert "rules out differences outside" in rec.test


def test_a_clear_result_is_better_and_the_record_says_everything_as_json():
    rec = decide([[2, 3, 20, 40, 35], [1, 4, 25, 40, 30]], VerdictConfig(), SigmaEstimate(30.0, 8, "pooled"))
    assert rec.verdict == "better" and rec.next is None
    assert rec.ci95[0] > 0 and rec.ci95[0] < rec.diff_elo < rec.ci95[1]
    assert rec.games_per_side == 400 and rec.seed_pairs == 2 and rec.sigma_paired_elo == 30.0
    assert rec.mde_elo == pytest.approx(2.8016 * rec.se_elo, rel=1e-3)
    d = json.loads(json.dumps(rec.to_json()))
    assert d["verdict"] == "better" and len(d["per_seed_pair"]) == 2 and "stopped" in d["test"]
    worse = decide([[35, 40, 20, 3, 2]], VerdictConfig(), 0.0)
    assert worse.verdict == "worse"


def test_no_games_yet_asks_for_games_and_the_prior_is_used_without_a_sigma():
    rec = decide([], VerdictConfig())
    assert rec.verdict is None and rec.next == MORE_GAMES and rec.diff_elo is None
    rec = decide([[3, 0, 4, 0, 3]], VerdictConfig(sigma_paired_prior_elo=170.0))
    assert rec.sigma_paired_elo == 170.0 and "prior" in rec.sigma_source
    with pytest.raises(ValueError, match="sigma_paired"):
        decide([[3, 0, 4, 0, 3]], VerdictConfig(), -5.0)


def test_sigma_paired_pooled_from_the_tree_recovers_the_truth_and_shrinks_to_the_prior():
    rng = np.random.default_rng(25)
    true_sigma, game_se = 50.0, 20.0
    comparisons = []
    for _ in range(60):                                   # 60 children with 3 seed pairs each
        theta = rng.normal(0, 100)
        comparisons.append([(theta + rng.normal(0, true_sigma) + rng.normal(0, game_se), game_se)
                            for _ in range(3)])
    est = estimate_sigma_paired(comparisons, prior_elo=170.0, prior_df=0.0)
    assert est.df == 120 and est.elo == pytest.approx(true_sigma, abs=10)
    lo, hi = est.ci95()
    assert lo < true_sigma < hi and hi - lo < 40
    with_prior = estimate_sigma_paired(comparisons, prior_elo=170.0, prior_df=2.0)
    assert est.elo < with_prior.elo < est.elo + 10          # 2 df of prior barely move 120 df
    alone = estimate_sigma_paired([], prior_elo=170.0, prior_df=2.0)
    assert alone.elo == 170.0 and alone.df == 0
    one = estimate_sigma_paired([[(10.0, 20.0), (-10.0, 20.0)]], prior_elo=170.0, prior_df=2.0)
    assert 50 < one.elo < 170                             # one df moves it, the prior still weighs
    # null pairs (a no-op change) spread around 0, not around their own mean
    null = estimate_sigma_paired([], 170.0, 0.0, null_comparisons=[[(60.0, 0.0), (60.0, 0.0)]])
    assert null.elo == pytest.approx(60.0)


def test_sigma_train_defaults_to_issue_12_and_pools_same_config_seeds():
    assert estimate_sigma_train([]).elo == 120.0
    # issue 12's four ratings, each with about 40 Elo of game noise
    est = estimate_sigma_train([[(107, 40), (107, 40), (-61, 40), (-152, 40)]], prior_df=0.0)
    assert est.elo == pytest.approx(math.sqrt((49724.75 - 3 / 4 * 4 * 1600) / 3), rel=1e-3)


def test_the_caps_and_prior_are_config_values_in_the_agent_yaml():
    v = load_agent_config().verdict
    assert (v.pairs_per_seed_pair, v.max_seed_pairs, v.delta_elo) == (200, 3, 100)
    assert v.sigma_paired_prior_elo == 170 and v.alpha == 0.05


def test_the_benchmark_prints_one_json_object_with_its_figures_and_their_intervals():
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "verdicts.py"), "--runs", "20",
                          "--sigma-paired", "30"], capture_output=True, text=True, timeout=60, check=True)
    d = json.loads(out.stdout)
    assert d["false_positive_rate"]["runs"] == 20 and len(d["false_positive_rate"]["ci95"]) == 2
    assert d["sigma_paired_elo"]["value"] == 30 and d["sigma_train_elo"]["value"] == pytest.approx(122.4, abs=0.1)
    assert d["mde_elo"]["value"] == pytest.approx(56.1, abs=0.1)   # 2.8 x sqrt((30^2 + 17.4^2) / 3)
    assert d["at_budget"]["max_sigma_paired_for_100_elo"] == 47
    assert {"seed_pairs", "pairs_per_seed_pair", "minutes_per_child", "mde_elo"} <= set(d["frontier"][0])


def test_a_verdict_record_reads_back_in_show_digest_and_report():
    """What a verdict records (difference, 95% interval, games, seed pairs, minimum detectable
    difference) is what `research show`, the proposer's digest and the report print."""
    from autoresearch.digest import verdict_summary
    from experiment_tree.format import comparison_text
    rec = decide([[10, 20, 80, 60, 30]], VerdictConfig(max_seed_pairs=1))
    stored = {"verdict_detail": rec.to_json()}
    line = comparison_text(stored)
    assert f"{rec.diff_elo:+.0f} Elo [{rec.ci95[0]:+.0f}, {rec.ci95[1]:+.0f}]" in line
    assert f"over {rec.games_per_side} games, 1 seed pair(s)" in line
    assert f"minimum detectable difference {rec.mde_elo:.0f} Elo" in line
    s = verdict_summary(stored["verdict_detail"])
    assert s == {"diff": rec.diff_elo, "ci95": list(rec.ci95), "mde": rec.mde_elo,
                 "games": rec.games_per_side, "seed_pairs": 1}
    assert comparison_text({}) is None and verdict_summary(None) is None


def test_an_inconclusive_verdict_whose_95_interval_excludes_zero_says_why_it_is_not_a_verdict():
    """Between z = 1.96 and the test's last-look threshold the 95% interval excludes 0 while the
    test (alpha split over sides and looks) stays inconclusive: the record must say so."""
    from autoresearch.agent_config import VerdictConfig
    from autoresearch.verdict import decide
    from go_core.arena.sprt import final_z
    cfg = VerdictConfig(max_seed_pairs=1, pairs_per_seed_pair=40)
    found = None
    for wins in range(41):   # game pairs the child wins 2-0 out of 40, the rest 1-1
        rec = decide([[0, 0, 40 - wins, 0, wins]], cfg, 60.0)
        z = rec.diff_elo / rec.se_elo
        if rec.verdict == "inconclusive" and 1.96 < z < final_z(cfg.alpha):
            found = rec
            break
    assert found is not None, "no count gave z between 1.96 and the final threshold"
    assert found.ci95[0] > 0
    assert "excludes 0" in found.test and "not a verdict" in found.test
