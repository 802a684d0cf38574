"""The workspace folder (`--workspace W`, default `./workspace`): `tree.db`, `runs/<node>/`, `report/`."""
from __future__ import annotations

import os
from pathlib import Path

from experiment_tree.store import TreeStore

DEFAULT_WORKSPACE = "workspace"


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

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"
