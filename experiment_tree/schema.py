"""The tree database's schema: ordered migrations (an older `tree.db` is brought up to date on
open, one transaction per migration) and the connection settings every process uses (WAL,
a busy timeout, foreign keys)."""
from __future__ import annotations

import sqlite3
from pathlib import Path

BUSY_TIMEOUT_MS = 60_000  # a writer waits this long for another writer's transaction to end


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
    # 5: the agent's forecast per node (JSON: diff_elo, interval_80, p_better, by) and tracks:
    # named lines of inquiry with their aim, status and step-back notes (issue 16).
    [
        """CREATE TABLE tracks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            question_id INTEGER NOT NULL REFERENCES questions(id),
            name TEXT NOT NULL,
            aim TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'open',
            notes TEXT NOT NULL DEFAULT '[]',
            reviewed_through INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL)""",
        "CREATE UNIQUE INDEX tracks_question_name ON tracks(question_id, name)",
        "ALTER TABLE nodes ADD COLUMN forecast TEXT",
        "ALTER TABLE nodes ADD COLUMN track_id INTEGER REFERENCES tracks(id)",
    ],
    # 6: one meaning of "budget" (the work of one job): a question's record of what it was asked
    # with is its `settings`; a question stopped by --max-nodes/--max-hours/--max-cost-usd has
    # reached its limit.
    [
        "ALTER TABLE questions RENAME COLUMN budget TO settings",
        "UPDATE questions SET status = 'limit-reached' WHERE status = 'budget-exhausted'",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


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
