"""Training noise that limits verdicts: sigma_paired and sigma_train, measured at budget=tiny.

What a verdict (autoresearch/verdict.py `decide`) can see is set by how much two training runs
differ by chance. This benchmark measures it under the set-up verdicts use:

1. one shared start (`train.warm_start.only=true`, seed 0), as a question trains it once;
2. K seeds of the parent config and K seeds of a child config (a small real change, default
   `train.lr=0.004`, twice the default lr), all from that start, one run at a time;
3. raw-policy head-to-head game pairs (the referee's `go_core.learn.batch_player --player policy`,
   colour-swapped pairs from the opening book):
   - paired: child seed k vs parent seed k -> d_k with game se s_k (sprt.estimate). The spread of
     d_k around their mean, less the game part, is sigma_paired^2 (common random numbers: same
     start, same seed);
   - independent: parent seed j vs parent seed j+1 mod K (a ring) -> e_j, and the same ring of the
     child's seeds (--ring-arms; pooled, and reported per arm). With no config change,
     E[e_j^2] = 2 sigma_train^2 + s_j^2, so sigma_train^2 = (mean e_j^2 - mean s_j^2) / 2.
     The ring's e_j are correlated (neighbouring edges share a seed): the sum of squares is a
     quadratic form in the K seeds' strengths with the ring Laplacian's eigenvalues
     lambda_m = 2 - 2 cos(2 pi m / K), so its degrees of freedom are Satterthwaite's
     (sum lambda)^2 / sum lambda^2 (8/3 for K=4; 3 would be a full round robin's);
4. the minimum detectable difference of the verdict at its default caps (k = 1..max_seed_pairs seed
   pairs of pairs_per_seed_pair game pairs): SE^2 = sigma_paired^2 / k + s^2 / k, MDE = sprt.mde_elo(SE),
   and the minutes per child that costs (k training runs + k head-to-heads at the measured rates);
5. a control variate (issue 12, item 4): every net's loss on the fixed KataGo position set
   (`benchmarks.position_loss` on benchmarks/data/katago_positions_9x9.jsonl: policy
   cross-entropy against KataGo's raw policy, top-1 agreement with KataGo's move, value MSE against
   the game's result and against KataGo's value), its difference on every paired and ring match,
   and per control (`control_variate`): Pearson r of the control's difference with the match's Elo
   difference (paired, rings, and pooled with each group centred; 95% interval by Fisher z, n),
   the variance reduction 1 - r^2 and sigma_paired after it.

   The catch: a control variate's mean must not depend on the treatment, and a change to the learner
   moves its loss on KataGo positions too, so d - beta dL estimates effect_elo - beta effect_loss, not
   the effect (`treatment_effect_on_control` shows how far the child's change moved each control).
   It could serve (a) under the null of no change at all, to sharpen the false-positive side, (b) as
   a forecast/prior, or (c) to flag a node whose loss moved but whose strength did not.
   Recommendation (also in the JSON): (c), plus (b) once r's interval excludes 0 -- not (a): a
   verdict asks about strength, and (a) would make every change that moves the loss a false positive.
   The adjusted MDE table is reported as what the adjustment would buy if it were allowed.

Training runs are kept under --work-dir and reused when their summary.json says ok (so an
interrupted benchmark resumes); a reused run keeps its recorded wall time. Matches and control
values are cached there too, so rerunning on an old --work-dir adds the controls without retraining
or replaying.

    python benchmarks/seed_noise.py [--seeds 4] [--pairs 100] [--child-override train.lr=0.004]
                                    [--work-dir DIR] [--out benchmarks/results/seed_noise.json]
                                    [--positions FILE] [--no-controls]

Prints one JSON object (and writes it to --out).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoresearch.agent_config import VerdictConfig  # noqa: E402
from autoresearch.verdict import estimate_sigma_paired  # noqa: E402
from go_core.arena.sprt import estimate, game_se_elo, mde_elo  # noqa: E402
from go_core.arena.stats import Z95  # noqa: E402

TRAIN_COMMON = ["board=9x9", "budget=tiny", "tracking=disabled", "eval.at_end=false"]


# ---------------------------------------------------------------- pure helpers (tested)

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

def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def train(run_dir: Path, overrides: list[str]) -> dict:
    """One training job (reused if its summary.json says ok); returns its wall time and load."""
    summ = run_dir / "summary.json"
    meta = run_dir / "seed_noise_meta.json"
    if summ.exists() and json.loads(summ.read_text()).get("status") == "ok":
        if meta.exists():
            m = json.loads(meta.read_text())
        else:   # finished after its benchmark process was stopped: the job's own wall time
            m = {"wall_s": json.loads(summ.read_text())["compute"]["wall_s"], "loadavg_before": [math.nan] * 3,
                 "loadavg_after": list(os.getloadavg()), "overrides": overrides}
        m["reused"] = True
        log(f"reuse {run_dir.name} ({m['wall_s']:.0f} s)")
        return m
    run_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "experiments.train", *TRAIN_COMMON, *overrides, f"hydra.run.dir={run_dir}"]
    log(f"train {run_dir.name}: {' '.join(overrides)}")
    load0 = os.getloadavg()
    t0 = time.monotonic()
    with open(run_dir.parent / f"{run_dir.name}.log", "w") as fh:
        rc = subprocess.run(argv, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT).returncode
    wall = time.monotonic() - t0
    status = json.loads(summ.read_text()).get("status") if summ.exists() else None
    if rc != 0 or status != "ok":
        raise RuntimeError(f"training {run_dir} failed (rc {rc}, status {status}); see {run_dir}.log")
    m = {"wall_s": wall, "loadavg_before": list(load0), "loadavg_after": list(os.getloadavg()),
         "overrides": overrides}
    meta.write_text(json.dumps(m))
    log(f"done {run_dir.name} in {wall:.0f} s, load {m['loadavg_after'][0]:.2f}")
    return m


def h2h(a_ckpt: Path, b_ckpt: Path, pairs: int, seed: int, sgf_dir: Path, name: str) -> dict:
    """One raw-policy match of `pairs` colour-swapped pairs, A = a_ckpt; its result is kept next to
    its games (result.json) and reused when the same match is asked for again."""
    cache = sgf_dir / "result.json"
    if cache.exists():
        m = json.loads(cache.read_text())
        if (m.get("pairs"), m.get("seed"), m.get("a"), m.get("b")) == (pairs, seed, str(a_ckpt), str(b_ckpt)):
            log(f"reuse h2h {name}: {m['elo']:+.0f} +- {m['se']:.0f}")
            return m
    m = _play(a_ckpt, b_ckpt, pairs, seed, sgf_dir, name)
    m.update(seed=seed, a=str(a_ckpt), b=str(b_ckpt))
    cache.write_text(json.dumps(m))
    return m


def _play(a_ckpt: Path, b_ckpt: Path, pairs: int, seed: int, sgf_dir: Path, name: str) -> dict:
    from go_core.arena.head_to_head import BatchPlayerSpec, play_head_to_head

    def spec(ck: Path, who: str) -> BatchPlayerSpec:
        return BatchPlayerSpec([sys.executable, "-m", "go_core.learn.batch_player", "--checkpoint", str(ck),
                           "--player", "policy", "--device", "cpu", "--seed", str(seed)],
                          cwd=str(ROOT), name=who)
    log(f"h2h {name}: {pairs} pairs")
    r = play_head_to_head(spec(a_ckpt, "A"), spec(b_ckpt, "B"), pairs=pairs, seed=seed,
                          sgf_dir=sgf_dir, timeout_s=600, start_timeout_s=600)
    e = estimate(r.pentanomial)
    log(f"h2h {name}: {e.elo:+.0f} +- {e.se:.0f} Elo, {r.games_per_min:.0f} games/min")
    return {"name": name, "elo": e.elo, "se": e.se, "ci95": list(e.ci95), "pairs": e.pairs,
            "pair_var": e.pair_var, "pentanomial": r.pentanomial, "games": r.games,
            "failures": len(r.failures), "wall_s": r.wall_s, "games_per_min": r.games_per_min,
            "opening_source": r.opening_source}


def controls_of(ckpt: Path, positions, positions_sha: str) -> tuple[dict, dict]:
    """(values, per-position terms) of one checkpoint's controls (`benchmarks.position_loss`),
    kept next to it (controls.json, controls_terms.npz) and reused while the checkpoint and the
    position file are unchanged, so a rerun on an old --work-dir computes only what is missing and
    never retrains. The terms give each match's control difference a paired, game-clustered se."""
    import numpy as np
    from benchmarks.position_loss import per_position, summarize
    cache, cache_terms = ckpt.parent / "controls.json", ckpt.parent / "controls_terms.npz"
    st = ckpt.stat()
    key = {"positions_sha256": positions_sha, "checkpoint_size": st.st_size, "checkpoint_mtime_ns": st.st_mtime_ns}
    if cache.exists() and cache_terms.exists():
        c = json.loads(cache.read_text())
        if c.get("key") == key:
            with np.load(cache_terms) as z:
                return c["values"], {k: z[k] for k in z.files}
    t0 = time.monotonic()
    terms = per_position(ckpt, positions)
    values = summarize(terms, positions.game)
    log(f"controls {ckpt.parent.parent.name}: policy {values['policy_loss']:.3f} value {values['value_loss']:.3f} "
        f"({time.monotonic() - t0:.1f} s)")
    np.savez(cache_terms, **terms)
    cache.write_text(json.dumps({"key": key, "values": values}))
    return values, terms


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=4, help="K: seeds per config (3+ for a ring; 2: one edge per arm)")
    p.add_argument("--pairs", type=int, default=100, help="colour-swapped game pairs per match")
    p.add_argument("--child-override", default="train.lr=0.004",
                   help="the child's change (Hydra override; space-separated for several)")
    p.add_argument("--ring-arms", default="parent,child",
                   help="arms whose seeds play a ring for sigma_train (pooled): parent, child or both")
    p.add_argument("--train-override", default="",
                   help="overrides for every seeded run of both arms, e.g. budget.max_games=64 on a busy machine")
    p.add_argument("--work-dir", default=str(Path(tempfile.gettempdir()) / "tengen-seed-noise"),
                   help="training runs and matches are kept here and reused (rerun on it to add controls)")
    p.add_argument("--positions", default=None,
                   help="KataGo position set for the control variates (default: benchmarks/data/katago_positions_9x9.jsonl)")
    p.add_argument("--no-controls", action="store_true", help="skip the control-variate measurement")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "seed_noise.json"))
    a = p.parse_args(argv)
    work = Path(a.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    cfg = VerdictConfig()

    start = work / "start"
    start_meta = train(start, ["train.warm_start.only=true", "seed=0"])
    ck0 = start / "checkpoints" / "latest.pt"
    runs: dict[str, list[dict]] = {"parent": [], "child": []}
    child_ov = a.child_override.split()
    for k in range(a.seeds):
        for arm, extra in (("parent", []), ("child", child_ov)):
            d = work / f"{arm}_s{k}"
            m = train(d, [*extra, *a.train_override.split(), f"train.warm_start.init_checkpoint={ck0}",
                          f"seed={k}"])
            runs[arm].append({"seed": k, "dir": str(d), "ckpt": str(d / "checkpoints" / "latest.pt"), **m})

    paired = [h2h(Path(runs["child"][k]["ckpt"]), Path(runs["parent"][k]["ckpt"]), a.pairs, 1000 + k,
                  work / "games" / f"paired_s{k}", f"child s{k} vs parent s{k}") for k in range(a.seeds)]
    edges = a.seeds if a.seeds >= 3 else 1     # K=2: the one edge s0 - s1
    rings = {arm: [h2h(Path(runs[arm][j]["ckpt"]), Path(runs[arm][(j + 1) % a.seeds]["ckpt"]), a.pairs,
                       2000 + 100 * n + j, work / "games" / f"ring_{arm}_s{j}",
                       f"{arm} s{j} vs {arm} s{(j + 1) % a.seeds}") for j in range(edges)]
             for n, arm in enumerate(a.ring_arms.split(","))}
    ring = [m for r in rings.values() for m in r]

    controls: dict[str, dict] = {}
    cv = None
    if not a.no_controls:
        import hashlib
        from go_core.arena.katago_positions import default_path, load_positions
        pos_path = Path(a.positions) if a.positions else default_path(9)
        pos_sha = hashlib.sha256(pos_path.read_bytes()).hexdigest()
        positions = load_positions(pos_path)
        from benchmarks.position_loss import summarize
        terms = {}
        for d in [start] + [Path(r["dir"]) for arm in runs.values() for r in arm]:
            ck = d / "checkpoints" / "latest.pt"
            controls[d.name], terms[str(ck)] = controls_of(ck, positions, pos_sha)
        for m in paired + ring:     # A minus B on the same positions: a paired se, clustered by game
            diff = summarize({c: terms[m["a"]][c] - terms[m["b"]][c] for c in CONTROLS}, positions.game)
            m["control_diff"] = {c: diff[c] for c in CONTROLS}
            m["control_diff_se"] = {c: diff[f"{c}_se"] for c in CONTROLS}

    sp = sigma_paired_from([m["elo"] for m in paired], [m["se"] for m in paired])
    st = sigma_train_from_rings([([m["elo"] for m in r], [m["se"] for m in r]) for r in rings.values()])
    st_arm = {arm: {**sigma_train_from_ring([m["elo"] for m in r], [m["se"] for m in r]),
                    "ring_ratings_elo": ring_ratings([m["elo"] for m in r]) if len(r) >= 3 else None}
              for arm, r in rings.items()}
    rho = 1 - sp["elo"] ** 2 / (2 * st["elo"] ** 2) if st["elo"] > 0 else None
    walls = [r["wall_s"] / 60 for arm in runs.values() for r in arm]
    train_min = sum(walls) / len(walls)
    all_m = paired + ring
    gpm = sum(m["games"] for m in all_m) / (sum(m["wall_s"] for m in all_m) / 60)
    pair_var = sum(m["pair_var"] for m in all_m) / len(all_m)
    mde_measured = mde_table(sp["elo"], pair_var, cfg, train_min, gpm)
    mde_upper = mde_table(sp["ci95"][1], pair_var, cfg, train_min, gpm)
    mde_prior = mde_table(cfg.sigma_paired_prior_elo, pair_var, cfg, train_min, gpm)
    if controls:
        cv = {"positions": {"file": pos_path.name, "sha256": pos_sha, "n": len(positions), "games": positions.games},
              "per_net": controls,
              **control_variate_report(paired, rings, CONTROLS, cfg, pair_var, train_min, gpm)}

    out = {
        "benchmark": "seed_noise", "board": 9, "budget": "tiny", "seeds": a.seeds,
        "pairs_per_match": a.pairs, "child_override": a.child_override, "train_override": a.train_override,
        "h2h_player": "policy (raw, argmax), go_core.learn.batch_player, 1 process per side",
        "sigma_paired_elo": {**sp, "how": "child seed k vs parent seed k (shared start, same seed): "
                             "var(d_k) - mean(s_k^2), df K-1; 95% interval chi-square on var(d) with the game part removed"},
        "sigma_train_elo": {**st, "per_arm": st_arm, "rings": a.ring_arms,
                            "how": "rings arm s_j vs arm s_{j+1} (mod K), pooled over the arms listed: "
                                   "(mean e_j^2 - mean s_j^2) / 2, Satterthwaite df of the ring Laplacians; "
                                   "95% interval chi-square, game part removed"},
        "pairing_correlation_rho": rho,
        "paired": paired, "rings": rings,
        "pentanomial_total": [sum(m["pentanomial"][i] for m in all_m) for i in range(5)],
        "h2h_games_per_min": gpm, "h2h_pair_var_mean": pair_var,
        "training_minutes": {"mean": train_min, "min": min(walls), "max": max(walls), "runs": len(walls),
                             "per_run": {f"{arm}_s{r['seed']}": round(r["wall_s"] / 60, 2)
                                         for arm, rs in runs.items() for r in rs},
                             "loadavg_1min_after_each": [round(r["loadavg_after"][0], 2)
                                                         for rs in runs.values() for r in rs],
                             "shared_start_minutes": start_meta["wall_s"] / 60},
        "verdict_caps": {"pairs_per_seed_pair": cfg.pairs_per_seed_pair, "max_seed_pairs": cfg.max_seed_pairs,
                         "alpha": cfg.alpha, "power": 1 - cfg.beta},
        "mde_measured_sigma": mde_measured,
        "mde_sigma_paired_ci95_upper": {"sigma_paired_elo": sp["ci95"][1], "table": mde_upper},
        "mde_prior_sigma": {"sigma_paired_prior_elo": cfg.sigma_paired_prior_elo, "table": mde_prior},
        "control_variate": cv,
        "recommendation": CV_RECOMMENDATION if cv else None,
        "minutes_per_child_note": "k child training runs (mean measured) + k head-to-heads of pairs_per_seed_pair "
                                  "pairs at the measured games/min; the ladder rating is not included",
        "wall_min_total": (time.monotonic() - t_start) / 60,
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "cpus": os.cpu_count(), "z95": Z95,
    }
    text = json.dumps(out, indent=1)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text + "\n")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
