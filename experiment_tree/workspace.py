"""The workspace folder (`--workspace W`, default `./workspace`) and every path under it.

    W/tree.db                 the experiment tree (SQLite)
    W/runs/<node>/            a node's run directory (hydra.run.dir)
    W/worktrees/<node>/       its git worktree while it runs
    W/start/<question>/       the question's starting point (the shared warm start)
    W/ratings/<node>/         what the referee wrote about it (no job can write there)
    W/referee/<question>/     the question's pinned referee (+ <question>-anchors.json, numba-cache/)
    W/candidates/<node>/      a node's code with the pinned referee, as its player imports it
    W/checks/                 throwaway worktrees of investigation commands and health probes
    W/submitit/<job id>/      submitit's pickles and logs of cluster jobs
    W/optuna-journal.log      the sweeps' default Optuna storage
    W/report/                 the report (markdown, HTML, plots)
    W/.lock                   held by the one `research run` working here

Nothing else builds these paths: callers ask the Workspace.
"""
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
JOURNAL_NAME = "optuna-journal.log"   # the sweeps' default Optuna storage (a journal file)
SUBMITIT_FOLDER = "submitit"          # submitit's folder, unless agent slurm.folder names another


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
    def worktrees_dir(self) -> Path:
        return self.root / "worktrees"

    def worktree(self, node_id: int | str) -> Path:
        """The git worktree a node (or "start-q<id>") runs in; removed when its job ends."""
        return self.worktrees_dir / str(node_id)

    def start_dir(self, question_id: int) -> Path:
        """The run directory of a question's starting point (its warm start, trained once)."""
        return self.root / "start" / str(int(question_id))

    @property
    def checks_dir(self) -> Path:
        """Throwaway worktrees of the proposer's investigation commands and the health probes."""
        return self.root / "checks"

    def referee_pin_dir(self, question_id: int) -> Path:
        """The question's pinned referee (autoresearch/referee_pin.py): read-only, hash-checked."""
        return self.root / "referee" / str(int(question_id))

    def anchors_file(self, question_id: int) -> Path:
        """The rung Elos the question started with: every node rated on one scale."""
        return self.root / "referee" / f"{int(question_id)}-anchors.json"

    @property
    def referee_numba_cache(self) -> Path:
        """numba's cache of the referee's processes (the pin itself is read-only)."""
        return self.root / "referee" / "numba-cache"

    def candidate_dir(self, node_id: int) -> Path:
        """A node's committed code with the pinned referee's folders: what its player imports."""
        return self.root / "candidates" / str(int(node_id))

    @property
    def ratings_dir(self) -> Path:
        return self.root / "ratings"

    def rating_dir(self, node_id: int) -> Path:
        """What the referee wrote about a node: outside every run directory, so no job writes it."""
        return self.ratings_dir / str(int(node_id))

    def submitit_dir(self, folder: str = SUBMITIT_FOLDER) -> Path:
        """submitit's folder (agent `slurm.folder`); cluster jobs use `<it>/%j`."""
        return self.root / folder

    @property
    def sweep_journal(self) -> Path:
        """The sweeps' default Optuna storage: a journal file shared by their workers."""
        return self.root / JOURNAL_NAME

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

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
        path = self.lock_path
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
