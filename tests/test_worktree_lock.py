"""Worktrees added and removed by several processes at once (sweep workers) in one repository.

Without jobs.worktrees.worktree_lock, a `git worktree prune`/`add` of one process racing another's `add`
fails it ("failed to read .git/worktrees/N/commondir"): seen with two SLURM sweep workers, and
reproduced here in a few seconds by four processes.
"""
from __future__ import annotations

import multiprocessing
from pathlib import Path

from autoresearch.jobs import worktrees
from tests.fakerepo import make_fake_repo

CYCLES = 15   # add + remove per process; without the lock 4 x 15 failed every try (3 of 3)


def add_and_remove(args: tuple[str, str, int]) -> str:
    repo, root, k = args
    try:
        for i in range(CYCLES):
            path = Path(root) / f"w{k}_{i}"
            wt, _ = worktrees.make_worktree(Path(repo), path, f"p{k}/{i}")
            assert (wt / "fakejob.py").exists()
            worktrees.remove_worktree(Path(repo), wt)
        return "ok"
    except Exception as e:   # noqa: BLE001 - returned so the test shows which git command failed
        return f"{type(e).__name__}: {e}"


def test_worktrees_from_four_processes_at_once(tmp_path):
    repo = make_fake_repo(tmp_path / "repo")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        out = pool.map(add_and_remove, [(str(repo), str(tmp_path / "wt"), k) for k in range(4)])
    assert out == ["ok"] * 4, out
    assert not list((tmp_path / "wt").glob("*"))
