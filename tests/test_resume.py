"""Killing `research run` with SIGKILL loses no finished node; --resume re-queues the rest."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from autoresearch import bwrap, run_cli
from autoresearch.digest import proposal_key
from experiment_tree.store import TreeStore
from tests.fakerepo import FAKE_PROJECT, JOB_MODULE, make_fake_repo

ROOT = Path(__file__).resolve().parents[1]


def args(repo: Path, ws: Path) -> list[str]:
    # the gate files live beside the repo: the sandboxed job may read that folder
    agent = repo.parent / "agent.yaml"
    repo.parent.chmod(0o755)   # pytest makes it 0700; as root the job runs as another uid
    agent.write_text(f"job:\n  readonly: [{json.dumps(str(repo.parent))}]\n")
    return ["--workspace", str(ws), "--repo", str(repo), "--job-module", JOB_MODULE,
            "--proposer", "offline", "--sweep", str(FAKE_PROJECT / "fake_sweep.yaml"),
            "--mem-limit-mb", "0", "--no-report", "--agent-config", str(agent)]


def wait_for(cond, timeout: float, what: str):
    end = time.time() + timeout
    while time.time() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_kill_9_mid_run_then_resume(tmp_path):
    repo = make_fake_repo(tmp_path / "repo")
    ws = tmp_path / "ws"
    gate = tmp_path / "gate"
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    loop = subprocess.Popen([sys.executable, "-m", "autoresearch.run_cli", "Which lr?",
                             *args(repo, ws), "--max-nodes", "6", "--workers", "2",
                             "--set", "fake.sleep=1", "--set", f"fake.gate={gate}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        db = ws / "tree.db"
        wait_for(db.exists, 120, "tree.db")
        store = TreeStore(db)

        wait_for(lambda: sum(n.status == "ok" for n in store.nodes(1)) >= 2, 180,
                 "two finished nodes")
        gate.touch()   # jobs reaching the gate now hang until it is gone

        def blocked():
            return [n for n in store.nodes(1) if n.status == "running" and n.run_dir
                    and (Path(n.run_dir) / "at_gate").exists()]
        wait_for(blocked, 120, "a running job held at the gate")
        loop.send_signal(signal.SIGKILL)
        loop.wait(timeout=30)
    finally:
        if loop.poll() is None:
            loop.kill()
    before = {n.id: n for n in store.nodes(1)}
    if bwrap.bwrap_status()[0]:
        # sandboxed jobs die with the loop (bwrap --die-with-parent): nothing is left behind
        time.sleep(1.0)
        assert not live_jobs(ws), "a sandboxed job outlived the loop that started it"
    else:
        assert live_jobs(ws), "the killed loop left its jobs running (their own sessions)"
    finished_before = {i: n for i, n in before.items() if n.status == "ok"}
    was_running = [i for i, n in before.items() if n.status == "running"]
    assert was_running, "the kill happened mid-run"

    # the gate stays: held jobs are still running when --resume starts (re-runs use no gate)
    rc = run_cli.main(["--resume", *args(repo, ws), "--set", "fake.sleep=0",
                       "--set", f"fake.gate={tmp_path / 'no-gate'}"])
    gate.unlink()
    assert rc == 0
    after = {n.id: n for n in store.nodes(1)}
    # finished nodes are intact: same status, metrics and finish time
    for i, n in finished_before.items():
        assert (after[i].status, after[i].metrics, after[i].finished_at) == \
            (n.status, n.metrics, n.finished_at)
    # each node that was running is either recorded (it finished while the loop was dead)
    # or marked interrupted and re-queued as a new node with the same experiment
    # a job held at the gate was still running: it is killed, marked interrupted, re-queued;
    # one that finished while the loop was dead is recorded as it finished
    held = [i for i in was_running if (Path(before[i].run_dir) / "at_gate").exists()]
    assert held
    for i in was_running:
        n = after[i]
        if i in held:
            assert n.status == "interrupted" and "re-queued as node" in n.error
            requeued = [m for m in after.values() if m.notes == f"re-run of node {i}, interrupted"]
            assert len(requeued) == 1 and requeued[0].status == "ok"
            assert proposal_key(requeued[0].overrides, requeued[0].patch) == \
                proposal_key(n.overrides, n.patch)
        else:
            assert n.status in ("ok", "interrupted")
    # counted once: the budget of 6 holds every non-interrupted node, none run twice
    counted = [n for n in after.values() if n.status != "interrupted"]
    assert len(counted) == 6
    assert all(n.finished for n in after.values())
    keys = [proposal_key(n.overrides, n.patch) for n in counted if n.kind != "rerun"]
    assert len(keys) == len(set(keys))
    q = store.get_question(1)
    assert q.status in ("answered", "limit-reached") and q.answer
    # no job of the killed loop is still alive
    assert not live_jobs(ws)


def live_jobs(ws: Path) -> list[str]:
    out = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"hydra.run.dir={ws}" in cmd:
            out.append(cmd)
    return out


def test_recover_records_a_run_that_finished_while_the_loop_was_dead(tmp_path):
    repo = make_fake_repo(tmp_path / "repo")
    ws = tmp_path / "ws"
    store = TreeStore(ws / "tree.db")
    qid = store.add_question("q", {"runs": 2, "board": "9x9", "budget": "tiny", "seed": 0,
                                   "proposer": "offline", "job_module": JOB_MODULE})
    base = store.add_node(qid, None, "baseline", "baseline")
    run_dir = ws / "runs" / str(base)
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps(
        {"status": "ok", "metrics": {"elo": 10.0, "elo_ci95": [0.0, 20.0]}}))
    store.update_node(base, status="running", run_dir=str(run_dir))
    rc = run_cli.main(["--resume", *args(repo, ws), "--max-nodes", "1"])
    assert rc == 1   # recorded, but a budget of one node compares nothing: exit 1 says so
    nodes = store.nodes(qid)
    assert [(n.id, n.status, n.metrics.get("elo")) for n in nodes] == [(base, "ok", 10.0)]


def test_sigterm_stops_cleanly_and_resume_reruns_the_interrupted_baseline(tmp_path):
    repo = make_fake_repo(tmp_path / "repo")
    ws = tmp_path / "ws"
    gate = tmp_path / "gate"
    gate.touch()   # the baseline will hang at the gate
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    loop = subprocess.Popen([sys.executable, "-m", "autoresearch.run_cli", "Which lr?",
                             *args(repo, ws), "--max-nodes", "2", "--set", f"fake.gate={gate}"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        wait_for(lambda: (ws / "runs" / "1" / "at_gate").exists(), 120, "the baseline at the gate")
        loop.send_signal(signal.SIGTERM)
        out, _ = loop.communicate(timeout=60)
    finally:
        if loop.poll() is None:
            loop.kill()
    assert loop.returncode == 130, out
    assert "research run --resume" in out
    store = TreeStore(ws / "tree.db")
    assert store.get_question(1).status == "interrupted"
    assert [(n.id, n.kind, n.status) for n in store.nodes(1)] == \
        [(1, "baseline", "interrupted"), (2, "baseline", "pending")]
    assert not live_jobs(ws)
    gate.unlink()
    assert run_cli.main(["--resume", *args(repo, ws), "--set", f"fake.gate={gate}"]) == 0
    nodes = store.nodes(1)
    assert [(n.kind, n.status) for n in nodes] == \
        [("baseline", "interrupted"), ("baseline", "ok"), ("sweep-trial", "ok")]
    assert nodes[2].parent_id == 2
