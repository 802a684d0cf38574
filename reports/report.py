"""`write_report`: the question's report as `report/report.md` and `report/index.html`, with
PNG figures in `report/figures/` and the browsable tree in `report/tree.html`.

The agent loop calls it after every node finishes, so it must be quick and must not fail on a
half-finished tree: pending nodes have no run directory, crashed ones no metrics.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
import html
import math
from pathlib import Path
from typing import Any

import pandas as pd

from experiment_tree.format import comparison_text
from experiment_tree.html import BASE_CSS, ERROR_TRAP_JS, legend_html, tree_svg, write_tree_html
from experiment_tree.show import node_run_dir
from experiment_tree.records import Question
from experiment_tree.suspect import is_suspect, mark
from experiment_tree.tracks_view import track_groups, track_text
from experiment_tree.workspace import Workspace
from experiments.rundir import atomic_write_text
from reports import figures
from reports.calibration import NOTHING, TABLE_HEAD, calibration_table, rows_by_proposer, table_markdown
from reports.data import curves_frame, nodes_frame
from reports.ladder_elos import Ladder, load_ladder
from reports.xy import XYResult, xy_result

MAX_RUN_FIGURES = 40   # per-run curve figures for the most recent runs; the overview has them all
TABLE_COLUMNS = ["node", "parent", "kind", "status", "verdict", "comparison", "strength", "wall_s",
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


NO_CURVES = "No learning curves yet: no run has written an iteration to its metrics.jsonl."
NO_STRENGTH = "No strength measured yet: no node has an Elo or a win rate against the reference."
NO_LADDER = ("No ladder calibration is cached on this machine yet (the evaluation measures it once; "
             "run `research ladder`), so the nodes are not placed on the ladder here.")
# budget keys that are bookkeeping, not something a reader set: never printed raw
HIDDEN_BUDGET_KEYS = ("plan", "start_checkpoint", "job_module", "description")


@dataclass
class Page:
    """What the markdown and the HTML report are both written from."""
    q: Question
    nodes: list
    frame: pd.DataFrame
    figs: dict                 # name -> PNG path (only the figures that have something to show)
    missing: dict              # name -> the line that stands in for a figure with nothing to show
    run_figs: dict
    ladder: Ladder
    xy: XYResult | None
    tracks: list = field(default_factory=list)   # experiment_tree.tracks_view.TrackGroup, in order


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


def duration_text(seconds: float) -> str:
    """Seconds for people: `42 s`, `8.3 min`, `2.5 h`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _round(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def budget_text(budget: dict) -> str:
    """The question's budget and spending for people: rounded, no Nones, no bookkeeping keys."""
    b = {k: v for k, v in (budget or {}).items() if v is not None and k not in HIDDEN_BUDGET_KEYS}
    named = {
        "runs": lambda v: f"{v} runs",
        "hours": lambda v: f"{_round(float(v))} h",
        "spent_s": lambda v: f"{duration_text(float(v))} spent",
        "cost_usd": lambda v: f"${float(v):.2f} for the LLM",
        "board": lambda v: f"board {v}",
        "budget": lambda v: f"{v} work budget per node",
        "workers": lambda v: f"{v} worker(s)",
        "proposer": lambda v: f"proposer {v}",
        "seed": lambda v: f"seed {v}",
        "launcher": lambda v: f"launcher {v}",
        "referee_commit": lambda v: f"referee pinned at {str(v)[:10]}",
    }
    parts = []
    for k, v in b.items():
        try:
            parts.append(named[k](v) if k in named else f"{k} {_round(v)}")
        except (TypeError, ValueError):
            parts.append(f"{k} {v}")
    return ", ".join(parts) or "none"


def status_text(q: Question, frame: pd.DataFrame) -> str:
    text = f"{q.status} · budget: {budget_text(q.budget)} · {len(frame)} nodes ({_counts(frame)})"
    if q.tokens or q.cost_usd:
        text += f" · LLM {q.tokens} tokens, ${q.cost_usd:.2f}"
    return text


def verdict_lines(nodes: list) -> list[str]:
    """The head-to-head verdicts of the tree, one line per judged node (an A/B's answer)."""
    by_id = {n.id: n for n in nodes}
    out = []
    for n in nodes:
        text = comparison_text(n.metrics)
        if text is None:
            continue
        what = " ".join(n.overrides) or n.kind
        parent = by_id.get(n.parent_id)
        vs = f"#{parent.id} ({' '.join(parent.overrides) or parent.kind})" if parent else "its parent"
        flag = f" [{mark(n)}; not counted]" if is_suspect(n) else (f" [{mark(n)}]" if mark(n) else "")
        out.append(f"#{n.id} ({what}) vs {vs}: {n.verdict or 'open'}, {text}{flag}")
    return out


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
    atomic_write_text(out / "report.md", _markdown(page))
    index = out / "index.html"
    atomic_write_text(index, _html(page))
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


def _answer_figure_md(page: Page) -> list[str]:
    """The x/y figure, its trend sentence and each arm's point, or for an A/B the verdict."""
    xy = page.xy
    if xy is not None:
        lines = [f"![{xy_alt(xy)}]({_rel(page.figs['xy'])})", "", xy.statement, ""]
        lines += [f"- {p.text(xy.y)}" for p in xy.points]
        return lines + [""]
    verdicts = verdict_lines(page.nodes)
    if verdicts:
        return ["**Head-to-head verdict(s):**", ""] + [f"- {v}" for v in verdicts] + [""]
    return []


def xy_alt(xy: XYResult) -> str:
    return f"x/y figure: {xy.y} against {xy.x_key} with 95% intervals"


def _fig_md(page: Page, name: str, alt: str) -> list[str]:
    if name in page.figs:
        return [f"![{alt}]({_rel(page.figs[name])})", ""]
    return [f"_{page.missing[name]}_", ""]


def _markdown(page: Page) -> str:
    q, frame = page.q, page.frame
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    evidence = ", ".join(f"#{e}" for e in q.evidence) or "none"
    lines = [f"# Question {q.id}: {q.text}", "", "## Answer", "",
             q.answer or "_No answer yet: the search is still running or stopped without one._", ""]
    lines += _answer_figure_md(page)
    lines += [f"*Evidence (nodes):* {evidence}", "", f"*Strongest node so far:* {_best(frame)}", "",
              f"*Status:* {status_text(q, frame)} · *generated:* {now}", "",
              f"*Sandbox:* {sandbox_line(frame)}", ""]
    if q.evidence:
        ev = frame[frame["node"].isin(q.evidence)]
        lines += ["### Evidence nodes", "", to_markdown(table_frame(ev)), ""]
    lines += agent_sections_md(page)
    lines += ["## Experiment tree", "", f"![tree]({_rel(page.figs['tree'])})", "",
              "Browse it: [tree.html](tree.html) (click a node for its details).", "",
              "## Strength of every node", ""] + _fig_md(page, "strength", "strength")
    lines += ["## Learning curves", ""] + _fig_md(page, "curves", "learning curves")
    for nid, p in page.run_figs.items():
        lines += [f"### Node #{nid}", "", f"![node {nid}]({_rel(p)})", ""]
    lines += ["## Reference ladder", ""] + _fig_md(page, "ladder", "ladder")
    if page.ladder:
        lines += ["| rung | Elo | 95% CI |", "|---|---|---|"]
        lines += [f"| {k} | {v['elo']:.0f} | {_ci_text(v['ci95'])} |" for k, v in page.ladder.items()]
        lines.append("")
    lines += ["## Nodes", "", to_markdown(table_frame(frame)), ""]
    return "\n".join(lines)


def health_lines(nodes: list) -> list[str]:
    """Nodes with a failed health check: suspect (left out of the answer) or explained."""
    return [f"#{n.id}: {mark(n)}" + (" -- left out of the answer until explained"
                                     if is_suspect(n) else "") for n in nodes if mark(n)]


def agent_sections_md(page: Page) -> list[str]:
    """Health flags, tracks, and forecast calibration (issue 16)."""
    lines: list[str] = []
    health = health_lines(page.nodes)
    if health:
        lines += ["## Health checks", ""] + [f"- {x}" for x in health] + [""]
    if page.tracks:
        lines += ["## Tracks", ""] + ["    " + x for x in track_text(page.tracks)] + [""]
    lines += ["## Forecast calibration", ""] + _fig_md(page, "calibration", "forecast calibration")
    lines += table_markdown(calibration_table(page.nodes))
    return lines


def agent_sections_html(page: Page, fig) -> str:
    e = html.escape
    out = ""
    health = health_lines(page.nodes)
    if health:
        out += ('<section id="health"><h2>Health checks</h2><ul>'
                + "".join(f"<li>{e(x)}</li>" for x in health) + "</ul></section>")
    if page.tracks:
        out += ('<section id="tracks"><h2>Tracks</h2><pre>' + e("\n".join(track_text(page.tracks)))
                + "</pre></section>")
    table = calibration_table(page.nodes)
    rows = "".join("<tr>" + "".join(f"<td>{e(str(r[k]))}</td>" for k in
                                    ("proposer", "scored", "hit_80", "log_score", "brier")) + "</tr>"
                   for r in table)
    head = "".join(f"<th>{e(h)}</th>" for h in TABLE_HEAD)
    out += (f'<section id="calibration"><h2>Forecast calibration</h2>'
            f'{fig("calibration", "forecast vs measured Elo difference")}'
            + (f'<table class="ladder calibration"><tr>{head}</tr>{rows}</table>' if rows else "")
            + "</section>")
    return out


REPORT_CSS = """
section { background: #fff; border: 1px solid #d8dde3; border-radius: 6px; padding: 10px 16px; margin: 12px 0; }
img.fig { max-width: 100%; height: auto; display: block; margin: 6px 0; }
table.nodes, table.ladder { border-collapse: collapse; font-size: 12.5px; width: 100%; }
table.nodes th, table.nodes td, table.ladder th, table.ladder td { border-bottom: 1px solid #e3e6ea; padding: 3px 6px; text-align: left; vertical-align: top; }
table.nodes tr.hl { background: #fff4c2; }
table.nodes tr[data-status=crash] td.c-status, table.nodes tr[data-status=timeout] td.c-status { color: #a31515; font-weight: 600; }
.treewrap { overflow: auto; }
p.nofig { color: #667; font-style: italic; }
p.trend { font-weight: 600; }
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


def _html(page: Page) -> str:
    q, frame, e = page.q, page.frame, html.escape
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    evidence = ", ".join(f'<a href="#row-{i}" class="node-link" data-id="{i}">#{i}</a>'
                         for i in q.evidence) or "none"
    answer = e(q.answer) if q.answer else "<i>No answer yet: the search is still running or " \
                                          "stopped without one.</i>"

    def img(p: Path, alt: str) -> str:
        return f'<img class="fig" src="{_rel(p)}" alt="{e(alt)}">'

    def fig(name: str, alt: str) -> str:
        if name in page.figs:
            return img(page.figs[name], alt)
        return f'<p class="nofig" data-figure="{name}">{e(page.missing[name])}</p>'

    if page.xy is not None:
        xy = page.xy
        points = "".join(f"<li>{e(p.text(xy.y))}</li>" for p in xy.points)
        result = (f'<div id="xy">{img(page.figs["xy"], xy_alt(xy))}'
                  f'<p class="trend">{e(xy.statement)}</p><ul class="points">{points}</ul></div>')
    else:
        verdicts = "".join(f"<li>{e(v)}</li>" for v in verdict_lines(page.nodes))
        result = (f'<div id="verdicts"><b>Head-to-head verdict(s):</b><ul>{verdicts}</ul></div>'
                  if verdicts else "")
    runs = "".join(f"<details><summary>Node #{nid}</summary>{img(p, f'node {nid} curves')}"
                   f"</details>" for nid, p in page.run_figs.items())
    ladder_rows = "".join(
        f"<tr><td>{e(k)}</td><td>{v['elo']:.0f}</td><td>{_ci_text(v['ci95'])}</td></tr>"
        for k, v in page.ladder.items())
    ladder_table = (f'<table class="ladder"><tr><th>rung</th><th>Elo</th><th>95% CI</th></tr>'
                    f"{ladder_rows}</table>") if page.ladder else ""
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
<section id="answer"><h2>Answer</h2><div class="answer">{answer}</div>
{result}
<p><b>Evidence:</b> {evidence}</p><p><b>Strongest node so far:</b> {e(_best(frame))}</p></section>
<p class="status">{e(status_text(q, frame))} · generated {now}<br>
<b>Sandbox:</b> {e(sandbox_line(frame))}</p>
<section id="tree-section"><h2>Experiment tree</h2>{legend_html()}
<div class="treewrap">{tree_svg(page.nodes, svg_id="report-tree")}</div>
<p><a href="tree.html">Open the browsable tree</a> (click a node for everything about it).</p></section>
{agent_sections_html(page, fig)}
<section id="strength"><h2>Strength of every node</h2>{fig('strength', 'Elo and win rate of every node')}</section>
<section id="curves"><h2>Learning curves</h2>{fig('curves', 'learning curves')}{runs}</section>
<section id="ladder"><h2>Reference ladder</h2>{fig('ladder', 'reference ladder')}{ladder_table}</section>
<section id="table"><h2>Nodes</h2>{to_html_table(table_frame(frame))}</section>
</main>
<script>{REPORT_JS}</script>
</body></html>
"""
