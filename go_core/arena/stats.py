"""Win rates you can quote: the Wilson score interval and the colour advantage of a set of games.

A game's score from one side's point of view is 1 (win), 0.5 (draw, e.g. a jigo with integer komi)
or 0 (loss). Draws count as half a win, so `wins` may be fractional.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(wins: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion `wins / n`.

    Unlike the normal ("Wald") interval it stays inside [0, 1] and is not degenerate at 0/n or n/n:
    10 wins out of 10 gives about [0.72, 1.0], not [1.0, 1.0]. With no games it is [0, 1].
    """
    if n < 0 or wins < 0 or wins > n:
        raise ValueError(f"wilson_interval needs 0 <= wins <= n, got wins={wins}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = wins / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class WinRate:
    """A win rate with its Wilson 95% interval (draws count half)."""
    wins: float     # wins + draws/2
    games: int      # games played
    rate: float     # wins / games (0.5 with no games)
    ci95: tuple[float, float]

    def to_dict(self) -> dict:
        return {"wins": self.wins, "games": self.games, "rate": self.rate, "ci95": list(self.ci95)}


def win_rate(scores: Iterable[float]) -> WinRate:
    """Win rate of a sequence of per-game scores (1 win, 0.5 draw, 0 loss) from one side's view."""
    scores = list(scores)
    for s in scores:
        if s not in (0, 0.5, 1):
            raise ValueError(f"a game score must be 0, 0.5 or 1, got {s!r}")
    n = len(scores)
    wins = float(sum(scores))
    return WinRate(wins=wins, games=n, rate=wins / n if n else 0.5, ci95=wilson_interval(wins, n))


def colour_advantage(black_scores: Iterable[float]) -> WinRate:
    """Black's win rate over games (each score from black's side) — above 0.5 means black is favoured.

    Between unequal players this mixes strength with colour; with colours alternating it is fair.
    `go_core.arena.elo.fit_elo` also fits a colour term jointly with the ratings, which separates the two.
    """
    return win_rate(black_scores)
