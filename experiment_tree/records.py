"""The experiment tree's records: a question, a node, a track, the values their fields may take,
and how each is read from its SQLite row (experiment_tree/store.py writes them)."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field, fields
from typing import Any

KINDS = ("baseline", "config", "code", "sweep-trial", "rerun")
STATUSES = ("pending", "running", "ok", "crash", "timeout", "invalid", "pruned", "refused",
            "interrupted")
#: Statuses after which a node will not run again.
FAILED_STATUSES = ("crash", "timeout", "invalid", "refused")   # finished without a usable result
FINISHED_STATUSES = ("ok", "crash", "timeout", "invalid", "pruned", "refused", "interrupted")
VERDICTS = ("better", "worse", "inconclusive")
QUESTION_STATUSES = ("open", "running", "answered", "limit-reached", "interrupted", "failed")


@dataclass
class Node:
    """One experiment: a change relative to its parent, its run and what it showed."""
    id: int
    question_id: int
    parent_id: int | None
    created_at: float
    kind: str
    hypothesis: str
    overrides: list[str] = field(default_factory=list)
    patch: str | None = None
    patch_sha256: str | None = None
    command: str | None = None
    seed: int = 0
    run_dir: str | None = None
    status: str = "pending"
    metrics: dict[str, Any] = field(default_factory=dict)
    verdict: str | None = None
    verdict_test: str | None = None
    notes: str | None = None
    error: str | None = None
    log_tail: str | None = None
    wandb_path: str | None = None
    sandbox: str | None = None             # "bwrap" | "none: <why>" (None: the job never started)
    forecast: dict[str, Any] | None = None  # the proposer's forecast vs the parent (autoresearch/forecast.py)
    track_id: int | None = None            # the line of inquiry it belongs to (tracks table)
    started_at: float | None = None
    finished_at: float | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    updated_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Question:
    """A research question, its settings, and the answer the agent reached.

    `settings` (JSON): what the question was asked with and what its loop keeps -- the board, the
    job budget (`budget`: the work of one node, e.g. "tiny"), the seed, its limits (`runs`,
    `hours`, `cost_usd`: --max-nodes/--max-hours/--max-cost-usd), the time spent, the plan, the
    referee's commit, the shared start."""
    id: int
    text: str
    settings: dict[str, Any]
    status: str
    created_at: float
    answer: str | None = None
    evidence: list[int] = field(default_factory=list)
    finished_at: float | None = None
    tokens: int = 0          # LLM tokens spent on this question (agent calls and nodes)
    cost_usd: float = 0.0    # dollars spent on LLM calls for this question
    updated_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


TRACK_STATUSES = ("open", "closed")


@dataclass
class Track:
    """A line of inquiry of a question: a name, what it aims to find out, and what step-back
    reviews said about it (notes: [{"at": time, "node_id": last node reviewed, "text": ...,
    "decision": "close" | "continue", "reason": ...}])."""
    id: int
    question_id: int
    name: str
    aim: str
    status: str = "open"
    notes: list[dict[str, Any]] = field(default_factory=list)
    reviewed_through: int = 0              # the last node id a step-back review has covered
    created_at: float = 0.0
    updated_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def patch_sha256(patch: str | None) -> str | None:
    """The hash a node's patch is known by (None for no patch or an empty one)."""
    if not patch or not patch.strip():
        return None
    return hashlib.sha256(patch.encode()).hexdigest()



def _loads(text: str | None, default: Any) -> Any:
    if text is None:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return default


def node_from_row(row: sqlite3.Row) -> Node:
    d = dict(row)
    return Node(
        id=d["id"], question_id=d["question_id"], parent_id=d["parent_id"],
        created_at=d["created_at"], kind=d["kind"], hypothesis=d["hypothesis"] or "",
        overrides=_loads(d["overrides"], []), patch=d["patch"], patch_sha256=d["patch_sha256"],
        command=d["command"], seed=d["seed"], run_dir=d["run_dir"], status=d["status"],
        metrics=_loads(d["metrics"], {}), verdict=d["verdict"], verdict_test=d.get("verdict_test"),
        notes=d["notes"], error=d.get("error"), log_tail=d.get("log_tail"),
        wandb_path=d.get("wandb_path"), sandbox=d.get("sandbox"), started_at=d.get("started_at"),
        finished_at=d.get("finished_at"), tokens=d.get("tokens") or 0,
        cost_usd=d.get("cost_usd") or 0.0, updated_at=d.get("updated_at"),
        forecast=_loads(d.get("forecast"), None), track_id=d.get("track_id"))


def track_from_row(row: sqlite3.Row) -> Track:
    d = dict(row)
    return Track(id=d["id"], question_id=d["question_id"], name=d["name"], aim=d["aim"] or "",
                 status=d["status"], notes=_loads(d["notes"], []),
                 reviewed_through=d["reviewed_through"] or 0, created_at=d["created_at"],
                 updated_at=d.get("updated_at"))


def question_from_row(row: sqlite3.Row) -> Question:
    d = dict(row)
    return Question(
        id=d["id"], text=d["text"], settings=_loads(d["settings"], {}), status=d["status"],
        created_at=d["created_at"], answer=d["answer"], evidence=_loads(d.get("evidence"), []),
        finished_at=d.get("finished_at"), tokens=d.get("tokens") or 0,
        cost_usd=d.get("cost_usd") or 0.0, updated_at=d.get("updated_at"))
