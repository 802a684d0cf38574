"""The ladder verdict: a z-test on ladder Elo intervals, used by the loop only when the referee
does not rate its nodes (`referee.enabled=false`, or a job other than experiments.train, as the
tests' fake job); rated nodes get head-to-head verdicts (autoresearch/judge.py, verdict.py).
It cannot see less than about 560 Elo (issue 12).

Test (recorded in `verdict_test`): the Elo difference child - parent divided by its standard
error, each side's standard error read off its 95% interval (half-width / 1.96) and several seeds
of one configuration pooled by inverse variance. |z| > z_crit (1.96: two-sided 5%) gives a
verdict. Runs without Elo fall back to a two-proportion z-test on the win rate against the
reference (wins = winrate x games, pooled over seeds). Within the noise the loop re-runs the
child with other seeds (up to `max_reruns`) and pools them; then the verdict is `inconclusive`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from go_core.arena.stats import Z95


@dataclass
class Estimate:
    value: float          # pooled Elo (or win rate)
    se: float             # its standard error
    n_runs: int           # seeds pooled


@dataclass
class Verdict:
    verdict: str | None   # better | worse | inconclusive | None (cannot compare)
    test: str             # what was computed, for the tree
    within_noise: bool    # True: a re-run may settle it
    diff: float | None = None
    z: float | None = None


def pool_elo(metrics: list[dict[str, Any]]) -> Estimate | None:
    """Inverse-variance pooled Elo of runs that report `elo` and `elo_ci95`."""
    pts = []
    for m in metrics:
        elo, ci = m.get("elo"), m.get("elo_ci95")
        if elo is None or not ci or len(ci) != 2 or ci[0] is None or ci[1] is None:
            continue
        se = (float(ci[1]) - float(ci[0])) / (2 * Z95)
        if not math.isfinite(se) or se <= 0:
            se = 1e-6   # a degenerate interval (e.g. an anchor): trust the point
        pts.append((float(elo), se))
    if not pts:
        return None
    w = [1 / se ** 2 for _, se in pts]
    value = sum(wi * e for wi, (e, _) in zip(w, pts)) / sum(w)
    return Estimate(value, math.sqrt(1 / sum(w)), len(pts))


def pool_winrate(metrics: list[dict[str, Any]]) -> tuple[float, float, int] | None:
    """(wins, games, runs) pooled over runs that report winrate_vs_ref and games_vs_ref."""
    wins = games = 0.0
    n = 0
    for m in metrics:
        wr, g = m.get("winrate_vs_ref"), m.get("games_vs_ref")
        if wr is None or not g:
            continue
        wins += float(wr) * float(g)
        games += float(g)
        n += 1
    return (wins, games, n) if n else None


def compare(child: list[dict[str, Any]], parent: list[dict[str, Any]], z_crit: float = Z95) -> Verdict:
    """Compare the metrics of a child's runs (seeds) with its parent's runs."""
    c, p = pool_elo(child), pool_elo(parent)
    if c and p:
        se = math.hypot(c.se, p.se)
        diff = c.value - p.value
        z = diff / se if se > 0 else math.copysign(math.inf, diff) if diff else 0.0
        test = (f"Elo z-test: diff {diff:+.0f} (child {c.value:.0f}, {c.n_runs} run(s); parent "
                f"{p.value:.0f}, {p.n_runs} run(s)), se {se:.0f} from the 95% intervals, "
                f"z={z:+.2f}, |z|>{z_crit:.2f} needed")
        return _decide(diff, z, z_crit, test)
    cw, pw = pool_winrate(child), pool_winrate(parent)
    if cw and pw:
        (x1, n1, r1), (x2, n2, r2) = cw, pw
        p1, p2, pp = x1 / n1, x2 / n2, (x1 + x2) / (n1 + n2)
        se = math.sqrt(pp * (1 - pp) * (1 / n1 + 1 / n2))
        diff = p1 - p2
        z = diff / se if se > 0 else 0.0   # both 0% or both 100%: no evidence either way
        test = (f"two-proportion z-test on win rate vs reference: {p1:.1%} of {n1:.0f} games "
                f"({r1} run(s)) vs parent {p2:.1%} of {n2:.0f} ({r2}), z={z:+.2f}, "
                f"|z|>{z_crit:.2f} needed")
        return _decide(diff, z, z_crit, test)
    return Verdict(None, "not compared: neither Elo with an interval nor win rate with a game "
                   "count in both summaries", within_noise=False)


def _decide(diff: float, z: float, z_crit: float, test: str) -> Verdict:
    if z > z_crit:
        return Verdict("better", test, False, diff, z)
    if z < -z_crit:
        return Verdict("worse", test, False, diff, z)
    return Verdict("inconclusive", test, True, diff, z)
