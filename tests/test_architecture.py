"""Each folder imports only what docs/architecture.md ("Folders and what each may import") allows.

The referee's boundary rests on this: the rules (`go_core/game`) import nothing else of the
project, the learner (`go_core/learn`) never imports the referee (`go_core/arena`), and the
referee reaches the learner only by name inside a candidate's own process (players.py).
Every import statement counts, the lazy ones inside functions included.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("go_core/game", "go_core/learn", "go_core/arena", "experiments", "autoresearch",
           "experiment_tree", "reports")

# folder -> the project modules (dotted prefixes) it may import from other folders
ALLOWED: dict[str, tuple[str, ...]] = {
    "go_core/game": (),
    "go_core/learn": ("go_core.game",),
    # rate.py reads the rating group through experiments.rate_checkpoint.as_rating_config (both pinned)
    "go_core/arena": ("go_core.game", "experiments.rate_checkpoint"),
    "experiments": ("go_core.game", "go_core.learn", "go_core.arena"),
    "autoresearch": ("experiments", "experiment_tree", "go_core", "reports.report"),
    "experiment_tree": ("experiments.rundir", "go_core.arena.stats"),
    "reports": ("experiment_tree", "experiments.rundir", "go_core.arena.stats",
                "autoresearch.planner.plan", "autoresearch.forecast"),
}


def _folder(module: str) -> str | None:
    parts = module.split(".")
    for f in FOLDERS:
        if parts[:f.count("/") + 1] == f.split("/"):
            return f
    return None


def imports_across_folders() -> list[tuple[str, str, str]]:
    """(file, its folder, the module it imports) for every import of another folder's module."""
    out = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules = [node.module]
                else:
                    continue
                for m in modules:
                    target = _folder(m)
                    if target is not None and target != folder:
                        out.append((str(path.relative_to(ROOT)), folder, m))
    return out


def violations(found: list[tuple[str, str, str]]) -> list[str]:
    return [f"{path} imports {m}" for path, folder, m in found
            if not any(m == a or m.startswith(a + ".") for a in ALLOWED[folder])]


def test_every_folder_imports_only_what_the_architecture_allows():
    found = imports_across_folders()
    assert any(f == "go_core/learn" for _, f, _ in found)   # the walk sees the imports at all
    bad = violations(found)
    assert not bad, "imports across the boundaries of docs/architecture.md:\n" + "\n".join(bad)


def test_the_check_catches_a_learner_that_imports_the_referee(tmp_path, monkeypatch):
    learn = tmp_path / "go_core" / "learn"
    learn.mkdir(parents=True)
    (learn / "cheat.py").write_text("def f():\n    from go_core.arena.stats import Z95\n")
    for folder in FOLDERS:
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = imports_across_folders()
    assert found == [("go_core/learn/cheat.py", "go_core/learn", "go_core.arena.stats")]
    assert violations(found) == ["go_core/learn/cheat.py imports go_core.arena.stats"]
