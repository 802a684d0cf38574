"""Child vs parent from paired seeds and head-to-head game pairs: the verdict, its interval, what next.

The data. Child seed k is trained with the same seed as parent seed k (common random numbers: same
start, same first games), and the two checkpoints play colour-swapped game pairs. Seed pair k
gives an Elo difference d_k with a game standard error s_k (go_core/arena/sprt.py, pentanomial).

The model. d_k = theta + e_k + g_k: theta is the effect of the change, e_k the training noise left
after pairing (sd sigma_paired: what two runs that differ only by the change do differently by
chance), g_k the game noise (sd s_k). The estimate is the plain mean over seed pairs,
    D = mean(d_k),   SE^2 = sigma_paired^2 / k + mean(s_k^2) / k,
which is exactly Var(D) under the model (inverse-variance weights would gain little: the s_k of a
verdict are alike, and the mean is robust to a mis-stated s_k). sigma_paired is treated as known:
it is pooled over the tree's seed pairs with a prior (`estimate_sigma_paired`), so a verdict does not
rest on the 1-3 seed pairs it has.

Why the prior is sqrt(2) x sigma_train and not sigma_train / sqrt(2): sigma_train (~120 Elo,
issue 12) is the spread of one seed's strength; a difference of two independent seeds spreads
sqrt(2) times that (~170). Pairing can only shrink it by the correlation rho it creates,
sigma_paired = sqrt(2 (1 - rho)) sigma_train, and rho is unknown until the tree measures it, so the
prior assumes none. The tree's pooled seed pairs take over as they accumulate.

The test: the three-outcome design of sprt.py (two one-sided SPRTs, +delta and -delta against 0,
and a final z-test at the caps; alpha split four ways) on the normal log-likelihood ratio of D given SE,
    LLR(0 -> +delta) = (delta / SE^2) (D - delta / 2),   LLR(0 -> -delta) = (delta / SE^2) (-D - delta / 2).
With one seed pair and sigma_paired = 0 this is the normal form of the games' GSPRT; with more seed
pairs the information 1/SE^2 grows by jumps, and the estimate at successive looks still has
independent increments (nested data, known variances), so Wald's bounds still hold. Checked by
simulation in tests/test_verdict.py.

What next when the test has not stopped: the current seed pair's games are *settled* when its own
games-only GSPRT (sprt.sequential_test) has stopped, its pair cap is reached, or its game variance
s_k^2 is already at most `settle_ratio` x sigma_paired^2 (more games would not shrink SE). Unsettled:
'more games'. Settled and below the seed cap: 'add a seed pair'. Settled at the seed cap: the
verdict is `inconclusive`, and its interval says which differences it rules out.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

from autoresearch.agent_config import VerdictConfig
from go_core.arena.sprt import (EloEstimate, decide_sprt, estimate, final_z, mde_elo,
                                sequential_test, sprt_bounds)
from go_core.arena.stats import Z95

MORE_GAMES = "more games"
ADD_SEED_PAIR = "add a seed pair"

# Issue 12's measurement of sigma_train: 4 seeds of budget=tiny at fixed work, rated by a 600-game
# raw-policy round robin: +107, +107, -61, -152 Elo (sd ~129 with the games' own noise, ~120 without).
SIGMA_TRAIN_ISSUE12_ELO = 120.0
SIGMA_TRAIN_ISSUE12_DF = 3.0


@dataclass(frozen=True)
class SigmaEstimate:
    """A training-noise standard deviation in Elo, with how much data stands behind it."""
    elo: float          # the standard deviation used
    df: float           # degrees of freedom from the tree (0: the prior alone)
    source: str         # where it came from, for the verdict record
    game_var: float = 0.0  # mean game-noise variance (Elo^2) inside the residuals it was pooled from

    def ci95(self) -> tuple[float, float]:
        """Approximate 95% interval of the sd from its df (prior left out): the residual variance
        sigma^2 + game_var is chi-square distributed (Wilson-Hilferty quantiles), and the game
        part is taken off both ends. No df: (0, inf)."""
        if self.df <= 0:
            return 0.0, math.inf
        lo, hi = _sd_interval(math.sqrt(self.elo ** 2 + self.game_var), self.df)
        return math.sqrt(max(lo * lo - self.game_var, 0.0)), math.sqrt(max(hi * hi - self.game_var, 0.0))


@dataclass
class VerdictRecord:
    """One child-vs-parent decision, stored as JSON on the node (`to_json`)."""
    verdict: str | None           # better | worse | inconclusive | None (not decided: see `next`)
    next: str | None              # 'more games' | 'add a seed pair' | None once decided
    diff_elo: float | None        # child - parent, mean over seed pairs (None before any game)
    ci95: tuple[float, float] | None  # 95% interval of diff_elo (normal, SE below)
    se_elo: float | None          # standard error of diff_elo: training and game noise together
    games_per_side: int           # games played by each side (every game involves both)
    seed_pairs: int               # seed pairs with games (= seeds per side)
    sigma_paired_elo: float       # training noise of a paired difference used in SE
    sigma_source: str             # how sigma_paired was obtained (prior / pooled over the tree)
    test: str                     # the test, its parameters and its stopping point, in words
    llr_better: float | None      # LLR of +delta against 0 (stops at `bounds[1]`)
    llr_worse: float | None       # LLR of -delta against 0
    bounds: tuple[float, float]   # (accept 0, accept +-delta) LLR bounds of each one-sided SPRT
    mde_elo: float | None         # minimum detectable difference (80% power, two-sided 5%) at this sample
    per_seed_pair: list[dict] = field(default_factory=list)  # d_k, s_k, pairs, counts, games-only test

    def to_json(self) -> dict:
        d = asdict(self)
        d["ci95"] = list(self.ci95) if self.ci95 else None
        d["bounds"] = list(self.bounds)
        return d


def decide(seed_pairs: Sequence[Sequence[float]], cfg: VerdictConfig | None = None,
           sigma: SigmaEstimate | float | None = None) -> VerdictRecord:
    """Decide a child against its parent from each seed pair's pentanomial counts (seed order).

    seed_pairs[k] holds 5 counts: game pairs the child scored 0, 0.5, 1, 1.5, 2 points in, child
    seed k against parent seed k. The last entry is the seed pair being played; an entry with no
    pairs yet is allowed (just added). `sigma`: sigma_paired from `estimate_sigma_paired` (or a
    number); None uses the configured prior alone.
    """
    cfg = cfg or VerdictConfig()
    sig = _as_sigma(sigma, cfg)
    lower, upper = sprt_bounds(cfg.alpha, cfg.beta)
    counts = [list(c) for c in seed_pairs]
    played = [c for c in counts if sum(c) > 0]
    per_seed, ests = [], []
    for c in played:
        e = estimate(c)
        g = sequential_test(c, cfg.delta_elo, cfg.pairs_per_seed_pair, cfg.alpha, cfg.beta)
        ests.append(e)
        per_seed.append({"diff_elo": e.elo, "se_elo": e.se, "ci95": list(e.ci95), "pairs": e.pairs,
                         "counts": c, "games_test": g.outcome, "games_test_reason": g.reason})
    games = 2 * sum(int(sum(c)) for c in counts)
    if not ests:
        return VerdictRecord(None, MORE_GAMES, None, None, None, games, 0, sig.elo, sig.source,
                             "no game pairs yet", None, None, (lower, upper), None, per_seed)

    nxt = _next_step(counts, ests, per_seed, sig.elo, cfg)
    k = len(ests)
    diff = sum(e.elo for e in ests) / k
    se = math.sqrt(sig.elo ** 2 / k + sum(e.se ** 2 for e in ests) / k / k)
    up = cfg.delta_elo / se ** 2 * (diff - cfg.delta_elo / 2)
    down = cfg.delta_elo / se ** 2 * (-diff - cfg.delta_elo / 2)
    outcome, reason = decide_sprt(up, down, lower, upper, nxt is None, diff / se, final_z(cfg.alpha))
    ci = (diff - Z95 * se, diff + Z95 * se)
    pairs = sum(e.pairs for e in ests)
    test = (f"paired-seed SPRT, +-{cfg.delta_elo:g} Elo vs 0 (alpha {cfg.alpha:g} split over both sides "
            f"and the final look at the caps, "
            f"beta {cfg.beta:g}) on D = mean of {k} seed pair(s) d_k, SE^2 = sigma_paired^2/k + "
            f"mean(s_k^2)/k with sigma_paired {sig.elo:.0f} Elo ({sig.source}); after {pairs} game pairs "
            f"({2 * pairs} games) and {k} seed pair(s) [caps {cfg.pairs_per_seed_pair} pairs x "
            f"{cfg.max_seed_pairs} seed pairs]: D {diff:+.0f} Elo, 95% [{ci[0]:+.0f}, {ci[1]:+.0f}]; "
            + (f"stopped: {reason}" if outcome else f"continues ({nxt}): {reason}"))
    if outcome == "inconclusive":
        test += f"; rules out differences outside [{ci[0]:+.0f}, {ci[1]:+.0f}] Elo"
        if ci[0] > 0 or ci[1] < 0:   # seen in a README run: "inconclusive, +618 [+15, +1221]"
            zf = final_z(cfg.alpha)
            test += (f"; the 95% interval excludes 0, but |z| = {abs(diff) / se:.2f} is below the "
                     f"{zf:.2f} the test needs at its last look (its alpha {cfg.alpha:g} is split "
                     f"over both sides and its looks, so that a child equal to its parent is called "
                     f"better or worse at most {100 * cfg.alpha:g}% of the time): not a verdict; "
                     f"{diff - zf * se:+.0f} to {diff + zf * se:+.0f} Elo at the test's level")
    return VerdictRecord(outcome, None if outcome else nxt, diff, ci, se, games, k, sig.elo,
                         sig.source, test, up, down, (lower, upper),
                         mde_elo(se, cfg.alpha, 0.8), per_seed)


def _next_step(counts: list[list[float]], ests: list[EloEstimate], per_seed: list[dict],
               sigma_paired: float, cfg: VerdictConfig) -> str | None:
    """'more games' while the current seed pair's games are unsettled; then 'add a seed pair'
    below the seed cap; None when both caps leave nothing to do."""
    if sum(counts[-1]) == 0:
        return MORE_GAMES                                  # a seed pair just added, no games yet
    last, last_test = ests[-1], per_seed[-1]["games_test"]
    settled = (last_test is not None or last.pairs >= cfg.pairs_per_seed_pair
               or last.se ** 2 <= cfg.settle_ratio * sigma_paired ** 2)
    if not settled:
        return MORE_GAMES
    if len(counts) < cfg.max_seed_pairs:
        return ADD_SEED_PAIR
    return None


def _as_sigma(sigma: SigmaEstimate | float | None, cfg: VerdictConfig) -> SigmaEstimate:
    if isinstance(sigma, SigmaEstimate):
        return sigma
    if sigma is None:
        return SigmaEstimate(cfg.sigma_paired_prior_elo, 0.0, "prior (no seed pairs pooled yet)")
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma_paired must be a finite sd >= 0 in Elo, got {sigma!r}")
    return SigmaEstimate(float(sigma), 0.0, "given")


def _pool(groups: Iterable[Sequence[tuple[float, float]]], centre_known: bool) -> tuple[float, float, int, float]:
    """Moment estimate of a between-run variance from groups of (value, game se): the residual sum
    of squares less its expected game part, its degrees of freedom, the number of groups and that
    game part per degree of freedom.

    For one group of k values with sd sigma plus game noise s_i around a common mean,
    E[sum (x_i - mean)^2] = (k - 1) sigma^2 + (k - 1)/k sum s_i^2. With a known centre of 0 (a
    no-op change) the mean is not fitted: E[sum x_i^2] = k sigma^2 + sum s_i^2.
    """
    num = df = game = 0.0
    n = 0
    for g in groups:
        g = [(float(x), float(s)) for x, s in g]
        k = len(g)
        if k < (1 if centre_known else 2):
            continue
        if centre_known:
            g_part = sum(s * s for _, s in g)
            num += sum(x * x for x, _ in g) - g_part
            df += k
        else:
            m = sum(x for x, _ in g) / k
            g_part = (k - 1) / k * sum(s * s for _, s in g)
            num += sum((x - m) ** 2 for x, _ in g) - g_part
            df += k - 1
        game += g_part
        n += 1
    return num, df, n, game / df if df else 0.0


def estimate_sigma_paired(comparisons: Iterable[Sequence[tuple[float, float]]],
                          prior_elo: float, prior_df: float,
                          null_comparisons: Iterable[Sequence[tuple[float, float]]] = ()) -> SigmaEstimate:
    """sigma_paired pooled over the tree, shrunk towards the prior.

    comparisons: for each child node with 2+ seed pairs, its (d_k, s_k) list — the spread of d_k
    around that node's own mean is training noise plus game noise. null_comparisons: seed pairs of
    a change known to do nothing (a same-config re-run), whose d_k spread around 0. The pooled
    variance is (prior_df x prior^2 + residual SS less its game part) / (prior_df + df).
    """
    num, df, n, gv = _pool(comparisons, centre_known=False)
    num0, df0, n0, gv0 = _pool(null_comparisons, centre_known=True)
    num, df, n, gv = num + num0, df + df0, n + n0, (gv * df + gv0 * df0) / (df + df0) if df + df0 else 0.0
    if df == 0:
        return SigmaEstimate(prior_elo, 0.0, f"prior {prior_elo:g} Elo (no seed pairs pooled yet)")
    var = max((prior_df * prior_elo ** 2 + num) / (prior_df + df), 0.0)
    return SigmaEstimate(math.sqrt(var), df,
                         f"pooled over {n} comparison(s), {df:g} df, with a prior of {prior_elo:g} Elo "
                         f"weighted {prior_df:g} df", gv)


def estimate_sigma_train(configs: Iterable[Sequence[tuple[float, float]]],
                         prior_elo: float = SIGMA_TRAIN_ISSUE12_ELO,
                         prior_df: float = SIGMA_TRAIN_ISSUE12_DF) -> SigmaEstimate:
    """sigma_train (independent seeds of one configuration) pooled over the tree, with the issue-12
    measurement as the prior: configs holds, per configuration, each seed's (Elo, Elo se)."""
    num, df, n, gv = _pool(configs, centre_known=False)
    if df == 0:
        return SigmaEstimate(prior_elo, 0.0, f"prior {prior_elo:g} Elo (issue 12: 4 seeds, budget=tiny)")
    var = max((prior_df * prior_elo ** 2 + num) / (prior_df + df), 0.0)
    return SigmaEstimate(math.sqrt(var), df, f"pooled over {n} configuration(s), {df:g} df, with a prior "
                                             f"of {prior_elo:g} Elo weighted {prior_df:g} df", gv)


def _sd_interval(sd: float, df: float) -> tuple[float, float]:
    """95% interval of a standard deviation estimated with df degrees of freedom (chi-square
    quantiles by the Wilson-Hilferty approximation)."""
    def chi2_q(p: float) -> float:
        z = {0.025: -Z95, 0.975: Z95}[p]
        a = 2.0 / (9.0 * df)
        return max(df * (1 - a + z * math.sqrt(a)) ** 3, 1e-12)
    return sd * math.sqrt(df / chi2_q(0.975)), sd * math.sqrt(df / chi2_q(0.025))
