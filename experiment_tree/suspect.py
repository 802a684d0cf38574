"""The `suspect` mark of a node: a failed health check of the referee (autoresearch/health.py),
stored on the node as `metrics.health` = {suspect, flags: [{check, ok, detail}], explained?}.

It is a mark on an `ok` node, not a job status: the node ran and was rated, but something in
how it trained makes its result untrustworthy. A suspect node is shown as such in every view and
kept out of the answer (the answer's evidence, the planner's claims, the x/y figure) until a
person or the agent explains the failed check (`research explain NODE "reason"`); then it counts
again, with the explanation shown next to it.
"""
from __future__ import annotations

import time
from typing import Any


def health_of(node: Any) -> dict[str, Any]:
    """The node's health record (a Node, or its to_dict())."""
    metrics = node.get("metrics") if isinstance(node, dict) else getattr(node, "metrics", None)
    h = (metrics or {}).get("health")
    return h if isinstance(h, dict) else {}


def failed_checks(node: Any) -> list[str]:
    return [f.get("check", "?") for f in health_of(node).get("flags", []) if f.get("ok") is False]


def is_suspect(node: Any) -> bool:
    """A failed health check not yet explained."""
    h = health_of(node)
    return bool(h.get("suspect")) and not h.get("explained")


def explanation(node: Any) -> str | None:
    """The note that explained a node's failed check(s), with who wrote it."""
    e = health_of(node).get("explained")
    return f"{e.get('note', '')} (by {e.get('by', '?')})" if isinstance(e, dict) else None


def mark(node: Any) -> str:
    """A short mark for the views: 'SUSPECT (symmetry)', 'explained: ...', or ''."""
    if is_suspect(node):
        return f"SUSPECT ({', '.join(failed_checks(node))})"
    if health_of(node).get("suspect"):
        return f"failed {', '.join(failed_checks(node))}, explained: {explanation(node)}"
    return ""


def explain(store: Any, node_id: int, note: str, by: str = "user") -> Any:
    """Record why a suspect node's failed checks do not invalidate its result; it counts again."""
    node = store.get_node(node_id)
    metrics = dict(node.metrics or {})
    h = dict(health_of(node))
    if not h.get("suspect"):
        raise ValueError(f"node {node_id} has no failed health check: nothing to explain")
    if not note.strip():
        raise ValueError('give the reason, e.g. research explain 5 "augmentation is off on purpose"')
    h["explained"] = {"note": note.strip(), "by": by, "at": time.time()}
    metrics["health"] = h
    return store.update_node(node_id, metrics=metrics)
