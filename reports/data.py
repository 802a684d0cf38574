"""The tables a report is drawn from: one row per node, and one row per (run, iteration).

Everything tolerates missing data: a pending node has no run directory, a crashed one may have a
few iterations and no summary, an old run may lack a metric key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from experiment_tree.format import colour_class, comparison_text, elo_of, first_line, headline, winrate_of
from experiment_tree.show import node_run_dir
from experiment_tree.records import Node
from experiments.rundir import read_metrics, read_summary

# metrics.jsonl keys, by what they measure (the first present wins)
ITERATION_KEYS = ("iteration", "step")
COMPUTE_KEYS = ("wall_s", "time_s", "time")
CURVE_KEYS = ("policy_loss", "value_loss", "loss", "elo", "winrate_vs_ref", "games", "sims_per_s")

NODE_COLUMNS = ["node", "parent", "kind", "status", "verdict", "comparison", "elo", "elo_lo", "elo_hi",
                "winrate", "winrate_lo", "winrate_hi", "games_vs_ref", "wall_s", "iterations",
                "strength", "hypothesis", "overrides", "error", "colour", "sandbox"]


def nodes_frame(nodes: list[Node], workspace_root: Path | None = None) -> pd.DataFrame:
    """One row per node: identity, status, verdict, Elo and win rate with intervals, compute."""
    rows = []
    for n in nodes:
        e, w = elo_of(n.metrics), winrate_of(n.metrics)
        run_dir = node_run_dir(n, workspace_root)
        summary = read_summary(run_dir) if run_dir and run_dir.exists() else None
        records = read_metrics(run_dir) if run_dir and run_dir.exists() else []
        wall = (summary or {}).get("compute", {}).get("wall_s")
        if wall is None and records:
            wall = next((records[-1][k] for k in COMPUTE_KEYS if k in records[-1]), None)
        rows.append({
            "node": n.id, "parent": n.parent_id, "kind": n.kind, "status": n.status,
            "verdict": n.verdict, "sandbox": getattr(n, "sandbox", None),
            "comparison": comparison_text(n.metrics),
            "elo": e[0] if e else None,
            "elo_lo": e[1][0] if e and e[1] else None, "elo_hi": e[1][1] if e and e[1] else None,
            "winrate": w[0] if w else None,
            "winrate_lo": w[1][0] if w and w[1] else None,
            "winrate_hi": w[1][1] if w and w[1] else None,
            "games_vs_ref": w[2] if w else None,
            "wall_s": wall, "iterations": len(records),
            "strength": headline(n.metrics), "hypothesis": n.hypothesis,
            "overrides": " ".join(n.overrides), "error": first_line(n.error, 120) or None,
            "colour": colour_class(n),
        })
    df = pd.DataFrame(rows, columns=NODE_COLUMNS)
    # Parent ids are nullable integers (a root has none), not floats.
    df["parent"] = df["parent"].astype("Int64")
    return df


def curves_frame(nodes: list[Node], workspace_root: Path | None = None) -> pd.DataFrame:
    """Long table of learning curves: node, iteration, wall_s and every curve key present."""
    frames = []
    for n in nodes:
        run_dir = node_run_dir(n, workspace_root)
        records = read_metrics(run_dir) if run_dir and run_dir.exists() else []
        if not records:
            continue
        rows = []
        for i, r in enumerate(records):
            row: dict[str, Any] = {"node": n.id}
            row["iteration"] = next((r[k] for k in ITERATION_KEYS if k in r), i + 1)
            row["wall_s"] = next((r[k] for k in COMPUTE_KEYS if k in r), None)
            for k in CURVE_KEYS:
                v = r.get(k)
                row[k] = v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
            ci = r.get("elo_ci95")
            ok_ci = isinstance(ci, (list, tuple)) and len(ci) == 2
            row["elo_lo"], row["elo_hi"] = (ci[0], ci[1]) if ok_ci else (None, None)
            rows.append(row)
        frames.append(pd.DataFrame(rows))
    cols = ["node", "iteration", "wall_s", *CURVE_KEYS, "elo_lo", "elo_hi"]
    if not frames:
        return pd.DataFrame(columns=cols)
    df = pd.concat(frames, ignore_index=True).reindex(columns=cols)
    for c in cols[1:]:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df
