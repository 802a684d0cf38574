"""The step-back review: a separate model call, with its own first-principles brief
(stepback.md), on a track whose last nodes were not `better`. Its answer is recorded as a note on
the track, which it closes or continues with a reason.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from autoresearch.tracks import due_for_review, due_periodic

STEPBACK_PATH = Path(__file__).with_name("stepback.md")

RECORD_TOOL: dict[str, Any] = {
    "name": "record_stepback",
    "description": "Record the step-back review of the track and decide its fate.",
    "input_schema": {"type": "object", "properties": {
        "limits": {"type": "string", "description": "what limits the result now"},
        "worth_it": {"type": "string", "description": "is this track still worth it, and why"},
        "better_question": {"type": "string", "description": "the question to ask instead or next"},
        "decision": {"type": "string", "enum": ["close", "continue"]},
        "reason": {"type": "string", "description": "why close or continue"}},
        "required": ["limits", "worth_it", "better_question", "decision", "reason"]}}


def due_reviews(store: Any, question_id: int, after: int, every: int = 0
                ) -> list[tuple[Any, list[Any]]]:
    """(track, the nodes to review) for every open track due a review: `after` nodes in a row
    not better, or else `every` settled nodes since its last review."""
    nodes = store.nodes(question_id)
    out = []
    for t in store.tracks(question_id):
        run = due_for_review(t, nodes, after) or due_periodic(t, nodes, every)
        if run:
            out.append((t, run))
    return out


def review_prompt(track: Any, run: list[Any], context: str) -> str:
    ids = ", ".join(f"#{n.id} ({n.verdict or n.status})" for n in run)
    if all(n.verdict != "better" for n in run):
        why = f"Its last {len(run)} nodes were not better than their parents: {ids}."
    else:
        why = f"Its periodic review is due after {len(run)} nodes since the last one: {ids}."
    return (f"{context}\n\nStep back on the track {track.name!r} (aim: {track.aim or 'none given'}). "
            f"{why} Review it from first principles and record your decision with record_stepback.")


def review_track(client: Any, store: Any, track: Any, run: list[Any], context: str) -> dict[str, Any]:
    """Ask the model for the review (tool use forced) and record it on the track; a reply
    without the tool still marks the run as reviewed, with a note saying so, so the loop does
    not ask again for the same nodes."""
    msg = client.create(
        system=[{"type": "text", "text": STEPBACK_PATH.read_text(),
                 "cache_control": {"type": "ephemeral"}}],
        tools=[RECORD_TOOL], tool_choice={"type": "tool", "name": "record_stepback"},
        messages=[{"role": "user", "content": review_prompt(track, run, context)}])
    args: dict[str, Any] = {}
    for b in msg.content:
        if getattr(b, "type", None) == "tool_use" and b.name == "record_stepback":
            args = dict(b.input or {})
    decision = args.get("decision") if args.get("decision") in ("close", "continue") else "continue"
    note = {"at": time.time(), "node_id": run[-1].id, "nodes": [n.id for n in run],
            "decision": decision,
            "reason": str(args.get("reason") or "the review gave no decision; continued"),
            "limits": str(args.get("limits") or ""), "worth_it": str(args.get("worth_it") or ""),
            "better_question": str(args.get("better_question") or ""),
            "text": (f"limits: {args.get('limits', '')}; worth it: {args.get('worth_it', '')}; "
                     f"ask instead: {args.get('better_question', '')}") if args else ""}
    store.update_track(track.id, status="closed" if decision == "close" else "open", note=note,
                       reviewed_through=run[-1].id)
    return note
