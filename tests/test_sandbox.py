"""The sandbox runs each node in its own worktree with hard limits; every outcome is a status."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from autoresearch.jobs import local, protect
from autoresearch.jobs.protect import protected_in_patch
from tests.launch import start_job
from tests.fakerepo import JOB_MODULE, PROTECTED_PATCH, behaviour_patch, make_fake_repo


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    return make_fake_repo(tmp_path / "repo")


def launch(repo: Path, ws: Path, node_id: int, overrides=(), patch=None, wall=60.0, mem=0, env=None):
    return start_job(repo, node_id, list(overrides), patch, ws / "runs" / str(node_id),
                     wall_clock_s=wall, mem_limit_mb=mem, extra_env=env or {}, job_module=JOB_MODULE)


def branches(repo: Path) -> str:
    return subprocess.run(["git", "branch", "--list", "node/*"], cwd=repo, capture_output=True,
                          text=True).stdout


def test_ok_job_runs_in_its_own_worktree_without_api_keys(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-secret")
    monkeypatch.setenv("OTHER_API_KEY", "secret2")
    monkeypatch.setenv("WANDB_MODE", "offline")
    ws = tmp_path / "ws"
    res = launch(repo, ws, 1, ["train.lr=0.01", "seed=3"]).wait()
    assert res.status == "ok", res.log_tail
    assert res.summary["metrics"]["elo"] > 0
    env = json.loads((ws / "runs/1/env.json").read_text())
    assert "ANTHROPIC_API_KEY" not in env["keys"] and "OTHER_API_KEY" not in env["keys"]
    assert env["WANDB_MODE"] == "offline"
    assert Path(env["cwd"]).resolve() == (ws / "worktrees/1").resolve()
    assert not (ws / "worktrees/1").exists(), "worktree is removed after the run; the branch stays"
    assert "node/1" in branches(repo)


def test_code_patch_is_applied_and_committed_on_the_node_branch(repo, tmp_path):
    ws = tmp_path / "ws"
    base = launch(repo, ws, 1, ["seed=0"]).wait()
    patched = launch(repo, ws, 2, ["seed=0"], patch=behaviour_patch("ok", 250.0)).wait()
    assert patched.status == "ok", patched.log_tail
    assert patched.summary["metrics"]["elo"] == pytest.approx(base.summary["metrics"]["elo"] + 250)
    shown = subprocess.run(["git", "show", "node/2:go_core/learn/fake_behaviour.py"], cwd=repo,
                           capture_output=True, text=True).stdout
    assert "ELO_BONUS = 250.0" in shown
    # the repo's own checkout is untouched
    assert "ELO_BONUS = 0.0" in (repo / "go_core/learn/fake_behaviour.py").read_text()


def test_crash_is_recorded_with_the_traceback(repo, tmp_path):
    res = launch(repo, tmp_path / "ws", 3, patch=behaviour_patch("crash")).wait()
    assert res.status == "crash"
    assert "fake job crashed on purpose" in res.log_tail
    assert "RuntimeError" in res.error
    assert json.loads((tmp_path / "ws/runs/3/summary.json").read_text())["status"] == "crash"


def test_hung_job_is_killed_at_its_limit_and_does_not_block_another(repo, tmp_path):
    ws = tmp_path / "ws"
    hung = launch(repo, ws, 4, patch=behaviour_patch("hang"), wall=3.0)
    quick = launch(repo, ws, 5, ["fake.sleep=0.5"])
    t0 = time.time()
    quick_done_at = None
    while hung.poll() is None or quick.poll() is None:
        if quick.poll() is not None and quick_done_at is None:
            quick_done_at = time.time() - t0
        time.sleep(0.1)
    assert quick.wait().status == "ok"
    assert quick_done_at is not None and quick_done_at < 3.0, "the quick job finished while the other hung"
    res = hung.wait()
    assert res.status == "timeout" and "wall-clock limit of 3 s" in res.error
    pgid = hung.pid
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)


def test_bad_override_is_invalid_with_hydras_message(repo, tmp_path):
    res = launch(repo, tmp_path / "ws", 6, ["bad.key=1"]).wait()
    assert res.status == "invalid"
    assert "Could not override 'bad.key'" in res.error


def test_protected_patch_is_refused_before_anything_runs(repo, tmp_path):
    ws = tmp_path / "ws"
    res = launch(repo, ws, 7, patch=PROTECTED_PATCH).wait()
    assert res.status == "refused"
    assert "go_core/game/board.py" in res.error
    assert not (ws / "runs/7/env.json").exists(), "nothing ran"
    assert "node/7" not in branches(repo)


def test_patch_that_does_not_apply_is_invalid_with_gits_message(repo, tmp_path):
    bad = behaviour_patch("crash").replace('-BEHAVIOUR = "ok"', '-BEHAVIOUR = "nope"')
    res = launch(repo, tmp_path / "ws", 8, patch=bad).wait()
    assert res.status == "invalid"
    assert "git apply --check" in res.error and "patch does not apply" in res.error


def test_memory_limit_turns_a_memory_hog_into_a_crash(repo, tmp_path):
    res = launch(repo, tmp_path / "ws", 9, ["fake.mode=oom"], mem=600).wait()
    assert res.status == "crash"
    assert "MemoryError" in res.log_tail


def test_protected_paths_cover_renames_globs_and_dot_segments():
    rename = ("diff --git a/x.py b/conf/rating/ladder.yaml\nsimilarity index 90%\n"
              "rename from x.py\nrename to conf/rating/ladder.yaml\n")
    assert protected_in_patch(rename) == ["conf/rating/ladder.yaml"]
    assert protect.is_protected("./go_core/arena/elo.py")
    for ladder_part in ("rungs", "calibration", "rating_walk"):   # the ladder, split in three
        assert protect.is_protected(f"go_core/arena/{ladder_part}.py")
    for match_part in ("match", "seats"):    # the game loop and the engines' seats (issue 15)
        assert protect.is_protected(f"go_core/arena/{match_part}.py")
    assert protect.is_protected("go_core/../experiments/rate_checkpoint.py")
    assert not protect.is_protected("go_core/learn/mcts.py")
    assert protected_in_patch(behaviour_patch()) == []


def test_protected_hashes_detect_a_changed_file(repo):
    before = protect.protected_hashes(repo)
    assert set(before) == {"go_core/game/board.py", "conf/rating/default.yaml"}
    (repo / "conf/rating/default.yaml").write_text("games: 1\n")
    after = protect.protected_hashes(repo)
    assert before["conf/rating/default.yaml"] != after["conf/rating/default.yaml"]


def test_kill_orphan_ends_a_job_left_by_a_killed_loop(repo, tmp_path):
    ws = tmp_path / "ws"
    job = launch(repo, ws, 10, patch=behaviour_patch("hang"), wall=600)
    time.sleep(0.5)
    assert (ws / "runs/10/job.pid").exists()
    assert local.kill_orphan(ws / "runs/10")
    assert job.wait().status == "crash"  # the group died; no summary -> crash


def test_two_workspaces_on_one_repo_do_not_collide_on_branch_names(repo, tmp_path):
    a = launch(repo, tmp_path / "wsA", 1, patch=behaviour_patch("hang"), wall=60)
    b = launch(repo, tmp_path / "wsB", 1, ["fake.sleep=0"])
    res = b.wait()
    a.kill("test over")
    a.wait()
    assert res.status == "ok", res.error
    assert res.branch.startswith("node/1-") and a.branch == "node/1"
