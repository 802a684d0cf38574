"""Head-to-head statistics on colour-swapped game pairs: pentanomial counts, Elo with its interval,
the GSPRT log-likelihood ratio, a three-outcome sequential test and the minimum detectable difference.

Why pairs. Each opening is played twice with colours swapped, so a *pair* scores 0, 0.5, 1, 1.5 or 2
for the child. The two games of a pair share an opening and a colour balance, so they are not
independent; counting the five pair outcomes (the *pentanomial*: LL, LD+DL, LW+DD+WL, DW+WD, WW)
and treating pairs as the independent units gets the variance right, which counting games
(trinomial W/D/L) does not. This is how chess engine testing (fishtest, Stockfish) does it.

Scores here are per game, in [0, 1]: a pair's score is its points / 2, so the five outcomes have
values 0, 1/4, 1/2, 3/4, 1. Elo and expected score are linked by the logistic curve
`s = 1 / (1 + 10^(-elo/400))` (the Bradley-Terry model of go_core/arena/elo.py).

The GSPRT (generalised SPRT, M. Van den Bergh's formulation used by fishtest): the two hypotheses
`elo = elo0` and `elo = elo1` do not fix a pentanomial distribution, only its mean score s0 or s1.
For each, take the maximum-likelihood pentanomial distribution whose mean is s0 (resp. s1) given
the observed counts, and the LLR is the log of the ratio of their likelihoods. That constrained MLE
has a closed form up to one scalar: p_i = q_i / (1 + x (a_i - s)), with x the root of
sum_i q_i (a_i - s) / (1 + x (a_i - s)) = 0 (q the observed frequencies, a the outcome values) —
a monotone equation solved here by safeguarded Newton steps. Written from the published description, not copied.

The sequential test (`sequential_test`) has three outcomes and is two one-sided SPRTs run together
(Sobel & Wald's design for three hypotheses):
  up:   H0 elo = 0  vs  H1 elo = +delta   ->  accepting H1 says `better`
  down: H0 elo = 0  vs  H1 elo = -delta   ->  accepting H1 says `worse`
each with power 1 - beta at its delta and Wald's bounds
  upper = ln((1 - beta) / (alpha/4)),  lower = ln(beta / (1 - alpha/4)),
and, at the cap, a final look: |z| = |Elo| / se >= z_{1 - alpha/4} (2.24 at alpha 5%) decides.
Why this design: the error that matters is calling a no-op change `better` or `worse`. alpha is
split four ways (two sides x crossing or final look), so by the union bound the share of either
verdict stays under alpha when the players are equal, each direction keeping its own power. A
truncated SPRT without the final look wastes its last, largest sample: with the caps binding
(training noise, few seed pairs) it found only half the +100 Elo changes that a fixed test at the
cap finds; the final look recovers most of that for a slightly tighter crossing bound. When both
SPRTs accept H0 the test stops early as `inconclusive`: it has ruled out a difference of delta
either way. Otherwise, not decided at the cap is `inconclusive`.
The decision reads only the current counts (no memory of earlier crossings): the caller stops at
the first outcome, which is where a path first crosses. The error rates are checked by simulation
in tests/test_sprt.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Iterable, Sequence

from go_core.arena.elo import ELO_SCALE
from go_core.arena.stats import Z95

PAIR_VALUES = (0.0, 0.25, 0.5, 0.75, 1.0)  # per-game score of each pentanomial outcome
NULL_PAIR_VARIANCE = 0.125               # variance of a pair's score between equal players, games independent


def z_quantile(p: float) -> float:
    """Standard normal quantile (so that callers need no scipy)."""
    return NormalDist().inv_cdf(p)


def elo_to_score(elo: float) -> float:
    """Expected per-game score of a player `elo` points stronger (logistic curve)."""
    return 1.0 / (1.0 + math.exp(-elo / ELO_SCALE))


def score_to_elo(score: float) -> float:
    """Elo difference that gives expected score `score` in (0, 1)."""
    if not 0.0 < score < 1.0:
        raise ValueError(f"an expected score must lie strictly between 0 and 1 to have an Elo, got {score}")
    return ELO_SCALE * math.log(score / (1.0 - score))


def elo_slope(score: float) -> float:
    """d Elo / d score at `score`: turns a score's standard error into Elo."""
    return ELO_SCALE / (score * (1.0 - score))


def pentanomial(pair_scores: Iterable[float]) -> tuple[int, int, int, int, int]:
    """Counts of pairs scoring 0, 0.5, 1, 1.5, 2 points (the child's points over the two games)."""
    counts = [0] * 5
    for s in pair_scores:
        k = s * 2
        if k not in (0, 1, 2, 3, 4):
            raise ValueError(f"a game pair scores 0, 0.5, 1, 1.5 or 2 points, got {s!r}")
        counts[int(k)] += 1
    return tuple(counts)  # type: ignore[return-value]


def _check_counts(counts: Sequence[float]) -> int:
    if len(counts) != 5 or any(c < 0 for c in counts):
        raise ValueError(f"pentanomial counts are 5 non-negative numbers (pairs scoring 0, 0.5, 1, "
                         f"1.5, 2), got {list(counts)!r}")
    return int(round(sum(counts)))


def pair_mean_var(counts: Sequence[float]) -> tuple[float, float]:
    """Mean per-game score and the variance of one pair's score (per-game units) from the counts."""
    n = sum(counts)
    if n <= 0:
        raise ValueError("no game pairs: nothing to estimate")
    mean = sum(c * a for c, a in zip(counts, PAIR_VALUES)) / n
    var = sum(c * (a - mean) ** 2 for c, a in zip(counts, PAIR_VALUES)) / n
    return mean, var


def _regularised(counts: Sequence[float]) -> list[float]:
    """Counts with empty cells given 1e-3 of a pair (as fishtest does), so that every mean strictly
    inside (0, 1) has a constrained MLE and a score of exactly 0 or 1 keeps a finite Elo."""
    return [c if c > 0 else 1e-3 for c in counts]


def constrained_mle(freqs: Sequence[float], s: float) -> list[float]:
    """Maximum-likelihood pentanomial probabilities with mean score `s`, given observed frequencies.

    p_i = q_i / (1 + x (a_i - s)); x solves sum q_i (a_i - s) / (1 + x (a_i - s)) = 0 on the interval
    where every 1 + x (a_i - s) > 0 (only cells with q_i > 0 count). The left side decreases in x,
    so a bracketed Newton iteration finds the root.
    """
    tot = sum(freqs)
    q = [f / tot for f in freqs]
    cells = [(qi, a - s) for qi, a in zip(q, PAIR_VALUES) if qi > 0]
    lo_val, hi_val = min(d for _, d in cells), max(d for _, d in cells)
    if not lo_val < 0 < hi_val:
        raise ValueError(f"mean score {s} lies outside the observed outcomes: no distribution on them has it")
    lo, hi = -1.0 / hi_val, -1.0 / lo_val     # 1 + x d > 0 for all d in between
    # Safeguarded Newton: f is decreasing (f' = -sum q d^2 / (1 + x d)^2), so keep a bracket
    # [lo, hi] around the root and fall back to bisection whenever a Newton step leaves it.
    x = 0.0
    for _ in range(100):
        f = df = 0.0
        for qi, d in cells:
            t = d / (1 + x * d)
            f += qi * t
            df -= qi * t * t
        if f > 0:
            lo = x
        else:
            hi = x
        step = x - f / df
        x_new = step if lo < step < hi else 0.5 * (lo + hi)
        if abs(x_new - x) < 1e-14 * max(1.0, abs(x)):
            x = x_new
            break
        x = x_new
    return [qi / (1 + x * (a - s)) for qi, a in zip(q, PAIR_VALUES)]


def llr(counts: Sequence[float], elo0: float, elo1: float) -> float:
    """GSPRT log-likelihood ratio of `elo1` against `elo0` from pentanomial counts (positive favours elo1)."""
    n = _check_counts(counts)
    if n == 0:
        return 0.0
    c = _regularised(counts)
    p0 = constrained_mle(c, elo_to_score(elo0))
    p1 = constrained_mle(c, elo_to_score(elo1))
    return sum(ci * math.log(a / b) for ci, a, b in zip(c, p1, p0) if ci > 0)


def llr_normal(counts: Sequence[float], elo0: float, elo1: float) -> float:
    """The normal approximation of the same LLR: N (s1 - s0)(2 mean - s0 - s1) / (2 var).

    Agrees with `llr` for small differences; kept as a cross-check and for quick estimates.
    """
    n = _check_counts(counts)
    if n == 0:
        return 0.0
    mean, var = pair_mean_var(_regularised(counts))
    s0, s1 = elo_to_score(elo0), elo_to_score(elo1)
    return n * (s1 - s0) * (2 * mean - s0 - s1) / (2 * var)


@dataclass(frozen=True)
class EloEstimate:
    """Elo difference (child - parent) from game pairs, with its 95% interval."""
    elo: float                    # point estimate
    ci95: tuple[float, float]     # the score's normal interval mapped through the Elo curve
    se: float                     # standard error in Elo (delta method at the point estimate)
    pairs: int                    # game pairs (games = 2 x pairs)
    score: float                  # mean per-game score of the child
    pair_var: float               # variance of one pair's score (per-game units)

    def to_dict(self) -> dict:
        return {"elo": self.elo, "ci95": list(self.ci95), "se": self.se, "pairs": self.pairs,
                "score": self.score, "pair_var": self.pair_var}


def estimate(counts: Sequence[float]) -> EloEstimate:
    """Elo difference with a 95% interval from the pentanomial variance (pairs are the units).

    A degenerate sample (every pair the same outcome, e.g. all 2-0) has no variance to speak of; it
    gets half a pseudo-pair at each extreme (0 and 2 points), so the Elo stays finite and the
    interval wide (3 drawn pairs: about +-180 Elo) rather than zero.
    """
    n = _check_counts(counts)
    if n == 0:
        raise ValueError("no game pairs: play some before estimating an Elo difference")
    mean, var = pair_mean_var(counts)
    if var == 0.0:
        c = list(counts)
        c[0] += 0.5
        c[4] += 0.5
        mean, var = pair_mean_var(c)
    se_score = math.sqrt(var / n)
    lo = min(max(mean - Z95 * se_score, 1e-9), 1 - 1e-9)
    hi = min(max(mean + Z95 * se_score, 1e-9), 1 - 1e-9)
    return EloEstimate(elo=score_to_elo(mean), ci95=(score_to_elo(lo), score_to_elo(hi)),
                       se=elo_slope(mean) * se_score, pairs=n, score=mean, pair_var=var)


def sprt_bounds(alpha: float, beta: float) -> tuple[float, float]:
    """Wald's (lower, upper) LLR bounds for each one-sided SPRT of the three-outcome test.

    alpha is split four ways: two sides, and on each side the SPRT's crossing (alpha/4) and the
    z-test at the cap (alpha/4, `final_z`); by the union bound a child equal to its parent gets
    `better` or `worse` with probability at most alpha. Power 1 - beta at +-delta.
    """
    if not (0 < alpha < 1 and 0 < beta < 1):
        raise ValueError(f"alpha and beta are error rates in (0, 1), got alpha={alpha}, beta={beta}")
    a = alpha / 4
    return math.log(beta / (1 - a)), math.log((1 - beta) / a)


def final_z(alpha: float) -> float:
    """Critical |z| of the fixed test at the cap: one-sided alpha/4 on each side (see sprt_bounds)."""
    return z_quantile(1 - alpha / 4)


@dataclass(frozen=True)
class SequentialResult:
    """Where the three-outcome sequential test stands after `pairs` game pairs."""
    outcome: str | None           # better | worse | inconclusive | None (not stopped: play more)
    reason: str                   # why it stopped, or what it waits for
    llr_better: float             # LLR of +delta against 0
    llr_worse: float              # LLR of -delta against 0
    lower: float                  # accept-0 bound of each SPRT
    upper: float                  # accept-delta bound of each SPRT
    pairs: int                    # pairs seen
    max_pairs: int                # the cap

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def decide_sprt(llr_better: float, llr_worse: float, lower: float, upper: float,
                at_cap: bool, z: float = 0.0, z_final: float = math.inf) -> tuple[str | None, str]:
    """The three-outcome rule on two LLRs (shared by the game test here and the seed-pair test in
    autoresearch/verdict.py). At the cap, where the SPRTs have not stopped, the estimate's
    z = diff / se decides if |z| >= z_final (the final look of a truncated SPRT)."""
    if llr_better >= upper:
        return "better", f"LLR(+delta) {llr_better:.2f} reached {upper:.2f}"
    if llr_worse >= upper:
        return "worse", f"LLR(-delta) {llr_worse:.2f} reached {upper:.2f}"
    if llr_better <= lower and llr_worse <= lower:
        return "inconclusive", (f"both LLRs ({llr_better:.2f}, {llr_worse:.2f}) reached {lower:.2f}: "
                                f"a difference of delta either way is ruled out")
    if at_cap:
        if z >= z_final:
            return "better", f"cap reached; final look z {z:+.2f} >= {z_final:.2f}"
        if z <= -z_final:
            return "worse", f"cap reached; final look z {z:+.2f} <= -{z_final:.2f}"
        return "inconclusive", f"cap reached; neither SPRT stopped and final look |z| {abs(z):.2f} < {z_final:.2f}"
    return None, f"LLRs {llr_better:.2f} / {llr_worse:.2f} within ({lower:.2f}, {upper:.2f})"


def sequential_test(counts: Sequence[float], delta_elo: float, max_pairs: int,
                    alpha: float = 0.05, beta: float = 0.2) -> SequentialResult:
    """Three-outcome GSPRT on pentanomial counts (design in the module docstring)."""
    if delta_elo <= 0:
        raise ValueError(f"delta_elo is the difference each SPRT is powered for; it must be > 0, got {delta_elo}")
    n = _check_counts(counts)
    lower, upper = sprt_bounds(alpha, beta)
    up = llr(counts, 0.0, delta_elo)
    down = llr(counts, 0.0, -delta_elo)
    z = 0.0
    if n >= max_pairs:
        e = estimate(counts)
        z = e.elo / e.se
    outcome, reason = decide_sprt(up, down, lower, upper, n >= max_pairs, z, final_z(alpha))
    return SequentialResult(outcome, reason, up, down, lower, upper, n, max_pairs)


def mde_elo(se_elo: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable difference of a two-sided level-alpha z-test with this standard error:
    the true difference it detects with probability `power` (fixed-sample formula)."""
    return (z_quantile(1 - alpha / 2) + z_quantile(power)) * se_elo


def game_se_elo(pairs: int, pair_var: float = NULL_PAIR_VARIANCE) -> float:
    """Standard error in Elo of the difference measured from `pairs` game pairs between near-equal
    players (pair_var: variance of one pair's per-game score; 0.125 when the two games are
    independent coin flips, less when openings and colour swaps make the pair's games agree)."""
    if pairs <= 0:
        return math.inf
    return elo_slope(0.5) * math.sqrt(pair_var / pairs)
