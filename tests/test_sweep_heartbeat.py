"""A sweep worker that dies mid-trial (SIGKILL, as when its machine is lost): with heartbeats,
the next worker fails the trial, marks its node `interrupted`, kills the orphaned job and runs
the same parameters again as a new trial, so the study and the tree stay consistent."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from autoresearch import bwrap
from autoresearch.search_space import SweepSpecError, load_sweep
from autoresearch.sweep import open_study, run_sweep
from experiment_tree.workspace import Workspace
from tests.sweep_helpers import make_fake_repo, write_sweep
from tests.test_postgres_sweep import postgres_url  # noqa: F401 - fixture: a PostgreSQL server on loopback

ROOT = Path(__file__).resolve().parents[1]

SWEEP = """
    name: heartbeat
    objective: elo
    params: {{fake.quality: {{type: float, low: 0.5, high: 1.0}}}}
    pruner: none
    sampler: {{type: random, seed: 3}}
    base_overrides: [fake.steps={steps}, fake.sleep={sleep}]
    job: {{module: fake_train, wall_clock_s: 120}}
    heartbeat: {{interval_s: 1, grace_s: 2, max_retry: 1}}
"""


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def kill_worker_mid_trial(sweep: Path, ws: Workspace, repo: Path, storage: str) -> int:
    """Start `research sweep` (one worker, in-process), SIGKILL it once its trial's job has
    written a line of metrics; return the pid of the job it leaves behind."""
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch.sweep", str(sweep), "--trials", "1",
                             "--workspace", str(ws.root), "--repo", str(repo), "--storage", storage],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    run = ws.runs_dir / "1"
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        if (run / "job.pid").exists() and (run / "metrics.jsonl").exists():
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"the trial's job never started:\n{proc.communicate()[0].decode()}")
    job_pid = int((run / "job.pid").read_text().split()[0])
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    return job_pid


@pytest.mark.parametrize("kind", ["journal", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_dead_workers_trial_is_failed_retried_and_its_node_interrupted(tmp_path, kind, request):
    repo = make_fake_repo(tmp_path)
    ws = Workspace(tmp_path / "ws")
    storage = {"journal": str(ws.root / "optuna-journal.log"), "sqlite": f"sqlite:///{tmp_path / 'o.db'}",
               "postgres": request.getfixturevalue("postgres_url") if kind == "postgres" else None}[kind]
    long_sweep = write_sweep(tmp_path / "long.yaml", SWEEP.format(steps=1200, sleep=0.1))
    job_pid = kill_worker_mid_trial(long_sweep, ws, repo, storage)
    try:
        spec = load_sweep(long_sweep)
        assert [t.state.name for t in open_study(spec, storage, create=False).trials] == ["RUNNING"]
        with ws.store() as store:
            assert store.get_node(1).status == "running"
        sandboxed = bwrap.bwrap_status()[0]
        if sandboxed:   # bwrap --die-with-parent: the job died with its worker, nothing is left
            time.sleep(1.0)
            assert not alive(job_pid), "a sandboxed job outlived the worker that started it"
        else:
            assert alive(job_pid), "the orphaned job should still run (own session)"
        # past the grace period (SQLite's clock has whole seconds), a new worker arrives; the
        # retried trial runs a short job (same study: the file differs only in base_overrides)
        time.sleep(4)
        short_sweep = write_sweep(tmp_path / "short.yaml", SWEEP.format(steps=2, sleep=0.01))
        out = run_sweep(short_sweep, trials=1, workers=1, workspace=ws.root, storage=storage,
                        repo_root=repo, poll_s=0.1)
    finally:
        if alive(job_pid):
            os.killpg(job_pid, signal.SIGKILL)
    assert out["worker_exit_codes"] == [0]
    trials = open_study(spec, storage, create=False).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    dead, retry = trials
    assert retry.params == dead.params and retry.system_attrs["failed_trial"] == 0
    assert (dead.user_attrs["node_id"], retry.user_attrs["node_id"]) == (1, 2)
    with ws.store() as store:
        nodes = {n.id: n for n in store.nodes()}
    assert sorted(nodes) == [1, 2]
    assert nodes[1].status == "interrupted" and nodes[1].finished_at
    assert "stopped sending heartbeats for over 2 s" in nodes[1].error
    assert "queued its parameters again as trial 1" in nodes[1].error
    assert sandboxed or "orphaned job was killed" in nodes[1].error
    assert nodes[2].status == "ok" and "retry of trial 0" in nodes[2].hypothesis
    assert nodes[2].metrics["elo"] == pytest.approx(retry.value)
    assert not alive(job_pid), "the dead worker's job was left running"
    assert not (ws.root / "worktrees" / "1").exists()


def test_a_live_trial_past_the_grace_period_is_not_failed(tmp_path):
    """A worker that is alive keeps beating: another worker looking for stale trials while it
    runs a trial longer than the grace period leaves it alone, and the trial completes."""
    from autoresearch.sweep import fail_stale_trials

    repo = make_fake_repo(tmp_path)
    ws = Workspace(tmp_path / "ws")
    storage = str(ws.root / "optuna-journal.log")
    sweep = write_sweep(tmp_path / "live.yaml", SWEEP.format(steps=60, sleep=0.1))
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch.sweep", str(sweep), "--trials", "1",
                             "--workspace", str(ws.root), "--repo", str(repo)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not (ws.runs_dir / "1" / "metrics.jsonl").exists():
            time.sleep(0.2)
        time.sleep(3.5)                                # beyond grace_s = 2 since the trial began
        spec = load_sweep(sweep)
        study = open_study(spec, storage, create=False)
        with ws.store() as store:
            assert fail_stale_trials(study, spec, store, 1, repo, ws.root) == []
            assert store.get_node(1).status == "running"
        assert [t.state.name for t in study.trials] == ["RUNNING"]
        out = proc.communicate(timeout=120)[0].decode()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    assert proc.returncode == 0, out
    trial = open_study(spec, storage, create=False).trials[0]
    assert trial.state.name == "COMPLETE" and "tengen:heartbeat" in trial.system_attrs


def test_heartbeat_settings_in_the_sweep_file(tmp_path):
    from optuna.storages._heartbeat import is_heartbeat_enabled

    assert load_sweep(ROOT / "conf/sweep/lr_cpuct.yaml").heartbeat.grace_s == 180
    off = write_sweep(tmp_path / "off.yaml", "name: off\nparams: {a: [1, 2]}\nheartbeat: off\n")
    assert load_sweep(off).heartbeat is None
    assert not is_heartbeat_enabled(open_study(load_sweep(off), str(tmp_path / "j.log"), create=True)._storage)
    on = write_sweep(tmp_path / "on.yaml", "name: on\nparams: {a: [1, 2]}\n")
    assert load_sweep(on).heartbeat.interval_s == 60                  # on by default
    assert is_heartbeat_enabled(open_study(load_sweep(on), f"sqlite:///{tmp_path / 'o.db'}", create=True)._storage)
    bad = write_sweep(tmp_path / "bad.yaml", "params: {a: [1]}\nheartbeat: {interval_s: 5, grace_s: 5}\n")
    with pytest.raises(SweepSpecError, match="grace_s .5. must exceed interval_s"):
        load_sweep(bad)
    typo = write_sweep(tmp_path / "typo.yaml", "params: {a: [1]}\nheartbeat: {interval: 5}\n")
    with pytest.raises(SweepSpecError, match=r"heartbeat: unknown fields \['interval'\]"):
        load_sweep(typo)
