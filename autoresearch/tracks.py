"""Tracks: each proposal opens or continues a named line of inquiry with its aim. A track that
has had `stepback_after` nodes in a row that were not `better`, or `stepback_every` settled
nodes since its last review, is due a step-back review (a separate model call,
autoresearch/proposers/stepback.py) that closes it or continues it with a reason. Also how a proposal's forecast and track land on its node (`record_proposal`, called by
the loop once the proposal is a node).
"""
from __future__ import annotations

from typing import Any

from experiment_tree.records import FAILED_STATUSES as FAILED

SETTLED_NOT_BETTER = ("worse", "inconclusive")


def record_proposal(store: Any, question_id: int, node_id: int, proposal: Any) -> None:
    """Put the proposal's forecast and track on node `node_id`; a new track name opens a track."""
    fields: dict[str, Any] = {}
    forecast = getattr(proposal, "forecast", None)
    if forecast is not None:
        fields["forecast"] = forecast.to_json() if hasattr(forecast, "to_json") else dict(forecast)
    name = (getattr(proposal, "track", None) or "").strip()
    if name:
        fields["track_id"] = open_or_continue(store, question_id, name,
                                              getattr(proposal, "track_aim", None) or "")
    if fields:
        store.update_node(node_id, **fields)


def open_or_continue(store: Any, question_id: int, name: str, aim: str = "") -> int:
    """The id of the track `name` (opened with `aim` if new). A closed track is reopened: the
    proposer chose to continue it, and the step-back note that closed it stays in its history."""
    for t in store.tracks(question_id):
        if t.name == name:
            if t.status == "closed":
                store.update_track(t.id, status="open", note={"text": "reopened by a new proposal",
                                                              "decision": "continue"})
            return t.id
    return store.add_track(question_id, name, aim)


def outcome(node: Any) -> str | None:
    """A node's settled outcome for a track: better | not-better, or None while it is open."""
    if node.verdict == "better":
        return "better"
    if node.verdict in SETTLED_NOT_BETTER or node.status in FAILED:
        return "not-better"
    return None


def due_for_review(track: Any, nodes: list[Any], after: int) -> list[Any]:
    """The trailing run of settled, not-better nodes of `track` created after its last review,
    if at least `after` long (else []). Nodes still running end the look-back: the run must be
    of nodes whose outcome is known and consecutive."""
    if after <= 0 or track.status != "open":
        return []
    mine = [n for n in nodes if n.track_id == track.id and n.kind != "rerun"
            and n.id > track.reviewed_through and n.status != "interrupted"]
    run: list[Any] = []
    for n in reversed(mine):
        o = outcome(n)
        if o != "not-better":
            if o is None and not run:
                continue          # still running at the end of the track: look past it
            break
        run.append(n)
    return list(reversed(run)) if len(run) >= after else []


def due_periodic(track: Any, nodes: list[Any], every: int) -> list[Any]:
    """The settled nodes of `track` since its last review, when there are at least `every` of
    them, whatever their outcomes (the "every K nodes" step-back; [] otherwise)."""
    if every <= 0 or track.status != "open":
        return []
    mine = [n for n in nodes if n.track_id == track.id and n.kind != "rerun"
            and n.id > track.reviewed_through and n.status != "interrupted" and outcome(n) is not None]
    return mine if len(mine) >= every else []


def tracks_text(store: Any, question_id: int, nodes: list[Any] | None = None) -> str:
    """The tracks for the model: name, status, aim, their nodes and outcomes, review notes."""
    tracks = store.tracks(question_id)
    if not tracks:
        return ("Tracks: none yet. Each proposal names a track (a line of inquiry) and, when it "
                "opens a new one, its aim.")
    nodes = nodes if nodes is not None else store.nodes(question_id)
    lines = ["Tracks:"]
    for t in tracks:
        mine = [n for n in nodes if n.track_id == t.id]
        seq = ", ".join(f"#{n.id} {n.verdict or n.status}" for n in mine) or "no nodes yet"
        lines.append(f"- {t.name} [{t.status}] aim: {t.aim or '(none given)'}; nodes: {seq}")
        for note in t.notes:
            lines.append(f"    step-back after node {note.get('node_id', '?')}: "
                         f"{note.get('decision', '')} -- {note.get('reason', '')} "
                         f"{note.get('text', '')}".rstrip())
    return "\n".join(lines)
