"""The class of failure a newcomer hit: a clone with nothing beside it, set up the README's way.

The development checkout sits next to a `shared/` folder that no user has; a clone next to it hides
every path that resolves `../shared`. This test clones the repository into an empty temporary
folder, runs `bash setup.sh` (the README's set-up) and then the README's first command from the
clone's own virtualenv (3 nodes: the smallest plan the planner accepts for that question): every
node must finish `ok` with an Elo and its interval, the command must exit 0 and leave a tree and a
report.
"""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from experiment_tree.store import TreeStore

QUESTION = "Which learning rate and c_puct make a tiny 9x9 run strongest?"


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_a_fresh_clone_with_nothing_beside_it_runs_the_readme_command(tmp_path, repo_root):
    clone = tmp_path / "alone" / "tengen"
    subprocess.run(["git", "clone", "-q", str(repo_root), str(clone)], check=True)
    assert sorted(p.name for p in clone.parent.iterdir()) == ["tengen"], "nothing beside the clone"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "ANTHROPIC_API_KEY", "KATAGO_MODEL", "KATAGO_PATH")}
    t = time.monotonic()
    setup = subprocess.run(["bash", "setup.sh"], cwd=clone, env=env, capture_output=True, text=True,
                           timeout=1800)
    setup_s = time.monotonic() - t
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    t = time.monotonic()
    run = subprocess.run([str(clone / ".venv" / "bin" / "research"), "run", QUESTION, "--max-nodes", "3"],
                         cwd=clone, env=env, capture_output=True, text=True, timeout=2400)
    run_s = time.monotonic() - t
    print(f"fresh clone: setup.sh {setup_s:.0f} s, research run (3 nodes) {run_s:.0f} s")
    print(run.stdout[-4000:])
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    ws = clone / "workspace"
    nodes = TreeStore(ws / "tree.db").nodes(1)
    assert len(nodes) >= 3
    for n in nodes:
        assert n.status == "ok", (n.id, n.status, n.error)
        assert isinstance(n.metrics.get("elo"), (int, float)) and len(n.metrics.get("elo_ci95") or []) == 2
    assert (ws / "report" / "index.html").exists() and (ws / "report" / "report.md").exists()
