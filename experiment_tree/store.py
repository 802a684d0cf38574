"""The experiment tree: questions and nodes in SQLite (DESIGN.md, "Contracts").

One file (`W/tree.db`) in WAL mode, shared by the agent and its workers. Every write runs in a
`BEGIN IMMEDIATE` transaction, so two writers queue on SQLite's lock (with a busy timeout) instead
of failing, and readers never block. The schema carries a version; opening an older database
applies the missing migrations in order, inside one transaction each.

The same SQL runs on PostgreSQL (DESIGN.md, "Scale") apart from the pragmas and
`INTEGER PRIMARY KEY` autoincrement.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

KINDS = ("baseline", "config", "code", "sweep-trial", "rerun")
STATUSES = ("pending", "running", "ok", "crash", "timeout", "invalid", "pruned", "refused",
            "interrupted")
#: Statuses after which a node will not run again.
FINISHED_STATUSES = ("ok", "crash", "timeout", "invalid", "pruned", "refused", "interrupted")
VERDICTS = ("better", "worse", "inconclusive")
QUESTION_STATUSES = ("open", "running", "answered", "budget-exhausted", "interrupted", "failed")

BUSY_TIMEOUT_MS = 60_000  # a writer waits this long for another writer's transaction to end


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
    """A research question, its budget, and the answer the agent reached."""
    id: int
    text: str
    budget: dict[str, Any]
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


# Ordered migrations: MIGRATIONS[i] takes a database at version i to version i + 1.
MIGRATIONS: list[list[str]] = [
    # 1: the tree as DESIGN.md first described it.
    [
        """CREATE TABLE questions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            text TEXT NOT NULL,
            budget TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'open',
            answer TEXT,
            created_at REAL NOT NULL)""",
        """CREATE TABLE nodes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            question_id INTEGER NOT NULL REFERENCES questions(id),
            parent_id INTEGER REFERENCES nodes(id),
            created_at REAL NOT NULL,
            kind TEXT NOT NULL,
            hypothesis TEXT NOT NULL DEFAULT '',
            overrides TEXT NOT NULL DEFAULT '[]',
            patch TEXT,
            patch_sha256 TEXT,
            command TEXT,
            run_dir TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            metrics TEXT NOT NULL DEFAULT '{}',
            verdict TEXT,
            notes TEXT,
            seed INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX nodes_question ON nodes(question_id)",
        "CREATE INDEX nodes_parent ON nodes(parent_id)",
    ],
    # 2: what a run left behind and when; the statistical test behind a verdict; W&B run path.
    [
        "ALTER TABLE nodes ADD COLUMN verdict_test TEXT",
        "ALTER TABLE nodes ADD COLUMN error TEXT",
        "ALTER TABLE nodes ADD COLUMN log_tail TEXT",
        "ALTER TABLE nodes ADD COLUMN wandb_path TEXT",
        "ALTER TABLE nodes ADD COLUMN started_at REAL",
        "ALTER TABLE nodes ADD COLUMN finished_at REAL",
        "ALTER TABLE nodes ADD COLUMN updated_at REAL",
    ],
    # 3: LLM spending per node and per question; the answer's evidence.
    [
        "ALTER TABLE nodes ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE nodes ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0",
        "ALTER TABLE questions ADD COLUMN evidence TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE questions ADD COLUMN finished_at REAL",
        "ALTER TABLE questions ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE questions ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0",
        "ALTER TABLE questions ADD COLUMN updated_at REAL",
    ],
    # 4: how a node's job was fenced in: "bwrap", or "none: <why>" (shown in the report)
    [
        "ALTER TABLE nodes ADD COLUMN sandbox TEXT",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)

# Fields `update_node` accepts, with how each is stored.
_JSON_NODE_FIELDS = {"metrics", "overrides"}
UPDATABLE_NODE_FIELDS = ("status", "run_dir", "metrics", "verdict", "verdict_test", "notes",
                         "error", "log_tail", "wandb_path", "sandbox", "started_at", "finished_at", "tokens",
                         "cost_usd", "command", "hypothesis")
UPDATABLE_QUESTION_FIELDS = ("status", "budget", "answer", "evidence", "finished_at")


def patch_sha256(patch: str | None) -> str | None:
    """The hash a node's patch is known by (None for no patch or an empty one)."""
    if not patch or not patch.strip():
        return None
    return hashlib.sha256(patch.encode()).hexdigest()


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the database to `target`, one migration per transaction; returns the new version."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            version = row[0] if row else 0
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"tree.db has schema version {version}, newer than this code's "
                    f"{SCHEMA_VERSION}: update Tengen (git pull) or use another --workspace")
            if version >= target:
                conn.execute("COMMIT")
                return version
            for stmt in MIGRATIONS[version]:
                conn.execute(stmt)
            if row:
                conn.execute("UPDATE schema_version SET version = ?", (version + 1,))
            else:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version + 1,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN ourselves), WAL, with a busy timeout."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise RuntimeError(f"could not put {path} in WAL mode (got {mode!r}); "
                           "is the workspace on a network file system? use a local disk")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


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
    def add_question(self, text: str, budget: dict[str, Any] | None = None) -> int:
        if not text or not text.strip():
            raise ValueError("a question needs text, e.g. 'does a 10% no-resign fraction help?'")
        now = time.time()
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO questions (text, budget, status, created_at, updated_at) "
                "VALUES (?, ?, 'open', ?, ?)", (text, json.dumps(budget or {}), now, now))
            return int(cur.lastrowid)

    def get_question(self, question_id: int) -> Question:
        row = self._conn().execute("SELECT * FROM questions WHERE id = ?",
                                   (question_id,)).fetchone()
        if row is None:
            raise KeyError(f"no question {question_id} in {self.path} "
                           f"(known: {[q.id for q in self.questions()]})")
        return _question(row)

    def questions(self) -> list[Question]:
        rows = self._conn().execute("SELECT * FROM questions ORDER BY id").fetchall()
        return [_question(r) for r in rows]

    def update_question(self, question_id: int, **fields_: Any) -> Question:
        bad = set(fields_) - set(UPDATABLE_QUESTION_FIELDS)
        if bad:
            raise TypeError(f"update_question: unknown field(s) {sorted(bad)}; "
                            f"allowed: {UPDATABLE_QUESTION_FIELDS}")
        if "status" in fields_ and fields_["status"] not in QUESTION_STATUSES:
            raise ValueError(f"question status must be one of {QUESTION_STATUSES}, "
                             f"got {fields_['status']!r}")
        values = {k: (json.dumps(v) if k in ("budget", "evidence") else v)
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
            if k in _JSON_NODE_FIELDS:
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
        return _node(row)

    def nodes(self, question_id: int | None = None) -> list[Node]:
        if question_id is None:
            rows = self._conn().execute("SELECT * FROM nodes ORDER BY id").fetchall()
        else:
            rows = self._conn().execute("SELECT * FROM nodes WHERE question_id = ? ORDER BY id",
                                        (question_id,)).fetchall()
        return [_node(r) for r in rows]

    def children(self, node_id: int) -> list[Node]:
        rows = self._conn().execute("SELECT * FROM nodes WHERE parent_id = ? ORDER BY id",
                                    (node_id,)).fetchall()
        return [_node(r) for r in rows]

    def ancestors(self, node_id: int) -> list[Node]:
        """The node's parent, grandparent, ... up to the root (nearest first)."""
        out, node = [], self.get_node(node_id)
        while node.parent_id is not None:
            node = self.get_node(node.parent_id)
            out.append(node)
        return out

    @staticmethod
    def _require_question(c: sqlite3.Connection, question_id: int) -> None:
        if c.execute("SELECT 1 FROM questions WHERE id = ?", (question_id,)).fetchone() is None:
            raise KeyError(f"no question {question_id}; create one with add_question(text, budget)")


def _loads(text: str | None, default: Any) -> Any:
    if text is None:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return default


def _node(row: sqlite3.Row) -> Node:
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
        cost_usd=d.get("cost_usd") or 0.0, updated_at=d.get("updated_at"))


def _question(row: sqlite3.Row) -> Question:
    d = dict(row)
    return Question(
        id=d["id"], text=d["text"], budget=_loads(d["budget"], {}), status=d["status"],
        created_at=d["created_at"], answer=d["answer"], evidence=_loads(d.get("evidence"), []),
        finished_at=d.get("finished_at"), tokens=d.get("tokens") or 0,
        cost_usd=d.get("cost_usd") or 0.0, updated_at=d.get("updated_at"))
