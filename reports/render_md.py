"""The report as markdown (`report/report.md`): the answer first, then the agent's sections, the
tree, strength, learning curves, the ladder and the node table."""
from __future__ import annotations

import datetime as dt

from experiment_tree.tracks_view import track_text
from reports.calibration import calibration_table, table_markdown
from reports.page import (Page, best_text, ci_text, fig_src, health_lines, sandbox_line,
                          status_text, table_frame, to_markdown, verdict_lines, xy_alt)

def answer_figure_md(page: Page) -> list[str]:
    """The x/y figure, its trend sentence and each arm's point, or for an A/B the verdict."""
    xy = page.xy
    if xy is not None:
        lines = [f"![{xy_alt(xy)}]({fig_src(page.figs['xy'])})", "", xy.statement, ""]
        lines += [f"- {p.text(xy.y)}" for p in xy.points]
        return lines + [""]
    verdicts = verdict_lines(page.nodes)
    if verdicts:
        return ["**Head-to-head verdict(s):**", ""] + [f"- {v}" for v in verdicts] + [""]
    return []


def fig_md(page: Page, name: str, alt: str) -> list[str]:
    if name in page.figs:
        return [f"![{alt}]({fig_src(page.figs[name])})", ""]
    return [f"_{page.missing[name]}_", ""]


def markdown_page(page: Page) -> str:
    q, frame = page.q, page.frame
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    evidence = ", ".join(f"#{e}" for e in q.evidence) or "none"
    lines = [f"# Question {q.id}: {q.text}", "", "## Answer", "",
             q.answer or "_No answer yet: the search is still running or stopped without one._", ""]
    lines += answer_figure_md(page)
    lines += [f"*Evidence (nodes):* {evidence}", "", f"*Strongest node so far:* {best_text(frame)}", "",
              f"*Status:* {status_text(q, frame)} · *generated:* {now}", "",
              f"*Sandbox:* {sandbox_line(frame)}", ""]
    if q.evidence:
        ev = frame[frame["node"].isin(q.evidence)]
        lines += ["### Evidence nodes", "", to_markdown(table_frame(ev)), ""]
    lines += agent_sections_md(page)
    lines += ["## Experiment tree", "", f"![tree]({fig_src(page.figs['tree'])})", "",
              "Browse it: [tree.html](tree.html) (click a node for its details).", "",
              "## Strength of every node", ""] + fig_md(page, "strength", "strength")
    lines += ["## Learning curves", ""] + fig_md(page, "curves", "learning curves")
    for nid, p in page.run_figs.items():
        lines += [f"### Node #{nid}", "", f"![node {nid}]({fig_src(p)})", ""]
    lines += ["## Reference ladder", ""] + fig_md(page, "ladder", "ladder")
    if page.ladder:
        lines += ["| rung | Elo | 95% CI |", "|---|---|---|"]
        lines += [f"| {k} | {v['elo']:.0f} | {ci_text(v['ci95'])} |" for k, v in page.ladder.items()]
        lines.append("")
    lines += ["## Nodes", "", to_markdown(table_frame(frame)), ""]
    return "\n".join(lines)


def agent_sections_md(page: Page) -> list[str]:
    """Health flags, tracks, and forecast calibration (issue 16)."""
    lines: list[str] = []
    health = health_lines(page.nodes)
    if health:
        lines += ["## Health checks", ""] + [f"- {x}" for x in health] + [""]
    if page.tracks:
        lines += ["## Tracks", ""] + ["    " + x for x in track_text(page.tracks)] + [""]
    lines += ["## Forecast calibration", ""] + fig_md(page, "calibration", "forecast calibration")
    lines += table_markdown(calibration_table(page.nodes))
    return lines
