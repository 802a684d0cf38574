"""Red team: one `research run` per workspace (two would kill each other's jobs), and a pinned
referee that no later change -- to the checkout, to HEAD, or to the pin itself -- can move."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoresearch import run_cli
from tests.fakerepo import FAKE_PROJECT, JOB_MODULE, make_fake_repo

ROOT = Path(__file__).resolve().parents[1]


def args(repo: Path, ws: Path) -> list[str]:
    return ["--workspace", str(ws), "--repo", str(repo), "--job-module", JOB_MODULE,
            "--proposer", "offline", "--sweep", str(FAKE_PROJECT / "fake_sweep.yaml"),
            "--mem-limit-mb", "0", "--no-report", "--max-nodes", "1"]


def test_a_second_research_run_on_a_held_workspace_exits_2_naming_the_holder(tmp_path, capsys):
    repo, ws = make_fake_repo(tmp_path / "repo"), tmp_path / "ws"
    # the holder: another `research run` on the same workspace, busy with a slow baseline
    holder = subprocess.Popen([sys.executable, "-m", "autoresearch.run_cli", "first?",
                               *args(repo, ws), "--set", "fake.sleep=60"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not (ws / "runs/1/job.log").exists() and time.time() < deadline:
            time.sleep(0.1)
        assert (ws / "runs/1/job.log").exists(), "the first research run never started its node"
        assert run_cli.main(["second?", *args(repo, ws)]) == 2
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "in use by another research run" in err
        assert run_cli.main(["--resume", "--question", "1", *args(repo, ws)]) == 2
        assert not (ws / "runs/2").exists(), "the second run started nothing"
    finally:
        holder.kill()
        holder.wait()
    # a dead holder (even kill -9) leaves no lock behind: the next run runs (its one node
    # compares nothing, hence exit 1, not the busy workspace's 2)
    assert run_cli.main(["third?", *args(repo, ws)]) == 1
    assert (ws / "runs" / "2" / "job.log").exists()


def test_pinned_referee_is_read_only_hashed_and_taken_from_the_commit(tmp_path):
    from autoresearch.referee_pin import PinError, changed_vs_pin, pin_referee, verify_pin
    repo = make_fake_repo(tmp_path / "repo")
    start = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                           text=True).stdout.strip()
    # an uncommitted change in the checkout is not what gets pinned
    (repo / "go_core/game/board.py").write_text('RULES = "anything-goes"\n')
    pin = pin_referee(repo, start, tmp_path / "referee/1")
    manifest = verify_pin(pin)
    assert manifest["commit"] == start
    assert "tromp-taylor" in (pin / "go_core/game/board.py").read_text()
    assert set(manifest["files"]) == {"go_core/__init__.py", "go_core/game/board.py",
                                     "conf/rating/default.yaml"}
    mode = (pin / "go_core/game/board.py").stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    # the checkout's changed referee file is seen against the pin, not against HEAD
    assert changed_vs_pin(pin, repo) == ["go_core/game/board.py"]
    # pinning again keeps the same pin (resume); another commit is refused
    assert pin_referee(repo, start, pin) == pin
    # any change to the pin is caught before use
    target = pin / "conf/rating/default.yaml"
    os.chmod(target, 0o644)
    target.write_text("games: 1\n")
    with pytest.raises(PinError, match="changed: conf/rating/default.yaml"):
        verify_pin(pin)
    target.unlink()
    (pin / "go_core/game/extra.py").parent.chmod(0o755)
    (pin / "go_core/game/extra.py").write_text("x = 1\n")
    with pytest.raises(PinError, match="added: go_core/game/extra.py.*removed: conf/rating"):
        verify_pin(pin)


def test_a_worktree_whose_referee_differs_from_the_pin_is_refused(tmp_path):
    from autoresearch.referee_pin import pin_referee
    from tests.launch import start_job
    repo = make_fake_repo(tmp_path / "repo")
    pin = pin_referee(repo, "HEAD", tmp_path / "referee/1")
    # HEAD moves after the question started (as a job that reached git could make it)
    (repo / "conf/rating/default.yaml").write_text("games: 1\n")
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "easier"],
                   cwd=repo, check=True)
    res = start_job(repo, 1, [], None, tmp_path / "ws/runs/1", wall_clock_s=60, mem_limit_mb=0,
                    job_module=JOB_MODULE, referee_pin=pin).wait()
    assert res.status == "refused" and "conf/rating/default.yaml" in res.error


def test_a_changed_engine_config_is_not_reused(tmp_path):
    """The referee's generated KataGo config is checked before reuse: a file edited (or a
    symlink planted) under its name is written again with what the name promises."""
    from go_core.arena.engines import write_katago_config
    cfg = write_katago_config(tmp_path, visits=8)
    good = cfg.read_text()
    cfg.write_text(good.replace("maxVisits = 8", "maxVisits = 1"))
    assert write_katago_config(tmp_path, visits=8).read_text() == good
    evil = tmp_path / "evil.cfg"
    evil.write_text("maxVisits = 1\n")
    cfg.unlink()
    cfg.symlink_to(evil)
    assert write_katago_config(tmp_path, visits=8).read_text() == good
    assert not cfg.is_symlink() and evil.read_text() == "maxVisits = 1\n"
