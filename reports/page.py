"""The report's page: what the markdown and the HTML report are both written from (`Page`), and the
sentences and tables both print -- the node table, the strongest node, the status and settings
line, the sandbox line, the head-to-head verdicts and the health flags."""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from experiment_tree.format import comparison_text
from experiment_tree.records import Question
from experiment_tree.suspect import is_suspect, mark
from reports.ladder_elos import Ladder
from reports.xy import XYResult

TABLE_COLUMNS = ["node", "parent", "kind", "status", "verdict", "comparison", "strength", "wall_s",
                 "iterations", "hypothesis", "overrides", "error"]
# settings keys that are bookkeeping, not something a reader set: never printed raw
HIDDEN_SETTINGS_KEYS = ("plan", "start_checkpoint", "job_module", "description")


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


def cell_text(v: Any) -> str:
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
        return cell_text(v).replace("|", "\\|").replace("\n", " ")
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
        cells = "".join(f'<td class="c-{e(k)}">{e(cell_text(v))}</td>' for k, v in d.items())
        rows.append(f'<tr id="row-{d["node"]}" data-status="{e(str(d["status"]))}">{cells}</tr>')
    return (f'<table id="nodes" class="nodes"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def best_text(frame: pd.DataFrame) -> str:
    measured = frame.dropna(subset=["elo"])
    if len(measured):
        r = measured.loc[measured["elo"].idxmax()]
        # the ladder's rating, which has far fewer games than a head-to-head verdict: said, so a
        # reader does not take it for the answer's (head-to-head) numbers above it
        return f"#{r['node']} (ladder {r['strength']}; verdicts come from head-to-head games)"
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


def status_counts(frame: pd.DataFrame) -> str:
    return ", ".join(f"{n} {s}" for s, n in frame["status"].value_counts().items()) or "no nodes"


def duration_text(seconds: float) -> str:
    """Seconds for people: `42 s`, `8.3 min`, `2.5 h`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def round_text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def settings_text(settings: dict) -> str:
    """The question's settings, limits and spending for people: rounded, no Nones, no bookkeeping keys."""
    b = {k: v for k, v in (settings or {}).items() if v is not None and k not in HIDDEN_SETTINGS_KEYS}
    named = {
        "runs": lambda v: f"at most {v} nodes",
        "hours": lambda v: f"at most {round_text(float(v))} h",
        "spent_s": lambda v: f"{duration_text(float(v))} spent",
        "cost_usd": lambda v: f"at most ${float(v):.2f} for the LLM",
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
            parts.append(named[k](v) if k in named else f"{k} {round_text(v)}")
        except (TypeError, ValueError):
            parts.append(f"{k} {v}")
    return ", ".join(parts) or "none"


def status_text(q: Question, frame: pd.DataFrame) -> str:
    text = f"{q.status} · {settings_text(q.settings)} · {len(frame)} nodes ({status_counts(frame)})"
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


def health_lines(nodes: list) -> list[str]:
    """Nodes with a failed health check: suspect (left out of the answer) or explained."""
    return [f"#{n.id}: {mark(n)}" + (" -- left out of the answer until explained"
                                     if is_suspect(n) else "") for n in nodes if mark(n)]


def ci_text(ci: list[float] | None) -> str:
    return f"{ci[0]:.0f} – {ci[1]:.0f}" if ci else ""


def fig_src(path: Path) -> str:
    return f"figures/{path.name}"


def xy_alt(xy: XYResult) -> str:
    return f"x/y figure: {xy.y} against {xy.x_key} with 95% intervals"
