"""The experiment tree: questions and nodes in SQLite (DESIGN.md, "Contracts").

One file (`W/tree.db`) in WAL mode, shared by the agent and its workers. Every write runs in a
`BEGIN IMMEDIATE` transaction, so two writers queue on SQLite's lock (with a busy timeout) instead
of failing, and readers never block. The schema carries a version; opening an older database
applies the missing migrations in order, inside one transaction each (experiment_tree/schema.py).
The records it returns (Node, Question, Track) are in experiment_tree/records.py.

The same SQL runs on PostgreSQL (DESIGN.md, "Scale") apart from the pragmas and
`INTEGER PRIMARY KEY` autoincrement.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from experiment_tree.records import (KINDS, QUESTION_STATUSES, STATUSES, TRACK_STATUSES,
                                     VERDICTS, Node, Question, Track, node_from_row, patch_sha256,
                                     question_from_row, track_from_row)
from experiment_tree.schema import connect, migrate

# Fields `update_node` accepts, with how each is stored.
_JSON_NODE_FIELDS = {"metrics", "overrides", "forecast"}
UPDATABLE_NODE_FIELDS = ("status", "run_dir", "metrics", "verdict", "verdict_test", "notes",
                         "error", "log_tail", "wandb_path", "sandbox", "started_at", "finished_at", "tokens",
                         "cost_usd", "command", "hypothesis", "forecast", "track_id")
UPDATABLE_QUESTION_FIELDS = ("status", "settings", "answer", "evidence", "finished_at")


class TreeStore:
    """Questions and nodes of the experiment tree, in one SQLite file safe across processes.

    A store opens one connection per process and thread (SQLite connections must not cross a
    fork), so one `TreeStore` may be shared by a parent and the workers it forks.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        migrate(self._conn())

    # -- connection and transactions -------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = connect(self.path)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE takes the write lock up front (no upgrade
        deadlock between two readers that both decide to write)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None

    def __enter__(self) -> "TreeStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def schema_version(self) -> int:
        row = self._conn().execute("SELECT version FROM schema_version").fetchone()
        return row[0] if row else 0

    # -- questions ---------------------------------------------------------------------------
    def add_question(self, text: str, settings: dict[str, Any] | None = None) -> int:
        if not text or not text.strip():
            raise ValueError("a question needs text, e.g. 'does a 10% no-resign fraction help?'")
        now = time.time()
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO questions (text, settings, status, created_at, updated_at) "
                "VALUES (?, ?, 'open', ?, ?)", (text, json.dumps(settings or {}), now, now))
            return int(cur.lastrowid)

    def get_question(self, question_id: int) -> Question:
        row = self._conn().execute("SELECT * FROM questions WHERE id = ?",
                                   (question_id,)).fetchone()
        if row is None:
            raise KeyError(f"no question {question_id} in {self.path} "
                           f"(known: {[q.id for q in self.questions()]})")
        return question_from_row(row)

    def questions(self) -> list[Question]:
        rows = self._conn().execute("SELECT * FROM questions ORDER BY id").fetchall()
        return [question_from_row(r) for r in rows]

    def update_question(self, question_id: int, **fields_: Any) -> Question:
        bad = set(fields_) - set(UPDATABLE_QUESTION_FIELDS)
        if bad:
            raise TypeError(f"update_question: unknown field(s) {sorted(bad)}; "
                            f"allowed: {UPDATABLE_QUESTION_FIELDS}")
        if "status" in fields_ and fields_["status"] not in QUESTION_STATUSES:
            raise ValueError(f"question status must be one of {QUESTION_STATUSES}, "
                             f"got {fields_['status']!r}")
        values = {k: (json.dumps(v) if k in ("settings", "evidence") else v)
                  for k, v in fields_.items()}
        values["updated_at"] = time.time()
        with self._write() as c:
            self._require_question(c, question_id)
            sets = ", ".join(f"{k} = ?" for k in values)
            c.execute(f"UPDATE questions SET {sets} WHERE id = ?", (*values.values(), question_id))
        return self.get_question(question_id)

    def set_answer(self, question_id: int, answer: str, evidence: list[int],
                   status: str = "answered") -> Question:
        """Record the conclusion and the nodes that support it (they must be in the question)."""
        evidence = [int(e) for e in evidence]
        known = {n.id for n in self.nodes(question_id)}
        missing = [e for e in evidence if e not in known]
        if missing:
            raise ValueError(f"evidence nodes {missing} are not nodes of question {question_id} "
                             f"(its nodes: {sorted(known)})")
        return self.update_question(question_id, answer=answer, evidence=evidence, status=status,
                                    finished_at=time.time())

    def add_usage(self, question_id: int, tokens: int = 0, cost_usd: float = 0.0,
                  node_id: int | None = None) -> None:
        """Add LLM spending to the question's totals (and to a node's, when one caused it)."""
        with self._write() as c:
            self._require_question(c, question_id)
            c.execute("UPDATE questions SET tokens = tokens + ?, cost_usd = cost_usd + ?, "
                      "updated_at = ? WHERE id = ?",
                      (int(tokens), float(cost_usd), time.time(), question_id))
            if node_id is not None:
                c.execute("UPDATE nodes SET tokens = tokens + ?, cost_usd = cost_usd + ? "
                          "WHERE id = ?", (int(tokens), float(cost_usd), node_id))

    # -- nodes -------------------------------------------------------------------------------
    def add_node(self, question_id: int, parent_id: int | None, kind: str, hypothesis: str,
                 overrides: list[str] | None = None, patch: str | None = None, seed: int = 0,
                 command: str | None = None, status: str = "pending") -> int:
        if kind not in KINDS:
            raise ValueError(f"node kind must be one of {KINDS}, got {kind!r}")
        if status not in STATUSES:
            raise ValueError(f"node status must be one of {STATUSES}, got {status!r}")
        overrides = [str(o) for o in (overrides or [])]
        now = time.time()
        with self._write() as c:
            self._require_question(c, question_id)
            if parent_id is not None:
                row = c.execute("SELECT question_id FROM nodes WHERE id = ?",
                                (parent_id,)).fetchone()
                if row is None:
                    raise KeyError(f"parent node {parent_id} does not exist")
                if row[0] != question_id:
                    raise ValueError(f"parent node {parent_id} belongs to question {row[0]}, "
                                     f"not {question_id}")
            cur = c.execute(
                "INSERT INTO nodes (question_id, parent_id, created_at, updated_at, kind, "
                "hypothesis, overrides, patch, patch_sha256, command, status, seed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (question_id, parent_id, now, now, kind, hypothesis or "", json.dumps(overrides),
                 patch, patch_sha256(patch), command, status, int(seed)))
            return int(cur.lastrowid)

    def update_node(self, node_id: int, **fields_: Any) -> Node:
        bad = set(fields_) - set(UPDATABLE_NODE_FIELDS)
        if bad:
            raise TypeError(f"update_node: unknown field(s) {sorted(bad)}; "
                            f"allowed: {UPDATABLE_NODE_FIELDS}")
        if "status" in fields_ and fields_["status"] not in STATUSES:
            raise ValueError(f"node status must be one of {STATUSES}, got {fields_['status']!r}")
        if fields_.get("verdict") is not None and fields_["verdict"] not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS} or None, "
                             f"got {fields_['verdict']!r}")
        values = {}
        for k, v in fields_.items():
            if k == "forecast":
                v = None if v is None else json.dumps(v, default=float)
            elif k in _JSON_NODE_FIELDS:
                v = json.dumps(v if v is not None else {}, default=float)
            elif k == "run_dir" and v is not None:
                v = str(v)
            values[k] = v
        values["updated_at"] = time.time()
        with self._write() as c:
            if c.execute("SELECT 1 FROM nodes WHERE id = ?", (node_id,)).fetchone() is None:
                raise KeyError(f"no node {node_id} in {self.path}")
            sets = ", ".join(f"{k} = ?" for k in values)
            c.execute(f"UPDATE nodes SET {sets} WHERE id = ?", (*values.values(), node_id))
        return self.get_node(node_id)

    def record_summary(self, node_id: int, summary: dict[str, Any],
                       log_tail: str | None = None) -> Node:
        """Copy a run's `summary.json` (status, metrics, error) onto its node."""
        status = summary.get("status", "crash")
        if status not in STATUSES:
            status = "invalid"
        fields_: dict[str, Any] = {"status": status, "metrics": summary.get("metrics") or {},
                                   "error": summary.get("error"),
                                   "finished_at": summary.get("finished_at") or time.time()}
        if log_tail is not None:
            fields_["log_tail"] = log_tail
        if summary.get("wandb_path"):
            fields_["wandb_path"] = summary["wandb_path"]
        return self.update_node(node_id, **fields_)

    def get_node(self, node_id: int) -> Node:
        row = self._conn().execute("SELECT * FROM nodes WHERE id = ?", (node_id,)).fetchone()
        if row is None:
            raise KeyError(f"no node {node_id} in {self.path}")
        return node_from_row(row)

    def nodes(self, question_id: int | None = None) -> list[Node]:
        if question_id is None:
            rows = self._conn().execute("SELECT * FROM nodes ORDER BY id").fetchall()
        else:
            rows = self._conn().execute("SELECT * FROM nodes WHERE question_id = ? ORDER BY id",
                                        (question_id,)).fetchall()
        return [node_from_row(r) for r in rows]

    def children(self, node_id: int) -> list[Node]:
        rows = self._conn().execute("SELECT * FROM nodes WHERE parent_id = ? ORDER BY id",
                                    (node_id,)).fetchall()
        return [node_from_row(r) for r in rows]

    def ancestors(self, node_id: int) -> list[Node]:
        """The node's parent, grandparent, ... up to the root (nearest first)."""
        out, node = [], self.get_node(node_id)
        while node.parent_id is not None:
            node = self.get_node(node.parent_id)
            out.append(node)
        return out

    # -- tracks ------------------------------------------------------------------------------
    def add_track(self, question_id: int, name: str, aim: str = "") -> int:
        """Open a track; its name is unique within the question."""
        name = (name or "").strip()
        if not name:
            raise ValueError("a track needs a name, e.g. 'exploration in self-play'")
        now = time.time()
        with self._write() as c:
            self._require_question(c, question_id)
            if c.execute("SELECT 1 FROM tracks WHERE question_id = ? AND name = ?",
                         (question_id, name)).fetchone():
                raise ValueError(f"question {question_id} already has a track named {name!r}")
            cur = c.execute("INSERT INTO tracks (question_id, name, aim, created_at, updated_at) "
                            "VALUES (?, ?, ?, ?, ?)", (question_id, name, aim or "", now, now))
            return int(cur.lastrowid)

    def get_track(self, track_id: int) -> Track:
        row = self._conn().execute("SELECT * FROM tracks WHERE id = ?", (track_id,)).fetchone()
        if row is None:
            raise KeyError(f"no track {track_id} in {self.path}")
        return track_from_row(row)

    def tracks(self, question_id: int) -> list[Track]:
        rows = self._conn().execute("SELECT * FROM tracks WHERE question_id = ? ORDER BY id",
                                    (question_id,)).fetchall()
        return [track_from_row(r) for r in rows]

    def update_track(self, track_id: int, *, status: str | None = None,
                     note: dict[str, Any] | None = None, aim: str | None = None,
                     reviewed_through: int | None = None) -> Track:
        """Change a track's status or aim, append a note, move its review mark."""
        if status is not None and status not in TRACK_STATUSES:
            raise ValueError(f"track status must be one of {TRACK_STATUSES}, got {status!r}")
        with self._write() as c:
            row = c.execute("SELECT * FROM tracks WHERE id = ?", (track_id,)).fetchone()
            if row is None:
                raise KeyError(f"no track {track_id} in {self.path}")
            t = track_from_row(row)
            notes = t.notes + ([note] if note else [])
            c.execute("UPDATE tracks SET status = ?, aim = ?, notes = ?, reviewed_through = ?, "
                      "updated_at = ? WHERE id = ?",
                      (status or t.status, t.aim if aim is None else aim,
                       json.dumps(notes, default=str),
                       t.reviewed_through if reviewed_through is None else int(reviewed_through),
                       time.time(), track_id))
        return self.get_track(track_id)

    @staticmethod
    def _require_question(c: sqlite3.Connection, question_id: int) -> None:
        if c.execute("SELECT 1 FROM questions WHERE id = ?", (question_id,)).fetchone() is None:
            raise KeyError(f"no question {question_id}; create one with add_question(text, settings)")
