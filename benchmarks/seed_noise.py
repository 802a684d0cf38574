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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoresearch.agent_config import VerdictConfig  # noqa: E402
from go_core.arena.sprt import estimate  # noqa: E402
from go_core.arena.stats import Z95  # noqa: E402

TRAIN_COMMON = ["board=9x9", "budget=tiny", "tracking=disabled", "rating.at_end=false"]


# ---------------------------------------------------------------- pure helpers (tested)

from benchmarks.noise_stats import (_ci, chi2_quantile, mde_table, ring_df, ring_ratings,  # noqa: E402,F401
                                  sigma_paired_from, sigma_train_from_ring, sigma_train_from_rings)

from benchmarks.control_variate import (CONTROLS, CV_CATCH, CV_RECOMMENDATION,  # noqa: E402,F401
                                     control_variate_report, cv_adjusted_sigma, pearson_fisher,
                                     within_group_correlation)


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
