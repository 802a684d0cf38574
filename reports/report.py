"""`write_report`: the question's report as `report/report.md` and `report/index.html`, with
PNG figures in `report/figures/` and the browsable tree in `report/tree.html`.

The agent loop calls it after every node finishes, so it must be quick and must not fail on a
half-finished tree: pending nodes have no run directory, crashed ones no metrics.
"""
from __future__ import annotations

import datetime as dt
import html
import math
from pathlib import Path
from typing import Any

import pandas as pd

from experiment_tree.html import BASE_CSS, ERROR_TRAP_JS, legend_html, tree_svg, write_tree_html
from experiment_tree.show import node_run_dir
from experiment_tree.store import Question
from experiment_tree.workspace import Workspace
from experiments.rundir import atomic_write_text
from reports import figures
from reports.data import curves_frame, nodes_frame
from reports.ladder import Ladder, load_ladder

MAX_RUN_FIGURES = 40   # per-run curve figures for the most recent runs; the overview has them all
TABLE_COLUMNS = ["node", "parent", "kind", "status", "verdict", "strength", "wall_s",
                 "iterations", "hypothesis", "overrides", "error"]


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, float):
        return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return str(v)


def table_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.reindex(columns=TABLE_COLUMNS)


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table (pandas' own needs `tabulate`, which this project does not)."""
    def cell(v: Any) -> str:
        return _fmt(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in df.itertuples(index=False)]
    return "\n".join(lines)


def to_html_table(df: pd.DataFrame) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in df.columns)
    rows = []
    for r in df.itertuples(index=False):
        d = r._asdict()
        cells = "".join(f'<td class="c-{e(k)}">{e(_fmt(v))}</td>' for k, v in d.items())
        rows.append(f'<tr id="row-{d["node"]}" data-status="{e(str(d["status"]))}">{cells}</tr>')
    return (f'<table id="nodes" class="nodes"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _best(frame: pd.DataFrame) -> str:
    measured = frame.dropna(subset=["elo"])
    if len(measured):
        r = measured.loc[measured["elo"].idxmax()]
        return f"#{r['node']} ({r['strength']})"
    measured = frame.dropna(subset=["winrate"])
    if len(measured):
        r = measured.loc[measured["winrate"].idxmax()]
        return f"#{r['node']} ({r['strength']})"
    return "none measured yet"


def sandbox_line(frame: pd.DataFrame) -> str:
    """How the nodes' jobs were fenced in: the count under bubblewrap and every node that ran
    unsandboxed, with the reason (the issue asks that this be visible, not buried)."""
    if "sandbox" not in frame or frame["sandbox"].isna().all():
        return "no node has run yet"
    ran = frame[frame["sandbox"].notna()]
    boxed = int((ran["sandbox"] == "bwrap").sum())
    bare = ran[ran["sandbox"] != "bwrap"]
    text = f"{boxed} of {len(ran)} node(s) ran under bubblewrap"
    if len(bare):
        text += "; UNSANDBOXED: " + ", ".join(f"#{r.node} ({r.sandbox})" for r in bare.itertuples())
    return text


def _counts(frame: pd.DataFrame) -> str:
    return ", ".join(f"{n} {s}" for s, n in frame["status"].value_counts().items()) or "no nodes"


def write_report(workspace: Any, question_id: int | None = None,
                 ladder: Ladder | dict | str | Path | None = None) -> Path:
    """Write the report of one question (default: the latest) and return `report/index.html`.

    `ladder`: a dict or JSON file of rung -> Elo (± CI); by default the cached calibration is
    looked up (see `reports.ladder`), and the ladder figure says so when there is none.
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
    finally:
        store.close()

    out, fig_dir = ws.report_dir, ws.report_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    frame = nodes_frame(nodes, ws.root)
    curves = curves_frame(nodes, ws.root)
    ladder_ = load_ladder(ladder, ws.root)

    figs = {
        "curves": figures.learning_curves(curves, fig_dir / "learning_curves.png",
                                          f"Learning curves, question {q.id} (one colour per run)"),
        "strength": figures.node_strength(nodes, frame, fig_dir / "node_strength.png", ladder_),
        "tree": figures.tree_diagram(nodes, fig_dir / "tree.png"),
        "ladder": figures.ladder_figure(ladder_, frame, fig_dir / "ladder.png"),
    }
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
    atomic_write_text(out / "report.md", _markdown(q, frame, figs, run_figs, ladder_))
    index = out / "index.html"
    atomic_write_text(index, _html(q, nodes, frame, figs, run_figs, ladder_))
    return index


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


def _ci_text(ci: list[float] | None) -> str:
    return f"{ci[0]:.0f} – {ci[1]:.0f}" if ci else ""


def _rel(path: Path) -> str:
    return f"figures/{path.name}"


def _markdown(q: Question, frame: pd.DataFrame, figs: dict, run_figs: dict, ladder: Ladder) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    budget = ", ".join(f"{k}={v}" for k, v in q.budget.items() if k != "plan") or "none"
    evidence = ", ".join(f"#{e}" for e in q.evidence) or "none"
    lines = [f"# Question {q.id}: {q.text}", "",
             f"*Status:* {q.status} · *budget:* {budget} · *nodes:* {len(frame)} "
             f"({_counts(frame)}) · *LLM:* {q.tokens} tokens, ${q.cost_usd:.2f} · "
             f"*generated:* {now}", "", "## Answer", "",
             q.answer or "_No answer yet: the search is still running or stopped without one._",
             "", f"*Evidence (nodes):* {evidence}", "",
             f"*Strongest node so far:* {_best(frame)}", "",
             f"*Sandbox:* {sandbox_line(frame)}", ""]
    if q.evidence:
        ev = frame[frame["node"].isin(q.evidence)]
        lines += ["### Evidence nodes", "", to_markdown(table_frame(ev)), ""]
    lines += ["## Experiment tree", "", f"![tree]({_rel(figs['tree'])})", "",
              "Browse it: [tree.html](tree.html) (click a node for its details).", "",
              "## Strength of every node", "", f"![strength]({_rel(figs['strength'])})", "",
              "## Learning curves", "", f"![learning curves]({_rel(figs['curves'])})", ""]
    for nid, p in run_figs.items():
        lines += [f"### Node #{nid}", "", f"![node {nid}]({_rel(p)})", ""]
    lines += ["## Reference ladder", "", f"![ladder]({_rel(figs['ladder'])})", ""]
    if ladder:
        lines += ["| rung | Elo | 95% CI |", "|---|---|---|"]
        lines += [f"| {k} | {v['elo']:.0f} | {_ci_text(v['ci95'])} |" for k, v in ladder.items()]
        lines.append("")
    lines += ["## Nodes", "", to_markdown(table_frame(frame)), ""]
    return "\n".join(lines)


REPORT_CSS = """
section { background: #fff; border: 1px solid #d8dde3; border-radius: 6px; padding: 10px 16px; margin: 12px 0; }
img.fig { max-width: 100%; height: auto; display: block; margin: 6px 0; }
table.nodes, table.ladder { border-collapse: collapse; font-size: 12.5px; width: 100%; }
table.nodes th, table.nodes td, table.ladder th, table.ladder td { border-bottom: 1px solid #e3e6ea; padding: 3px 6px; text-align: left; vertical-align: top; }
table.nodes tr.hl { background: #fff4c2; }
table.nodes tr[data-status=crash] td.c-status, table.nodes tr[data-status=timeout] td.c-status { color: #a31515; font-weight: 600; }
.treewrap { overflow: auto; }
"""

REPORT_JS = """
(function () {
  function highlight(id) {
    document.querySelectorAll('table.nodes tr.hl').forEach(function (r) { r.classList.remove('hl'); });
    var row = document.getElementById('row-' + id);
    if (row) { row.classList.add('hl'); row.scrollIntoView({block: 'center'}); }
  }
  document.querySelectorAll('svg.tree .node').forEach(function (g) {
    g.addEventListener('click', function () { highlight(g.getAttribute('data-id')); });
  });
  document.querySelectorAll('a.node-link').forEach(function (a) {
    a.addEventListener('click', function (e) { e.preventDefault(); highlight(a.getAttribute('data-id')); });
  });
  var images = document.querySelectorAll('img.fig'), loaded = 0;
  images.forEach(function (img) {
    img.addEventListener('error', function () { __recordError('figure failed to load: ' + img.getAttribute('src')); });
  });
  document.body.setAttribute('data-ready', 'yes');
})();
"""


def _html(q: Question, nodes: list, frame: pd.DataFrame, figs: dict, run_figs: dict,
          ladder: Ladder) -> str:
    e = html.escape
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    budget = ", ".join(f"{k}={v}" for k, v in q.budget.items() if k != "plan") or "none"
    evidence = ", ".join(f'<a href="#row-{i}" class="node-link" data-id="{i}">#{i}</a>'
                         for i in q.evidence) or "none"
    answer = e(q.answer) if q.answer else "<i>No answer yet: the search is still running or " \
                                          "stopped without one.</i>"

    def img(p: Path, alt: str) -> str:
        return f'<img class="fig" src="{_rel(p)}" alt="{e(alt)}">'

    runs = "".join(f"<details><summary>Node #{nid}</summary>{img(p, f'node {nid} curves')}"
                   f"</details>" for nid, p in run_figs.items())
    ladder_rows = "".join(
        f"<tr><td>{e(k)}</td><td>{v['elo']:.0f}</td><td>{_ci_text(v['ci95'])}</td></tr>"
        for k, v in ladder.items())
    ladder_table = (f'<table class="ladder"><tr><th>rung</th><th>Elo</th><th>95% CI</th></tr>'
                    f"{ladder_rows}</table>") if ladder else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tengen report: question {q.id}</title>
<script>{ERROR_TRAP_JS}</script>
<style>{BASE_CSS}{REPORT_CSS}</style></head>
<body>
<header><h1>Question {q.id}: {e(q.text)}</h1></header>
<main>
<div id="js-errors"></div>
<p>status {e(q.status)} · budget {e(budget)} · {len(frame)} nodes ({e(_counts(frame))}) ·
LLM {q.tokens} tokens, ${q.cost_usd:.2f} · generated {now}</p>
<section id="answer"><h2>Answer</h2><div class="answer">{answer}</div>
<p><b>Evidence:</b> {evidence}</p><p><b>Strongest node so far:</b> {e(_best(frame))}</p>
<p><b>Sandbox:</b> {e(sandbox_line(frame))}</p></section>
<section id="tree-section"><h2>Experiment tree</h2>{legend_html()}
<div class="treewrap">{tree_svg(nodes, svg_id="report-tree")}</div>
<p><a href="tree.html">Open the browsable tree</a> (click a node for everything about it).</p>
{img(figs['tree'], 'tree diagram')}</section>
<section id="strength"><h2>Strength of every node</h2>{img(figs['strength'], 'Elo and win rate of every node')}</section>
<section id="curves"><h2>Learning curves</h2>{img(figs['curves'], 'learning curves')}{runs}</section>
<section id="ladder"><h2>Reference ladder</h2>{img(figs['ladder'], 'reference ladder')}{ladder_table}</section>
<section id="table"><h2>Nodes</h2>{to_html_table(table_frame(frame))}</section>
</main>
<script>{REPORT_JS}</script>
</body></html>
"""
