"""The report as one HTML page (`report/index.html`): the same sections as the markdown, with the
interactive tree (a click on a node highlights its row) and a trap that records script errors."""
from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

from experiment_tree.html import BASE_CSS, ERROR_TRAP_JS, legend_html, tree_svg
from experiment_tree.tracks_view import track_text
from reports.calibration import TABLE_HEAD, calibration_table
from reports.page import (Page, best_text, ci_text, fig_src, health_lines, sandbox_line,
                          status_text, table_frame, to_html_table, verdict_lines, xy_alt)

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


def html_page(page: Page) -> str:
    q, frame, e = page.q, page.frame, html.escape
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    evidence = ", ".join(f'<a href="#row-{i}" class="node-link" data-id="{i}">#{i}</a>'
                         for i in q.evidence) or "none"
    answer = e(q.answer) if q.answer else "<i>No answer yet: the search is still running or " \
                                          "stopped without one.</i>"

    def img(p: Path, alt: str) -> str:
        return f'<img class="fig" src="{fig_src(p)}" alt="{e(alt)}">'

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
        f"<tr><td>{e(k)}</td><td>{v['elo']:.0f}</td><td>{ci_text(v['ci95'])}</td></tr>"
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
<p><b>Evidence:</b> {evidence}</p><p><b>Strongest node so far:</b> {e(best_text(frame))}</p></section>
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
