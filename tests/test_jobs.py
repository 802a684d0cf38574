"""The one launcher (autoresearch/jobs): its entry points and the one policy for orphaned jobs.

The local and SLURM launches themselves are tested in test_sandbox.py, test_cluster_launch.py and
(on a real cluster) test_slurm_real.py; this file holds what is common to them: `jobs.start`'s
contract, `jobs.reclaim` (what the loop's --resume and the sweep's stale-trial clean-up both do),
and that no module builds a workspace path by hand.
"""
from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

from autoresearch import jobs
from autoresearch.agent_config import SlurmConfig
from experiment_tree.workspace import Workspace
from tests.fakerepo import JOB_MODULE, behaviour_patch, make_fake_repo
from tests.launch import start_job
# the fake sbatch/sacct/scancel (test_cluster_launch needs submitit, and so do these)
from tests.test_cluster_launch import fake_slurm, set_state  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def repo(tmp_path) -> Path:
    return make_fake_repo(tmp_path / "repo")


def wait_for(cond, timeout: float, what: str) -> None:
    end = time.time() + timeout
    while not cond():
        if time.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_start_names_the_launchers_and_asks_a_cluster_launch_for_its_folder(repo, tmp_path):
    ws = Workspace(tmp_path / "ws")
    spec = jobs.JobSpec(repo_root=repo, node_id=1, run_dir=ws.run_dir(1), worktree=ws.worktree(1))
    with pytest.raises(ValueError, match="local, slurm, submitit-local"):
        jobs.start(spec, "kubernetes")
    with pytest.raises(ValueError, match="submitit_dir"):
        jobs.start(spec, "submitit-local")
    assert not ws.worktree(1).exists(), "nothing was prepared for a launch that cannot happen"


def test_reclaim_kills_a_local_orphan_and_removes_its_worktree(repo, tmp_path):
    """The harness died (kill -9) while a local job ran: the job lives on in its own session.
    reclaim kills it by its pid file and frees the worktree; the caller re-queues the node."""
    ws = Workspace(tmp_path / "ws")
    job = start_job(repo, 1, [], behaviour_patch("hang"), ws.run_dir(1), 600, job_module=JOB_MODULE)
    wait_for(lambda: (ws.run_dir(1) / "env.json").exists(), 60, "the job to start")
    assert ws.worktree(1).exists()
    found = jobs.reclaim(ws.run_dir(1), ws.worktree(1), repo, follow=True)
    assert found.killed and found.ended and found.interrupted and found.job is None
    assert "orphaned job was killed" in found.describe()
    assert not ws.worktree(1).exists() and not (ws.run_dir(1) / jobs.spec.PID_NAME).exists()
    assert job.proc.wait(timeout=30) is not None, "the process group is gone"
    assert job.wait().status == "crash"


def test_reclaim_reports_a_job_that_finished_while_nobody_watched(repo, tmp_path):
    ws = Workspace(tmp_path / "ws")
    job = start_job(repo, 2, ["seed=1"], None, ws.run_dir(2), 60, job_module=JOB_MODULE)
    job.proc.wait(timeout=60)        # exited; its handle never polled (the harness was down)
    found = jobs.reclaim(ws.run_dir(2), ws.worktree(2), repo, follow=True)
    assert not found.killed and not found.interrupted
    assert found.summary["status"] == "ok"
    assert not ws.worktree(2).exists()
    job.wait()


def test_reclaim_follows_a_slurm_job_for_the_loop_and_scancels_it_for_the_sweep(
        repo, tmp_path, fake_slurm):
    """One record, two callers: `research run --resume` follows the job (it went on on the
    cluster); a sweep worker that failed the trial as stale scancels it and frees the worktree."""
    ws = Workspace(tmp_path / "ws")
    job = start_job(repo, 3, [], None, ws.run_dir(3), 600, launcher="slurm",
                    slurm=SlurmConfig(poll_s=0, rc_grace_s=0), job_module=JOB_MODULE)
    set_state(fake_slurm, job.job_id, "RUNNING")
    followed = jobs.reclaim(ws.run_dir(3), ws.worktree(3), repo, follow=True)
    assert followed.job is not None and followed.job.job_id == job.job_id
    assert not followed.interrupted and ws.worktree(3).exists(), "a followed job keeps its worktree"
    assert followed.job.poll() is None
    given_up = jobs.reclaim(ws.run_dir(3), ws.worktree(3), repo, follow=False,
                            reason="its trial was failed as stale")
    assert given_up.cancelled == (job.job_id, "CANCELLED") and given_up.ended
    assert given_up.interrupted and not ws.worktree(3).exists()
    assert job.job_id in (fake_slurm / "scancel.log").read_text()
    assert f"SLURM job {job.job_id} was cancelled" in given_up.describe()


# the workspace's folders and files: only experiment_tree/workspace.py may join them to a path
WORKSPACE_NAMES = {"runs", "worktrees", "start", "ratings", "referee", "candidates", "checks",
                   "submitit", "report", "tree.db", "optuna-journal.log", ".lock"}


def hand_built_paths(source: str) -> list[str]:
    """`<path> / "worktrees"` and the like: a workspace path built by hand."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and side.value in WORKSPACE_NAMES:
                    out.append(f"line {node.lineno}: {ast.unparse(node)}")
    return out


def test_the_check_catches_a_path_built_by_hand():
    assert hand_built_paths('wt = self.workspace / "worktrees" / str(node.id)')
    assert not hand_built_paths("wt = Workspace(self.workspace).worktree(node.id)")


def test_no_module_builds_a_workspace_path_by_hand():
    found = []
    for pkg in ("autoresearch", "experiment_tree", "reports", "experiments"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if path.relative_to(ROOT).as_posix() == "experiment_tree/workspace.py":
                continue
            found += [f"{path.relative_to(ROOT)} {hit}" for hit in hand_built_paths(path.read_text())]
    assert not found, ("workspace paths built by hand (ask experiment_tree.workspace.Workspace):\n"
                       + "\n".join(found))

