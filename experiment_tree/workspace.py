"""The workspace folder (`--workspace W`, default `./workspace`): `tree.db`, `runs/<node>/`, `report/`."""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from experiment_tree.store import TreeStore

DEFAULT_WORKSPACE = "workspace"
LOCK_NAME = ".lock"     # held (flock) by the one `research run` working in this workspace


class WorkspaceBusy(RuntimeError):
    """Another live `research run` holds the workspace."""


class Workspace:
    """Paths of one workspace; `store()` opens its tree."""

    def __init__(self, path: Path | str | None = None):
        self.root = Path(path if path is not None
                         else os.environ.get("TENGEN_WORKSPACE", DEFAULT_WORKSPACE)).resolve()

    @property
    def tree_db(self) -> Path:
        return self.root / "tree.db"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run_dir(self, node_id: int) -> Path:
        return self.runs_dir / str(int(node_id))

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    def exists(self) -> bool:
        return self.tree_db.exists()

    def store(self, create: bool = True) -> TreeStore:
        """Open the tree; with `create=False` a missing tree is an error that says what to do."""
        if not create and not self.tree_db.exists():
            raise FileNotFoundError(
                f"no experiment tree at {self.tree_db}: run `research run \"QUESTION\"` first, "
                f"or pass --workspace to the folder that holds tree.db")
        self.root.mkdir(parents=True, exist_ok=True)
        return TreeStore(self.tree_db)

    @contextmanager
    def lock(self) -> Iterator[dict]:
        """Hold the workspace for one `research run` (two would kill each other's jobs).

        An exclusive flock on `W/.lock`, which names the holder (pid, host, start time). The
        kernel drops the lock when the holder dies, even by `kill -9`, so a stale file never
        blocks. Raises WorkspaceBusy naming the live holder."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WorkspaceBusy(f"workspace {self.root} is in use by another research run "
                                    f"({describe_holder(path)}); wait for it, stop it, or use "
                                    f"another --workspace") from None
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": time.time()}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
            yield holder
        finally:
            os.close(fd)   # releases the flock

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"


def describe_holder(path: Path) -> str:
    """"pid 123 on host h since 12:00:03" from a lock file (or why it cannot be said)."""
    try:
        h = json.loads(Path(path).read_text())
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(h["started_at"])))
        return f"pid {int(h['pid'])} on {h['host']} since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
