"""Training-noise statistics of benchmarks/seed_noise.py: sigma_paired from paired differences,
sigma_train from rings of independent seeds (with Satterthwaite's degrees of freedom), exact
chi-square intervals, and the verdict's minimum detectable difference at its caps.
"""
from __future__ import annotations

import math
from typing import Sequence

from autoresearch.agent_config import VerdictConfig
from autoresearch.verdict import estimate_sigma_paired
from go_core.arena.sprt import game_se_elo, mde_elo

def sigma_paired_from(d: Sequence[float], s: Sequence[float]) -> dict:
    """sigma_paired from paired differences d_k with game standard errors s_k.

    Moment estimate: var(d) (ddof=1) minus the mean game variance mean(s_k^2), floored at 0; df = K-1.
    Cross-checked against autoresearch/verdict.estimate_sigma_paired with prior_df=0 (the same
    formula as the tree pools it), and given a 95% interval from chi-square quantiles on var(d)
    with the game part taken off both ends (SigmaEstimate.ci95).
    """
    k = len(d)
    if k < 2 or len(s) != k:
        raise ValueError(f"need 2+ paired differences with one se each, got {k} and {len(s)}")
    mean = sum(d) / k
    var_d = sum((x - mean) ** 2 for x in d) / (k - 1)
    game_var = sum(x * x for x in s) / k
    plain = math.sqrt(max(var_d - game_var, 0.0))
    pooled = estimate_sigma_paired([list(zip(d, s))], prior_elo=0.0, prior_df=0.0)
    lo, hi = _ci(plain, k - 1, game_var)
    return {"elo": plain, "df": k - 1, "ci95": [lo, hi], "mean_d_elo": mean, "sd_d_elo": math.sqrt(var_d),
            "mean_game_var": game_var, "verdict_estimate_sigma_paired_prior_df0": pooled.elo,
            "verdict_sigma_ci95": list(pooled.ci95())}


def _ring_eigenvalues(k: int) -> list[float]:
    if k == 1:      # K=2 seeds: the single edge s0 - s1 (a 2-ring would play it twice)
        return [2.0]
    return [2 - 2 * math.cos(2 * math.pi * m / k) for m in range(k)]


def ring_df(*ks: int) -> float:
    """Satterthwaite degrees of freedom of the sum of squared differences over rings of these sizes
    (see the module docstring): (sum lambda)^2 / sum lambda^2 over all their eigenvalues."""
    lam = [x for k in ks for x in _ring_eigenvalues(k)]
    return sum(lam) ** 2 / sum(x * x for x in lam)


def sigma_train_from_rings(rings: Sequence[tuple[Sequence[float], Sequence[float]]]) -> dict:
    """sigma_train from rings of same-config differences e_j = seed j - seed j+1 (mod K), each ring
    given as (e, s) with s the game standard errors: over all N edges,
    sigma_train^2 = (sum e_j^2 - sum s_j^2) / (2 N), floored at 0, with `ring_df` degrees of freedom.
    Rings of different configs may be pooled (same training noise assumed; report each too).
    With K=2 seeds a "ring" is the single edge s0 - s1 (1 df): pass it as a 1-element ring."""
    if not rings:
        raise ValueError("need at least one ring of differences")
    for e, s in rings:
        if len(e) not in (1,) and len(e) < 3 or len(s) != len(e):
            raise ValueError(f"need rings of 3+ differences (or one edge) with one se each, got {len(e)} and {len(s)}")
    e_all = [x for e, _ in rings for x in e]
    s_all = [x for _, s in rings for x in s]
    n = len(e_all)
    ms = sum(x * x for x in e_all) / n
    game_var = sum(x * x for x in s_all) / n
    sigma = math.sqrt(max(ms - game_var, 0.0) / 2)
    df = ring_df(*[len(e) for e, _ in rings])
    # mean e^2 / 2 = sigma^2 + game_var / 2 is ~ chi-square(df) scaled: interval on that, game part off
    lo, hi = _ci(sigma, df, game_var / 2)
    return {"elo": sigma, "df": df, "ci95": [lo, hi], "mean_sq_diff": ms, "mean_game_var": game_var,
            "edges": n, "sd_independent_diff_elo": math.sqrt(2) * sigma}


def sigma_train_from_ring(e: Sequence[float], s: Sequence[float]) -> dict:
    """One ring: see `sigma_train_from_rings`."""
    return sigma_train_from_rings([(e, s)])


def ring_ratings(e: Sequence[float]) -> list[float]:
    """Least-squares strengths r (sum 0) of K seeds from ring differences e_j ~ r_j - r_{j+1}."""
    import numpy as np
    k = len(e)
    a = np.zeros((k + 1, k))
    for j in range(k):
        a[j, j], a[j, (j + 1) % k] = 1.0, -1.0
    a[k, :] = 1.0
    r, *_ = np.linalg.lstsq(a, np.array(list(e) + [0.0]), rcond=None)
    return [float(x) for x in r]


def chi2_quantile(p: float, df: float) -> float:
    """Chi-square quantile for any df > 0 (bisection on torch's regularised incomplete gamma; the
    Wilson-Hilferty approximation verdict.py uses is far off at the 1-3 df a few seeds give)."""
    import torch
    cdf = lambda x: float(torch.special.gammainc(torch.tensor(df / 2, dtype=torch.float64),
                                                  torch.tensor(x / 2, dtype=torch.float64)))
    lo, hi = 0.0, max(10.0, 10 * df)
    while cdf(hi) < p:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def _ci(sd: float, df: float, game_var: float) -> tuple[float, float]:
    """95% interval of a between-run sd: the observed variance sd^2 + game_var is a scaled
    chi-square(df); the interval on it, with the game part taken off both ends (floored at 0)."""
    total = sd * sd + game_var
    lo = total * df / chi2_quantile(0.975, df)
    hi = total * df / chi2_quantile(0.025, df)
    return math.sqrt(max(lo - game_var, 0.0)), math.sqrt(max(hi - game_var, 0.0))


def mde_table(sigma_paired: float, pair_var: float, cfg: VerdictConfig, train_min: float,
              games_per_min: float) -> list[dict]:
    """MDE at k = 1..max_seed_pairs seed pairs, each capped at pairs_per_seed_pair game pairs with the
    measured pair variance, and the minutes per child: k training runs plus k head-to-heads (the
    parent's seeds are trained once per parent, so not counted)."""
    s = game_se_elo(cfg.pairs_per_seed_pair, pair_var)
    out = []
    for k in range(1, cfg.max_seed_pairs + 1):
        se = math.sqrt(sigma_paired ** 2 / k + s * s / k)
        h2h_min = k * 2 * cfg.pairs_per_seed_pair / games_per_min
        out.append({"seed_pairs": k, "game_pairs_per_seed_pair": cfg.pairs_per_seed_pair,
                    "game_se_elo": s, "se_elo": se, "mde_elo": mde_elo(se),
                    "minutes_per_child": k * train_min + h2h_min,
                    "minutes_training": k * train_min, "minutes_h2h": h2h_min})
    return out


# ---------------------------------------------------------------- the control variate (tested)
