"""Wilson intervals and win rates: the numbers a report quotes."""
import math

import numpy as np
import pytest

from go_core.arena.stats import colour_advantage, wilson_interval, win_rate


@pytest.mark.parametrize("wins,n,lo,hi", [
    (5, 10, 0.2366, 0.7634),    # textbook values (Wilson 1927; e.g. Newcombe 1998, table I)
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (81, 263, 0.2553, 0.3662),
])
def test_wilson_known_values(wins, n, lo, hi):
    a, b = wilson_interval(wins, n)
    assert a == pytest.approx(lo, abs=1e-4) and b == pytest.approx(hi, abs=1e-4)


def test_wilson_no_games_is_uninformative_and_bad_input_is_refused():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_wilson_coverage_is_about_95_percent():
    rng = np.random.default_rng(1)
    hits = total = 0
    for p in (0.1, 0.3, 0.5, 0.8):
        for _ in range(2000):
            k = rng.binomial(40, p)
            lo, hi = wilson_interval(k, 40)
            hits += lo <= p <= hi
            total += 1
    assert 0.93 <= hits / total <= 0.975


def test_win_rate_counts_draws_as_half_and_rejects_other_scores():
    wr = win_rate([1, 0, 0.5, 1])
    assert wr.wins == 2.5 and wr.games == 4 and wr.rate == 0.625
    assert wr.ci95[0] < 0.625 < wr.ci95[1]
    with pytest.raises(ValueError):
        win_rate([2])
    assert colour_advantage([1, 1, 1, 0]).rate == 0.75
    assert math.isclose(win_rate([]).rate, 0.5)
