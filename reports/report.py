"""`write_report`: the question's report as `report/report.md` and `report/index.html`, with
PNG figures in `report/figures/` and the browsable tree in `report/tree.html`.

The agent loop calls it after every node finishes, so it must be quick and must not fail on a
half-finished tree: pending nodes have no run directory, crashed ones no metrics. This module
gathers and draws; the page both renderings read is reports/page.py, the renderings
render_md.py and render_html.py.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from experiment_tree.html import write_tree_html
from experiment_tree.records import Question
from experiment_tree.show import node_run_dir
from experiment_tree.tracks_view import track_groups
from experiment_tree.workspace import Workspace
from experiments.rundir import atomic_write_text
from reports import figures
from reports.calibration import NOTHING, rows_by_proposer
from reports.data import curves_frame, nodes_frame
from reports.ladder_elos import Ladder, load_ladder
from reports.page import Page
from reports.render_html import html_page
from reports.render_md import markdown_page
from reports.xy import XYResult, xy_result

MAX_RUN_FIGURES = 40   # per-run curve figures for the most recent runs; the overview has them all
NO_CURVES = "No learning curves yet: no run has written an iteration to its metrics.jsonl."
NO_STRENGTH = "No strength measured yet: no node has an Elo or a win rate against the reference."
NO_LADDER = ("No ladder calibration is cached on this machine yet (the rating measures it once; "
             "run `research ladder`), so the nodes are not placed on the ladder here.")


def write_report(workspace: Any, question_id: int | None = None,
                 ladder: Ladder | dict | str | Path | None = None) -> Path:
    """Write the report of one question (default: the latest) and return `report/index.html`.

    `ladder`: a dict or JSON file of rung -> Elo (± CI); by default the cached calibration is
    looked up (see `reports.ladder_elos`), and the ladder figure says so when there is none.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    store = ws.store(create=False)
    try:
        questions = store.questions()
        if not questions:
            raise ValueError(f"no questions in {ws.tree_db} yet: nothing to report "
                             f"(start one with `research run \"QUESTION\"`)")
        q = store.get_question(question_id) if question_id is not None else questions[-1]
        nodes = store.nodes(q.id)
        tracks = track_groups(store, q.id, nodes)
    finally:
        store.close()

    out, fig_dir = ws.report_dir, ws.report_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    frame = nodes_frame(nodes, ws.root)
    curves = curves_frame(nodes, ws.root)
    ladder_ = load_ladder(ladder, ws.root)

    xy = xy_result(q, nodes, ws.root)
    figs, missing = draw_overview(q, nodes, frame, curves, ladder_, xy, fig_dir)
    run_ids = sorted(curves["node"].unique().tolist())[-MAX_RUN_FIGURES:] if len(curves) else []
    run_figs = {}
    by_id = {n.id: n for n in nodes}
    for nid in run_ids:
        path = fig_dir / f"run_{nid}.png"
        if not _stale(path, by_id[nid], ws.root):   # after every node only new runs are drawn
            run_figs[nid] = path
            continue
        run_figs[nid] = figures.run_curves(curves, nid, path)
    for stale in fig_dir.glob("run_*.png"):          # runs of another question, or cut off
        if stale not in run_figs.values():
            stale.unlink(missing_ok=True)

    write_tree_html(ws)
    page = Page(q, nodes, frame, figs, missing, run_figs, ladder_, xy, tracks)
    atomic_write_text(out / "report.md", markdown_page(page))
    index = out / "index.html"
    atomic_write_text(index, html_page(page))
    return index


def draw_overview(q: Question, nodes: list, frame: pd.DataFrame, curves: pd.DataFrame,
                  ladder: Ladder, xy: XYResult | None, fig_dir: Path) -> tuple[dict, dict]:
    """Draw the overview figures; a figure with nothing to show is not drawn (its old file is
    removed) and one line saying why stands in for it."""
    figs: dict[str, Path] = {}
    missing: dict[str, str] = {}
    if xy is not None:
        figs["xy"] = figures.xy_figure(xy, fig_dir / "xy.png")
    else:
        (fig_dir / "xy.png").unlink(missing_ok=True)
    c = figures.learning_curves(curves, fig_dir / "learning_curves.png",
                                f"Learning curves, question {q.id} (one colour per run)")
    if c is None:
        missing["curves"] = NO_CURVES
    else:
        figs["curves"] = c
    if frame["elo"].notna().any() or frame["winrate"].notna().any():
        figs["strength"] = figures.node_strength(nodes, frame, fig_dir / "node_strength.png", ladder)
    else:
        missing["strength"] = NO_STRENGTH
        (fig_dir / "node_strength.png").unlink(missing_ok=True)
    figs["tree"] = figures.tree_diagram(nodes, fig_dir / "tree.png")
    by_proposer = rows_by_proposer(nodes)
    if any(s.diff_elo is not None for rows in by_proposer.values() for _, _, s in rows):
        figs["calibration"] = figures.calibration_figure(by_proposer, fig_dir / "calibration.png")
    else:
        missing["calibration"] = NOTHING if not by_proposer else (
            "No calibration figure: the scored forecasts have no measured Elo difference to "
            "plot (their log scores are in the table).")
        (fig_dir / "calibration.png").unlink(missing_ok=True)
    if ladder:
        figs["ladder"] = figures.ladder_figure(ladder, frame, fig_dir / "ladder.png")
    else:
        missing["ladder"] = NO_LADDER
        (fig_dir / "ladder.png").unlink(missing_ok=True)
    return figs, missing


def _stale(figure: Path, node: Any, workspace_root: Path) -> bool:
    """True when a run's figure is missing or older than the run's metrics or summary."""
    if not figure.exists():
        return True
    run_dir = node_run_dir(node, workspace_root)
    if run_dir is None:
        return True
    sources = [run_dir / "metrics.jsonl", run_dir / "summary.json"]
    newest = max((p.stat().st_mtime for p in sources if p.exists()), default=float("inf"))
    return figure.stat().st_mtime < newest
