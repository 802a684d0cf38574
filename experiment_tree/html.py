"""The experiment tree as one self-contained HTML page (`research tree --html`).

Inline CSS, JS and SVG only (no CDN: the page must open offline and from a file:// URL). The
layout is computed here (`layout.py`); each node is an SVG group coloured by its verdict, and a
click fills the details panel from the node data embedded in the page as JSON.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from experiment_tree.format import clip, colour_class, first_line, headline, node_label
from experiment_tree.layout import layout
from experiment_tree.show import health_line, node_details
from experiment_tree.suspect import is_suspect
from experiment_tree.tracks_view import node_brief, track_groups
from experiment_tree.records import Node
from experiment_tree.store import TreeStore

COLOURS = {  # fill colour by colour class (format.colour_class)
    "better": "#2e9d4a", "worse": "#d64541", "inconclusive": "#e0a526", "crashed": "#7a1c1c",
    "running": "#2f80ed", "pending": "#9aa5b1", "baseline": "#4a5a70", "other": "#8e59b0",
}
LEGEND = [("better", "better than parent"), ("worse", "worse than parent"),
          ("inconclusive", "inconclusive"), ("crashed", "crashed / timeout / invalid"),
          ("running", "running"), ("pending", "pending"), ("baseline", "finished, not compared"),
          ("other", "pruned / refused / interrupted")]

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 180, 58, 24, 48, 16
MAX_TEXT = 20_000   # characters of a patch or log kept in the page per node


def tree_svg(nodes: list[Node], svg_id: str = "tree") -> str:
    """An SVG drawing of the tree: boxes (class `node`, `data-id`) joined parent → child."""
    if not nodes:
        return '<p class="empty">(no nodes yet)</p>'
    placed = layout(nodes)
    pos = {p.node.id: (PAD + p.x * (BOX_W + GAP_X), PAD + p.depth * (BOX_H + GAP_Y))
           for p in placed}
    width = max(x for x, _ in pos.values()) + BOX_W + PAD
    height = max(y for _, y in pos.values()) + BOX_H + PAD
    parts = [f'<svg id="{svg_id}" class="tree" xmlns="http://www.w3.org/2000/svg" '
             f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
             f'role="img" aria-label="experiment tree">']
    for p in placed:   # edges first, so boxes sit on top
        n = p.node
        if n.parent_id in pos:
            px, py = pos[n.parent_id]
            x, y = pos[n.id]
            x1, y1, x2, y2 = px + BOX_W / 2, py + BOX_H, x + BOX_W / 2, y
            my = (y1 + y2) / 2
            parts.append(f'<path class="edge" data-from="{n.parent_id}" data-to="{n.id}" '
                         f'd="M{x1:.1f},{y1:.1f} C{x1:.1f},{my:.1f} {x2:.1f},{my:.1f} '
                         f'{x2:.1f},{y2:.1f}" fill="none" stroke="#8895a7" stroke-width="1.5"/>')
    for p in placed:
        n = p.node
        x, y = pos[n.id]
        cls = colour_class(n)
        fill = COLOURS[cls]
        metric = (("error: " + first_line(n.error, 40)) if cls == "crashed"
                  else headline(n.metrics) or n.kind)
        title = f"#{n.id} {n.status}" + (f" · {n.verdict}" if n.verdict else "") + (
            " · SUSPECT" if is_suspect(n) else "")
        e = html.escape
        parts.append(
            f'<g class="node v-{cls}" id="node-{n.id}" data-id="{n.id}" '
            f'data-parent="{n.parent_id if n.parent_id is not None else ""}" '
            f'data-status="{e(n.status)}" data-verdict="{e(n.verdict or "")}" '
            f'data-suspect="{"yes" if is_suspect(n) else ""}" '
            f'transform="translate({x:.1f},{y:.1f})" tabindex="0">'
            f'<title>{e(node_label(n))}</title>'
            f'<rect width="{BOX_W}" height="{BOX_H}" rx="7" fill="{fill}"/>'
            f'<text x="8" y="17" class="t1">{e(clip(title, 27))}</text>'
            f'<text x="8" y="33" class="t2">{e(clip(metric, 27))}</text>'
            f'<text x="8" y="49" class="t3">{e(clip(node_label(n), 27))}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def legend_html() -> str:
    items = "".join(f'<span class="key"><i style="background:{COLOURS[c]}"></i>{html.escape(t)}'
                    f"</span>" for c, t in LEGEND)
    return f'<div class="legend">{items}</div>'


def _json_for_script(data: Any) -> str:
    """JSON that can sit inside <script> (no `</script>` or `<!--` can end it early)."""
    return (json.dumps(data, default=str).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


# The page's own error trap: any JS error lands in #js-errors, which the browser test reads.
ERROR_TRAP_JS = """
window.__jsErrors = [];
function __recordError(msg) {
  window.__jsErrors.push(String(msg));
  var box = document.getElementById('js-errors');
  if (box) { box.textContent = window.__jsErrors.join('\\n'); box.setAttribute('data-count', window.__jsErrors.length); }
}
window.onerror = function (msg, src, line, col) { __recordError(msg + ' at ' + src + ':' + line + ':' + col); };
window.addEventListener('unhandledrejection', function (e) { __recordError('unhandled rejection: ' + e.reason); });
"""

BASE_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2733; background: #f6f7f9; }
header { padding: 12px 20px; background: #1d2733; color: #fff; }
header h1 { font-size: 18px; margin: 0; }
main { padding: 12px 20px; }
h2 { font-size: 16px; margin: 18px 0 6px; }
.legend { margin: 6px 0 10px; }
.legend .key { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 4px; vertical-align: -1px; }
.treewrap { overflow: auto; background: #fff; border: 1px solid #d8dde3; border-radius: 6px; }
svg.tree .node { cursor: pointer; }
svg.tree .node text { fill: #fff; font-size: 11.5px; font-family: system-ui, sans-serif; pointer-events: none; }
svg.tree .node .t1 { font-weight: 600; }
svg.tree .node.v-pending text { fill: #1d2733; }
svg.tree .node.selected rect { stroke: #111; stroke-width: 3; }
svg.tree .node:hover rect { opacity: .85; }
.answer { background: #fff; border-left: 4px solid #2e9d4a; padding: 8px 12px; }
#js-errors:not(:empty) { background: #fde2e1; color: #7a1c1c; padding: 8px; white-space: pre-wrap; }
"""

TREE_CSS = """
.layout { display: flex; gap: 16px; align-items: flex-start; }
.layout .left { flex: 1 1 60%; min-width: 0; }
#details { flex: 0 0 38%; background: #fff; border: 1px solid #d8dde3; border-radius: 6px; padding: 10px 14px; position: sticky; top: 8px; max-height: 92vh; overflow: auto; }
#details h3 { margin: 0 0 6px; font-size: 15px; }
#details dl { display: grid; grid-template-columns: 96px 1fr; gap: 2px 8px; margin: 0; }
#details dt { color: #5b6877; }
#details dd { margin: 0; word-break: break-word; }
#details pre { background: #f1f3f5; padding: 6px; overflow: auto; font-size: 12px; max-height: 300px; white-space: pre; }
#details .err { color: #a31515; font-weight: 600; }
"""

TREE_JS = """
(function () {
  var data = JSON.parse(document.getElementById('tree-data').textContent);
  var panel = document.getElementById('details');
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = text; if (cls) e.className = cls; return e; }
  function section(title, text) {
    if (!text) return;
    panel.appendChild(el('h4', title));
    panel.appendChild(el('pre', text));
  }
  function show(id) {
    var d = data[String(id)];
    if (!d) return;
    var n = d.node;
    document.querySelectorAll('svg.tree .node.selected').forEach(function (g) { g.classList.remove('selected'); });
    var g = document.getElementById('node-' + id);
    if (g) g.classList.add('selected');
    panel.innerHTML = '';
    panel.setAttribute('data-node', String(id));
    panel.appendChild(el('h3', '#' + n.id + ' ' + n.kind + ' (' + n.status + ')'));
    var dl = el('dl');
    function row(k, v, cls) { if (v === undefined || v === null || v === '') return; dl.appendChild(el('dt', k)); dl.appendChild(el('dd', String(v), cls)); }
    row('error', d.error_line, 'err');
    row('parent', n.parent_id === null ? '(root)' : '#' + n.parent_id);
    row('children', d.children.map(function (c) { return '#' + c; }).join(', ') || '(none)');
    row('hypothesis', n.hypothesis);
    row('strength', d.headline || '(not measured)');
    row('verdict', n.verdict ? n.verdict + (n.verdict_test ? ' (' + n.verdict_test + ')' : '') : '-');
    row('notes', n.notes);
    row('health', d.health, d.suspect ? 'err' : null);
    row('overrides', (n.overrides || []).join(' ') || '(none)');
    row('seed', n.seed);
    row('run dir', d.run_dir);
    row('W&B run', n.wandb_path);
    row('sandbox', n.sandbox);
    row('LLM', n.tokens ? n.tokens + ' tokens, $' + Number(n.cost_usd).toFixed(4) : null);
    panel.appendChild(dl);
    section('Overrides vs parent', (d.overrides_diff || []).join('\\n'));
    section('Config diff vs parent', (d.config_diff || []).join('\\n'));
    section('Patch', n.patch);
    section('Metrics', Object.keys(n.metrics || {}).length ? JSON.stringify(n.metrics, null, 1) : '');
    section('Error', n.error);
    section('Log tail', d.log_tail);
  }
  document.querySelectorAll('svg.tree .node').forEach(function (g) {
    g.addEventListener('click', function () { show(g.getAttribute('data-id')); });
    g.addEventListener('keydown', function (e) { if (e.key === 'Enter') show(g.getAttribute('data-id')); });
  });
  document.querySelectorAll('a.node-link').forEach(function (a) {
    a.addEventListener('click', function (e) { e.preventDefault(); show(a.getAttribute('data-id')); });
  });
  var fromHash = (location.hash || '').replace('#node-', '');
  var first = document.querySelector('svg.tree .node');
  if (fromHash && data[fromHash]) show(fromHash); else if (first) show(first.getAttribute('data-id'));
  document.body.setAttribute('data-ready', 'yes');
})();
"""


def _node_payload(store: TreeStore, node: Node, workspace_root: Path | None) -> dict[str, Any]:
    d = node_details(store, node.id, workspace_root)
    n = d["node"]
    for k in ("patch", "error"):
        if n.get(k) and len(n[k]) > MAX_TEXT:
            n[k] = n[k][:MAX_TEXT] + "\n… (cut; see `research show %d`)" % node.id
    if d["log_tail"] and len(d["log_tail"]) > MAX_TEXT:
        d["log_tail"] = d["log_tail"][-MAX_TEXT:]
    d["error_line"] = first_line(n.get("error"), 200) if node.status in ("crash", "timeout",
                                                                          "invalid") else None
    d.pop("summary", None)
    d.pop("parent", None)
    d["health"] = health_line(n)
    d["suspect"] = is_suspect(node)
    return d


def tracks_html(store: TreeStore, question_id: int, nodes: list[Node]) -> str:
    """The nodes grouped by track, each with its aim and step-back notes ('' without tracks)."""
    groups = track_groups(store, question_id, nodes)
    if not groups:
        return ""
    e = html.escape
    items = []
    for g in groups:
        links = ", ".join(f'<a href="#node-{n.id}" class="node-link" data-id="{n.id}">'
                          f'{e(node_brief(n))}</a>' for n in g.nodes) or "none yet"
        notes = "".join(f"<li>step-back {e(x)}</li>" for x in g.notes)
        items.append(f'<li class="track" data-track="{e(g.name)}"><b>{e(g.name)}</b>'
                     f'{" [" + e(g.status) + "]" if g.status else ""}'
                     f'{" -- aim: " + e(g.aim) if g.aim else ""}<br>nodes: {links}'
                     f'{"<ul>" + notes + "</ul>" if notes else ""}</li>')
    return f'<div class="tracks"><h3>Tracks</h3><ul>{"".join(items)}</ul></div>'





def render_tree_html(store: TreeStore, question_id: int | None = None,
                     workspace_root: Path | None = None) -> str:
    questions = ([store.get_question(question_id)] if question_id is not None
                 else store.questions())
    e = html.escape
    sections, data = [], {}
    for q in questions:
        nodes = store.nodes(q.id)
        for n in nodes:
            data[str(n.id)] = _node_payload(store, n, workspace_root)
        answer = ""
        if q.answer:
            ev = ", ".join(f'<a href="#node-{i}" class="node-link" data-id="{i}">#{i}</a>'
                           for i in q.evidence) or "none"
            answer = (f'<div class="answer"><b>Answer:</b> {e(q.answer)}<br>'
                      f'<b>Evidence:</b> {ev}</div>')
        settings = ", ".join(f"{k}={v}" for k, v in q.settings.items()) or "none"
        sections.append(
            f'<section class="question" data-question="{q.id}"><h2>Question {q.id}: {e(q.text)}</h2>'
            f'<p>status {e(q.status)} · settings {e(settings)} · {len(nodes)} nodes · '
            f'LLM {q.tokens} tokens, ${q.cost_usd:.2f}</p>{answer}'
            f'<div class="treewrap">{tree_svg(nodes, svg_id=f"tree-q{q.id}")}</div>'
            f'{tracks_html(store, q.id, nodes)}</section>')
    if not sections:
        sections.append('<p class="empty">(no questions yet: start one with '
                        '<code>research run "QUESTION"</code>)</p>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tengen experiment tree</title>
<script>{ERROR_TRAP_JS}</script>
<style>{BASE_CSS}{TREE_CSS}</style></head>
<body>
<header><h1>Tengen experiment tree</h1></header>
<main>
<div id="js-errors"></div>
{legend_html()}
<div class="layout"><div class="left">{''.join(sections)}</div>
<aside id="details"><p>Click a node for its details.</p></aside></div>
</main>
<script type="application/json" id="tree-data">{_json_for_script(data)}</script>
<script>{TREE_JS}</script>
</body></html>
"""


def write_tree_html(workspace: Any, question_id: int | None = None) -> Path:
    """Write `W/report/tree.html` and return its path (`workspace`: a Workspace or a folder)."""
    from experiment_tree.workspace import Workspace
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    store = ws.store(create=False)
    try:
        page = render_tree_html(store, question_id, ws.root)
    finally:
        store.close()
    from experiments.rundir import atomic_write_text
    out = ws.report_dir / "tree.html"
    atomic_write_text(out, page)
    return out
