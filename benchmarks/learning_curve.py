"""How strength grows with compute: one training run, rated at fixed amounts of work (issue 18).

    python benchmarks/learning_curve.py                       # 9x9, 60 minutes of training on this machine
    python benchmarks/learning_curve.py --minutes 10 --games-per-checkpoint 64 --pairs 50
    python benchmarks/learning_curve.py --device cuda --minutes 120

The run trains in segments of `--games-per-checkpoint` self-play games (the same run directory
resumed with a larger `budget.max_games`, so it is one run, not several), starting from a warm
start trained once. After each segment the checkpoint is copied aside and rated:
- on the reference ladder (Elo with its 95% interval; the candidate plays MCTS at the rating
  config's visits, GTP against random, GNU Go and KataGo);
- head-to-head against the previous checkpoint (raw policy, colour-swapped pairs from the opening
  book; Elo difference with its 95% interval from the pentanomial pairs).
Last, the final net plays the warm-start net head-to-head: `gain_vs_warm_start_elo`.

Prints one JSON object: `checkpoints` (list of {games, seconds, elo, elo_ci95, h2h_vs_previous,
h2h_chain_elo, h2h_chain_ci95}: the chain is the sum of the head-to-head steps, the curve's sharper
measure, since the ladder's ~10 games per rating cannot see steps of 100 Elo),
`gain_vs_warm_start_elo` with `gain_ci95`, `device`, the load average, and the figure's path.
`--replot RESULT.json` redraws the figure from a printed result.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoresearch.bwrap import ENV_DEFAULTS  # noqa: E402
from go_core.arena.head_to_head import BatchPlayerSpec, play_head_to_head  # noqa: E402
from go_core.arena.sprt import estimate  # noqa: E402


def train(run_dir: Path, overrides: list[str], log: Path) -> float:
    t = time.monotonic()
    cmd = [sys.executable, "-m", "experiments.train", *overrides, f"hydra.run.dir={run_dir}"]
    with open(log, "ab") as f:
        cp = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                            env={**ENV_DEFAULTS, **os.environ})   # passive OpenMP waits unless set
    summary = json.loads((run_dir / "summary.json").read_text())
    if cp.returncode != 0 or summary.get("status") != "ok":
        raise SystemExit(f"training failed ({summary.get('status')}): {summary.get('error')} (log {log})")
    return time.monotonic() - t


def player(ckpt: Path, name: str, device: str) -> BatchPlayerSpec:
    return BatchPlayerSpec(argv=[sys.executable, "-m", "go_core.learn.batch_player", "--checkpoint", str(ckpt),
                            "--player", "policy", "--device", device], cwd=str(ROOT),
                      env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}, name=name)


def head_to_head(a: Path, b: Path, pairs: int, seed: int, sgf_dir: Path, device: str) -> dict:
    res = play_head_to_head(player(a, "new", device), player(b, "old", device), pairs, seed=seed,
                            sgf_dir=sgf_dir)
    e = estimate(list(res.pentanomial))
    return {"diff_elo": round(e.elo, 1), "ci95": [round(x, 1) for x in e.ci95], "se": round(e.se, 1),
            "pentanomial": list(res.pentanomial), "games": res.games,
            "games_per_min": round(res.games_per_min, 1)}


def ladder(ckpt: Path, sgf_dir: Path, device: str, start_elo: float | None) -> dict:
    from experiments.rate_checkpoint import rate_checkpoint
    out = rate_checkpoint(None, ckpt, sgf_dir, device=device, log=lambda m: None,
                              start_elo=start_elo)
    return {"elo": out["elo"], "elo_ci95": out["elo_ci95"], "ladder_source": out.get("ladder_source")}


def chain(points: list[dict]) -> None:
    """Add to each checkpoint its head-to-head Elo over the warm start along the chain of
    checkpoints: the sum of the steps' differences, with the normal interval of that sum
    (sqrt of the summed squared standard errors; rough where a step is a blowout). The ladder
    plays ~10 games per rating, too few to see steps of 100 Elo; the chain plays 200 per step.
    The chain shows the shape, not the size: each net beats its predecessor by more than it gains
    on older nets (60 min on 2 cores: chain +1877, the direct gain over the warm start +921), so
    read the size from `gain_vs_warm_start_elo`."""
    total, var = 0.0, 0.0
    for p in points:
        h = p["h2h_vs_previous"]
        se = h.get("se")
        if se is None:
            se = estimate(h["pentanomial"]).se
        total += h["diff_elo"]
        var += se * se
        p["h2h_chain_elo"] = round(total, 1)
        p["h2h_chain_ci95"] = [round(total - 1.96 * var ** 0.5, 1), round(total + 1.96 * var ** 0.5, 1)]


def figure(points: list[dict], path: Path, gain: tuple[float, list[float]] | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    g = [p["games"] for p in points]

    def bars(y: str, ci: str):
        return [[p[y] - p[ci][0] for p in points], [p[ci][1] - p[y] for p in points]]

    ax.errorbar(g, [p["h2h_chain_elo"] for p in points], yerr=bars("h2h_chain_elo", "h2h_chain_ci95"),
                marker="o", capsize=3, label="head-to-head, chained from the warm start (95% interval)")
    if all("elo" in p for p in points):
        ax.errorbar(g, [p["elo"] for p in points], yerr=bars("elo", "elo_ci95"), marker="s", capsize=3,
                    alpha=0.6, label="ladder Elo, random = 0 (~10 games each, 95% interval)")
    if gain is not None:   # the direct measure; its upper bound can be "unbounded" (3600) after a blowout
        elo, ci = gain
        ax.errorbar([g[-1]], [elo], yerr=[[elo - ci[0]], [0]], marker="*", markersize=12, capsize=3,
                    linestyle="none", label=f"final vs warm start, direct: {elo:+.0f} [{ci[0]:+.0f}, {ci[1]:+.0f}]")
    ax.set_xlabel("self-play games")
    ax.set_ylabel("Elo")
    ax.set_title("Learning curve (9x9, one run)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0, help="training time (rating not counted)")
    ap.add_argument("--games-per-checkpoint", type=int, default=256)
    ap.add_argument("--pairs", type=int, default=100, help="head-to-head game pairs per comparison")
    ap.add_argument("--board", default="9x9")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-ladder", action="store_true", help="head-to-head only (faster)")
    ap.add_argument("--out", default=None, help="folder (default a new one under /tmp)")
    ap.add_argument("--override", action="append", default=[],
                    help="a Hydra override of the training run (repeatable), after the defaults below")
    ap.add_argument("--replot", default=None, metavar="JSON",
                    help="only redraw the figure (and add the chained head-to-head Elo) from a printed result")
    ap.add_argument("--max-checkpoints", type=int, default=0,
                    help="stop after this many checkpoints whatever the minutes (0: no limit)")
    ap.add_argument("--decay-steps", type=int, default=3000,
                    help="cosine learning-rate decay over this many optimizer steps: the tiny budget's 500 "
                         "fit its 142 steps; 60 minutes on 2 cores take about 2,500-3,000")
    a = ap.parse_args(argv)
    if a.replot:
        res = json.loads(Path(a.replot).read_text())
        chain(res["checkpoints"])
        res["figure"] = str(Path(a.replot).with_suffix(".png"))
        figure(res["checkpoints"], Path(res["figure"]), (res["gain_vs_warm_start_elo"], res["gain_ci95"]))
        print(json.dumps(res))
        return 0
    out = Path(a.out or f"/tmp/learning_curve_{int(time.time())}")
    out.mkdir(parents=True, exist_ok=True)
    log = out / "train.log"
    base = [f"board={a.board}", "budget=tiny", "tracking=disabled", "rating.at_end=false",
            f"device={a.device}", "budget.wall_clock_s=0", f"train.decay_steps={a.decay_steps}", *a.override]
    start = out / "start"
    train(start, base + ["train.warm_start.only=true"], log)
    ckpts = [(0, start / "checkpoints" / "latest.pt")]
    run = out / "run"
    trained, games, points = 0.0, 0, []
    prev_elo = None
    while trained < a.minutes * 60 and not (a.max_checkpoints and len(points) >= a.max_checkpoints):
        games += a.games_per_checkpoint
        trained += train(run, base + [f"budget.max_games={games}",
                                      f"train.warm_start.init_checkpoint={ckpts[0][1]}"], log)
        ck = out / f"ckpt_{games:06d}.pt"
        shutil.copyfile(run / "checkpoints" / "latest.pt", ck)
        point = {"games": games, "seconds": round(trained, 1)}
        if not a.no_ladder:
            point.update(ladder(ck, out / f"ladder_{games}", a.device, prev_elo))
            prev_elo = point["elo"]
        point["h2h_vs_previous"] = head_to_head(ck, ckpts[-1][1], a.pairs, games, out / f"h2h_{games}", a.device)
        points.append(point)
        ckpts.append((games, ck))
        print(json.dumps(point), file=sys.stderr, flush=True)
    gain = head_to_head(ckpts[-1][1], ckpts[0][1], a.pairs, 1, out / "h2h_gain", a.device)
    chain(points)
    fig = out / "learning_curve.png"
    figure(points, fig, (gain["diff_elo"], gain["ci95"]))
    print(json.dumps({"checkpoints": points, "gain_vs_warm_start_elo": gain["diff_elo"],
                      "gain_ci95": gain["ci95"], "gain_games": gain["games"], "device": a.device,
                      "board": a.board, "load_average": os.getloadavg(),
                      "figure": str(fig), "out": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
