"""Bradley–Terry Elo: recovers known ratings within its intervals, and survives perfect separation."""
import numpy as np
import pytest

from go_core.arena.elo import elo_difference, expected_score, fit_elo, simulate_games


def test_two_players_plain_mle_matches_closed_form():
    games = [("random", "x", 0.0)] * 15 + [("random", "x", 1.0)] * 5
    fit = fit_elo(games, prior_draws=0, fit_colour=False)
    assert fit.ratings["x"] == pytest.approx(elo_difference(0.75), abs=1e-6)
    assert fit.ratings["random"] == 0.0
    lo, hi = fit.ci95["x"]
    assert lo < fit.ratings["x"] < hi
    assert expected_score(fit.ratings["x"], 0.0) == pytest.approx(0.75)


def test_colour_advantage_is_separated_from_strength():
    rng = np.random.default_rng(3)
    truth = {"random": 0.0, "a": 0.0, "b": 100.0}
    games = simulate_games(truth, [("random", "a"), ("a", "b"), ("random", "b")], 400, rng,
                           colour_advantage=150.0)
    fit = fit_elo(games)
    assert fit.colour_ci95[0] < 150.0 < fit.colour_ci95[1]
    assert fit.colour_ci95[0] > 50.0   # clearly detected
    for name in ("a", "b"):
        assert fit.ci95[name][0] < truth[name] < fit.ci95[name][1]


def test_coverage_over_simulated_tournaments_is_about_95_percent():
    """Seeded: 300 ladders of 4 players, neighbours and one cross pair, 30 games a pair."""
    rng = np.random.default_rng(2026)
    hits = total = colour_hits = 0
    pairs = [("random", "a"), ("a", "b"), ("b", "c"), ("a", "c")]
    for _ in range(300):
        truth = {"random": 0.0, "a": rng.uniform(50, 250)}
        truth["b"] = truth["a"] + rng.uniform(50, 250)
        truth["c"] = truth["b"] + rng.uniform(50, 250)
        games = simulate_games(truth, pairs, 30, rng, colour_advantage=40.0)
        fit = fit_elo(games)
        for name in ("a", "b", "c"):
            lo, hi = fit.ci95[name]
            hits += lo <= truth[name] <= hi
            total += 1
        colour_hits += fit.colour_ci95[0] <= 40.0 <= fit.colour_ci95[1]
    coverage = hits / total
    assert 0.92 <= coverage <= 0.985, coverage
    assert 0.90 <= colour_hits / 300 <= 0.99


def test_perfect_separation_is_finite_with_the_prior_and_flagged():
    games = [("random", "gnugo", 0.0), ("gnugo", "random", 1.0)] * 10
    with pytest.raises(ValueError, match="separation"):
        fit_elo(games, prior_draws=0)
    fit = fit_elo(games)
    r = fit.ratings["gnugo"]
    assert 300 < r < 1200
    assert fit.ci95["gnugo"][0] > 0          # the data say gnugo is stronger, clearly
    assert fit.separated == [["random"], ["gnugo"]]
    # More lopsided evidence moves the estimate further up.
    assert fit_elo(games * 3).ratings["gnugo"] > r


def test_anchor_uncertainty_widens_the_candidate_interval():
    games = [("rung", "cand", 0.0), ("cand", "rung", 0.0)] * 10
    exact = fit_elo(games, anchors={"rung": 500.0})
    noisy = fit_elo(games, anchors={"rung": 500.0}, anchor_sd={"rung": 80.0})
    assert exact.ratings["cand"] == pytest.approx(noisy.ratings["cand"])
    assert exact.ratings["cand"] == pytest.approx(500.0, abs=1.0)   # even score, colours balanced
    w_exact = exact.ci95["cand"][1] - exact.ci95["cand"][0]
    w_noisy = noisy.ci95["cand"][1] - noisy.ci95["cand"][0]
    assert w_noisy > w_exact


def test_a_player_not_connected_to_an_anchor_is_an_error():
    with pytest.raises(ValueError, match="not connected"):
        fit_elo([("a", "b", 1.0), ("b", "a", 0.0)])


def test_neighbour_gaps_are_known_better_than_ratings_far_from_the_anchor():
    rng = np.random.default_rng(5)
    truth = {"random": 0.0, "a": 300.0, "b": 600.0, "c": 900.0}
    games = simulate_games(truth, [("random", "a"), ("a", "b"), ("b", "c")], 40, rng)
    fit = fit_elo(games)
    d, (lo, hi) = fit.gap("c", "b")
    assert lo < d < hi and lo < 300.0 < hi
    assert hi - lo < fit.ci95["c"][1] - fit.ci95["c"][0]
    d0, (lo0, hi0) = fit.gap("a", "random")     # against the anchor the gap is the rating
    assert d0 == pytest.approx(fit.ratings["a"]) and (lo0, hi0) == pytest.approx(fit.ci95["a"])
