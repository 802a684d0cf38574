"""The question's nodes grouped by track (a line of inquiry: autoresearch/tracks.py), with each
track's aim and its step-back notes: one structure for the terminal, the HTML page and the report."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from experiment_tree.suspect import mark

NO_TRACK = "(no track)"


@dataclass
class TrackGroup:
    name: str
    status: str                     # open | closed | "" for the nodes of no track
    aim: str
    nodes: list[Any]
    notes: list[str] = field(default_factory=list)   # one line per step-back review


def note_line(note: dict) -> str:
    """A step-back note in one line: after which node, the decision, its reason."""
    parts = [f"after #{note['node_id']}" if note.get("node_id") else "",
             str(note.get("decision") or ""), str(note.get("reason") or note.get("text") or "")]
    text = ": ".join(p for p in parts[:2] if p)
    if parts[2]:
        text += f" -- {parts[2]}"
    if note.get("better_question"):
        text += f" (better question: {note['better_question']})"
    return text


def track_groups(store: Any, question_id: int, nodes: list[Any] | None = None) -> list[TrackGroup]:
    """The tracks in the order opened, then the nodes of no track (baseline, re-runs, planner
    arms before tracks existed); empty when the question has no track."""
    tracks = store.tracks(question_id)
    if not tracks:
        return []
    nodes = nodes if nodes is not None else store.nodes(question_id)
    groups = [TrackGroup(t.name, t.status, t.aim, [n for n in nodes if n.track_id == t.id],
                         [note_line(x) for x in t.notes]) for t in tracks]
    rest = [n for n in nodes if n.track_id is None or n.track_id not in {t.id for t in tracks}]
    if rest:
        groups.append(TrackGroup(NO_TRACK, "", "", rest))
    return groups


def node_brief(n: Any) -> str:
    """`#5 worse` / `#6 ok SUSPECT (symmetry)`: a node inside a track's line."""
    text = f"#{n.id} {n.verdict or n.status}"
    m = mark(n)
    return f"{text} [{m}]" if m else text


def track_text(groups: list[TrackGroup]) -> list[str]:
    """Plain-text lines (terminal and markdown)."""
    lines: list[str] = []
    for g in groups:
        head = g.name + (f" [{g.status}]" if g.status else "")
        lines.append(f"{head}{' -- aim: ' + g.aim if g.aim else ''}")
        lines.append("    nodes: " + (", ".join(node_brief(n) for n in g.nodes) or "none yet"))
        lines += [f"    step-back {x}" for x in g.notes]
    return lines
