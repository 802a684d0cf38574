"""Fabricated experiment trees for the tree and report tests: real run directories on disk
(`.hydra/`, `metrics.jsonl`, `summary.json`, `log.txt`) and real rows in a real `tree.db`.

Not a fake of anything under test: it writes exactly what `experiments/train.py` and the agent
loop write, through the same helpers (`experiments.rundir`, `TreeStore`).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from experiment_tree.workspace import Workspace
from experiments.rundir import append_metrics, atomic_write_text, write_summary

CRASH_ERROR = ("Traceback (most recent call last):\n"
               '  File "experiments/train.py", line 88, in main\n'
               "    loss.backward()\n"
               "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")
TIMEOUT_ERROR = "wall-clock limit of 600 s exceeded; the job was killed"
PATCH = ("--- a/go_core/learn/net.py\n+++ b/go_core/learn/net.py\n@@ -10,3 +10,3 @@\n"
         "-    blocks: int = 6\n+    blocks: int = 40\n")

LADDER = {  # rung -> Elo and 95% interval, as the rating helper caches it
    "random": {"elo": 0.0, "ci95": [0.0, 0.0]},
    "gnugo-1": {"elo": 650.0, "ci95": [600.0, 700.0]},
    "gnugo-10": {"elo": 900.0, "ci95": [840.0, 960.0]},
    "katago-b6-v1": {"elo": 1350.0, "ci95": [1280.0, 1420.0]},
    "katago-b6-v8": {"elo": 1700.0, "ci95": [1610.0, 1790.0]},
}

BASE_CONFIG = """board:
  size: 9
  komi: 7.0
train:
  lr: 0.01
  batch_size: 64
mcts:
  visits: 32
seed: {seed}
"""


def write_run(run_dir: Path, *, overrides: list[str], seed: int, iterations: int,
              final_elo: float | None, status: str | None, error: str | None = None,
              winrate_only: bool = False, lr: float = 0.01) -> None:
    """One run directory: config, per-iteration metrics, log, and (if finished) summary.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / ".hydra" / "config.yaml",
                      BASE_CONFIG.format(seed=seed).replace("lr: 0.01", f"lr: {lr}"))
    atomic_write_text(run_dir / ".hydra" / "overrides.yaml",
                      "".join(f"- {o}\n" for o in overrides))
    log = [f"[train] seed={seed} overrides={overrides}"]
    elo = None
    for i in range(1, iterations + 1):
        rec = {"step": i * 100, "iteration": i,
               "policy_loss": 3.0 * math.exp(-i / (3 + seed % 3)) + 1.0 - 0.05 * seed,
               "value_loss": 0.9 * math.exp(-i / (4 + seed % 2)) + 0.3 + 0.02 * seed, "games": 32 * i,
               "sims_per_s": 5000.0 + 10 * i, "wall_s": 30.0 * i}
        rec["loss"] = rec["policy_loss"] + rec["value_loss"]
        if final_elo is not None and i % 2 == 0:
            elo = final_elo * i / iterations
            rec["elo"] = elo
            rec["elo_ci95"] = [elo - 40, elo + 40]
            rec["winrate_vs_ref"] = min(0.95, 0.1 + elo / 1000)
        append_metrics(run_dir, rec)
        log.append(f"[train] iter {i} loss={rec['loss']:.3f} sims/s={rec['sims_per_s']:.0f}")
    if error:
        log += error.splitlines()
    atomic_write_text(run_dir / "log.txt", "\n".join(log) + "\n")
    if status is None:
        return  # still running: no summary yet
    metrics: dict = {}
    if status == "ok":
        p = min(0.95, 0.1 + (final_elo or 0) / 1000)
        metrics = {"winrate_vs_ref": p, "games_vs_ref": 40}
        if not winrate_only:
            metrics.update(elo=final_elo, elo_ci95=[final_elo - 35, final_elo + 35])
    write_summary(run_dir, status, metrics=metrics, error=error, reference="katago-b6-v1",
                  compute={"wall_s": 30.0 * iterations, "cpu_s": 55.0 * iterations,
                           "gpu_s": 0.0, "device": "cpu"},
                  checkpoint=str(run_dir / "checkpoints" / "latest.pt"),
                  git={"commit": "0" * 40, "dirty": False, "patch_sha256": None})


def fabricate_tree(root: Path) -> dict:
    """A question with eight nodes covering every colour: baseline, better, worse (win rate
    only), inconclusive rerun, crash, timeout, running and pending. Returns ids by name."""
    ws = Workspace(root)
    store = ws.store()
    q = store.add_question("does a higher learning rate make a stronger 9x9 net?",
                           {"runs": 8, "hours": 2})
    ids: dict = {"question": q, "workspace": ws}

    def node(name, parent, kind, hyp, overrides, status, **run):
        nid = store.add_node(q, ids.get(parent), kind, hyp, overrides=overrides,
                             patch=run.pop("patch", None), seed=run.get("seed", 0),
                             command="python -m experiments.train " + " ".join(overrides))
        ids[name] = nid
        rd = ws.run_dir(nid)
        if status != "pending":
            write_run(rd, overrides=overrides, seed=run.get("seed", 0),
                      iterations=run.get("iterations", 6), final_elo=run.get("elo"),
                      status=None if status == "running" else status, error=run.get("error"),
                      winrate_only=run.get("winrate_only", False), lr=run.get("lr", 0.01))
            fields = {"run_dir": rd, "status": status, "started_at": time.time() - 3600 + 60 * nid}
            summary_path = rd / "summary.json"
            if summary_path.exists():
                s = json.loads(summary_path.read_text())
                fields.update(metrics=s["metrics"], error=s.get("error"),
                              finished_at=time.time() - 600 + 60 * nid,
                              log_tail=(rd / "log.txt").read_text()[-500:])
            store.update_node(nid, **fields)
        return nid

    node("baseline", None, "baseline", "the default config", [], "ok", elo=300.0, seed=1)
    node("better", "baseline", "config", "a higher learning rate learns faster",
         ["train.lr=0.02"], "ok", elo=420.0, seed=2, lr=0.02)
    node("crash", "baseline", "code", "a 40-block net", ["model.blocks=40"], "crash",
         iterations=2, error=CRASH_ERROR, patch=PATCH, seed=3)
    node("worse", "better", "config", "an even higher learning rate",
         ["train.lr=0.1"], "ok", elo=150.0, winrate_only=True, seed=4, lr=0.1)
    node("rerun", "better", "rerun", "rerun of #2 with another seed", ["train.lr=0.02"], "ok",
         elo=405.0, seed=5, lr=0.02)
    node("timeout", "worse", "config", "many more visits", ["train.lr=0.1", "mcts.visits=800"],
         "timeout", iterations=1, error=TIMEOUT_ERROR, seed=6, lr=0.1)
    node("running", "baseline", "sweep-trial", "optuna trial 3", ["train.lr=0.005"], "running",
         iterations=3, elo=200.0, seed=7, lr=0.005)
    node("pending", "better", "config", "warm-up schedule", ["train.lr=0.02", "+train.warmup=100"],
         "pending")
    store.update_node(ids["better"], verdict="better", verdict_test="Elo CI above parent's",
                      notes="+120 Elo")
    store.update_node(ids["worse"], verdict="worse", verdict_test="Wilson CI below parent's")
    store.update_node(ids["rerun"], verdict="inconclusive", verdict_test="CIs overlap")
    store.add_usage(q, tokens=12000, cost_usd=0.18)
    store.set_answer(q, "yes: lr 0.02 gains about 100 Elo over 0.01; 0.1 is worse",
                     [ids["better"], ids["rerun"]])
    store.close()
    return ids
