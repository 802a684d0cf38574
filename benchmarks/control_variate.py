"""The control variate of benchmarks/seed_noise.py (issue 12, item 4): how far a net's loss on the
shipped KataGo positions (benchmarks/position_loss.py) tracks its head-to-head strength, what an
adjustment by it would buy, and why verdicts do not use it (CV_CATCH, CV_RECOMMENDATION).
"""
from __future__ import annotations

import math
from typing import Sequence

from autoresearch.agent_config import VerdictConfig
from benchmarks.noise_stats import mde_table
from go_core.arena.stats import Z95

CONTROLS = ("policy_loss", "value_loss", "value_loss_kata", "policy_acc")

CV_CATCH = (
    "A control variate needs a control whose mean does not depend on the treatment. A change to the "
    "learner moves its loss on KataGo positions too, so on child-vs-parent pairs "
    "d - beta * dL estimates effect_elo - beta * effect_loss, not effect_elo: a child whose loss moved "
    "but whose strength did not would be called better or worse. It can be used (a) under the null of "
    "no change at all (same config, different seeds) to sharpen the false-positive side, (b) as a "
    "forecast or prior for the Elo difference (beta * dL, from positions alone, seconds instead of "
    "games), or (c) to flag a node whose loss moved but whose strength did not (or the reverse).")

CV_RECOMMENDATION = (
    "Do not adjust verdicts with it. Use (c): record the child-minus-parent loss differences (with "
    "their se) next to the head-to-head verdict and flag disagreements -- a loss that moved by many "
    "se while the Elo interval straddles 0, or Elo that moved with no loss change -- as a health "
    "note; and (b) as a forecast that orders which children get seed pairs first, once r is "
    "measured with an interval that excludes 0. (a) is sound only for testing 'child is identical to "
    "parent', which is not the verdict's question (strength), so it would turn every change that "
    "moves the loss into a false positive.")


def pearson_fisher(x: Sequence[float], y: Sequence[float], groups: int = 1) -> dict:
    """Pearson r of x and y with a 95% interval by Fisher's z: atanh(r) +- Z95 / sqrt(n - groups - 2)
    (n - 3 for one group; each group centred beforehand costs one more degree of freedom).
    Fewer than groups + 3 points: the interval is [-1, 1]. No spread in x or y: r is None."""
    import numpy as np
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n != len(y) or n < 2:
        raise ValueError(f"need 2+ pairs of values, got {len(x)} and {len(y)}")
    xc, yc = x - x.mean(), y - y.mean()
    den = math.sqrt(float((xc * xc).sum() * (yc * yc).sum()))
    if den == 0:
        return {"r": None, "ci95": [-1.0, 1.0], "n": n, "groups": groups}
    r = max(-1.0, min(1.0, float((xc * yc).sum()) / den))
    dof = n - groups - 2
    if dof < 1 or abs(r) == 1.0:
        ci = [-1.0, 1.0] if dof < 1 else [r, r]
    else:
        z, h = math.atanh(r), Z95 / math.sqrt(dof)
        ci = [math.tanh(z - h), math.tanh(z + h)]
    return {"r": r, "ci95": ci, "n": n, "groups": groups}


def within_group_correlation(groups: dict[str, Sequence[tuple[float, float]]]) -> dict:
    """Pearson r of (elo difference, control difference) pooled over groups, each group centred on
    its own means first (a paired group carries the treatment's mean effect, a ring none: centring
    keeps those means out of the correlation). Also the slope beta = cov / var(control).

    Degrees of freedom: a ring of K edges carries K-1 independent contrasts of its K seeds (the
    training part of its edges sums to 0), which is what centring it leaves, so n - groups counts
    them right for rings as for the paired group."""
    import numpy as np
    xs, ys = [], []
    used = 0
    for pts in groups.values():
        if len(pts) < 2:
            continue
        e = np.array([p[0] for p in pts], float)
        c = np.array([p[1] for p in pts], float)
        xs += list(e - e.mean())
        ys += list(c - c.mean())
        used += 1
    if not xs:
        raise ValueError("need a group with 2+ comparisons")
    out = pearson_fisher(xs, ys, groups=used)
    vy = float(np.dot(ys, ys))
    out["beta_elo_per_unit"] = float(np.dot(xs, ys)) / vy if vy > 0 else None
    return out


def cv_adjusted_sigma(d: Sequence[float], s: Sequence[float], r: float | None) -> dict:
    """What a control with correlation r to the paired differences d_k (game se s_k) would buy:
    var(d - beta dL) = var(d) (1 - r^2), so sigma_paired after adjustment is
    sqrt(max(var(d) (1 - r^2) - mean s^2, 0))."""
    k = len(d)
    mean = sum(d) / k
    var_d = sum((x - mean) ** 2 for x in d) / (k - 1)
    game_var = sum(x * x for x in s) / k
    red = 1 - r * r if r is not None else 1.0
    return {"variance_reduction_factor": red, "sd_d_elo": math.sqrt(var_d),
            "sd_d_adjusted_elo": math.sqrt(var_d * red),
            "sigma_paired_adjusted_elo": math.sqrt(max(var_d * red - game_var, 0.0))}


def control_variate_report(paired: Sequence[dict], rings: dict[str, Sequence[dict]], controls: Sequence[str],
                           cfg: VerdictConfig, pair_var: float, train_min: float, games_per_min: float) -> dict:
    """Per control: r of its difference with the head-to-head Elo difference (paired only, rings
    only, all pooled within groups), the variance reduction 1 - r^2 and sigma_paired after it (at
    r and at the ends of r's interval), the treatment's mean effect on the control (the catch, made
    visible), and the MDE table if the adjustment were allowed."""
    d = [m["elo"] for m in paired]
    s = [m["se"] for m in paired]
    out = {}
    for c in controls:
        grp = {"paired": [(m["elo"], m["control_diff"][c]) for m in paired]}
        if all(len(r) == 1 for r in rings.values()):   # K=2: one edge per arm, pooled as one group
            grp["rings"] = [(m["elo"], m["control_diff"][c]) for r in rings.values() for m in r]
        else:
            grp.update({f"ring_{arm}": [(m["elo"], m["control_diff"][c]) for m in r] for arm, r in rings.items()})
        rings_only = {k: v for k, v in grp.items() if k != "paired"}
        per = {"paired": within_group_correlation({"paired": grp["paired"]}) if len(d) >= 2 else None,
               "rings": within_group_correlation(rings_only) if any(len(v) >= 2 for v in rings_only.values()) else None,
               "pooled": within_group_correlation(grp)}
        pooled = per["pooled"]
        enough = pooled["r"] is not None and pooled["n"] - pooled["groups"] - 2 >= 1
        r = pooled["r"] if enough else None     # 2 points always give r = +-1: no information
        lo, hi = pooled["ci95"]
        r_weak = 0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))
        dl = [m["control_diff"][c] for m in paired]
        mdl = sum(dl) / len(dl)
        sd_dl = math.sqrt(sum((x - mdl) ** 2 for x in dl) / (len(dl) - 1)) if len(dl) > 1 else math.nan
        adj = cv_adjusted_sigma(d, s, r)
        out[c] = {
            "correlation": per,
            "r_used": ("pooled (paired and rings, each centred)" if enough else
                       "none: too few comparisons for an interval (n - groups - 2 < 1), no reduction assumed"),
            "variance_reduction": 1 - r * r if r is not None else None,
            **adj,
            # the ends of r's interval: strongest |r| -> smallest sigma, weakest -> largest
            "sigma_paired_adjusted_elo_at_r_ci95": [cv_adjusted_sigma(d, s, max(abs(lo), abs(hi)))["sigma_paired_adjusted_elo"],
                                                    cv_adjusted_sigma(d, s, r_weak)["sigma_paired_adjusted_elo"]],
            "treatment_effect_on_control": {"mean_paired_diff": mdl, "sd_paired_diff": sd_dl, "k": len(dl),
                                            "se": sd_dl / math.sqrt(len(dl)) if len(dl) > 1 else math.nan},
            "mde_if_adjusted_under_null_only": mde_table(adj["sigma_paired_adjusted_elo"], pair_var, cfg,
                                                         train_min, games_per_min),
        }
    return {"controls": out, "sign": "differences are A minus B of each match (child minus parent; seed j minus j+1)",
            "catch": CV_CATCH, "recommendation": CV_RECOMMENDATION}


# ---------------------------------------------------------------- the runs
