"""The referee rates nodes: from the pin, with the node's committed learner, never the job's word."""
from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from autoresearch.agent_config import VerdictConfig
from autoresearch.judge import Judge
from autoresearch.referee import Referee, RefereeError
from autoresearch.jobs.status import job_metrics
from go_core.learn.net import NetConfig, PolicyValueNet, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = NetConfig(blocks=1, channels=16, gpool_every=0)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def referee(tmp_path) -> Referee:
    repo = tmp_path / "repo"
    git(tmp_path, "clone", "-q", str(ROOT), str(repo))
    commit = git(repo, "rev-parse", "HEAD")
    git(repo, "branch", "node/1", commit)
    # node 2's commit changes the learner AND (as a job or a patch could try) the referee's code
    git(repo, "checkout", "-q", "-b", "node/2")
    (repo / "go_core" / "learn" / "marker.py").write_text("LEARNER_CHANGED = True\n")
    (repo / "go_core" / "arena" / "rate.py").write_text("raise SystemExit('cheated')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "node 2")
    git(repo, "checkout", "-q", commit)
    r = Referee(tmp_path / "ws", 1, repo, commit)
    r.ensure_pin()
    return r


def checkpoint(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    return save_checkpoint(path, PolicyValueNet(TINY), board_size=9)


def test_the_candidate_runs_its_own_learner_with_the_pinned_referee(referee):
    root = referee.candidate_root(2)
    assert (root / "go_core" / "learn" / "marker.py").exists(), "the node's learner is kept"
    pinned = (referee.pin / "go_core" / "arena" / "rate.py").read_text()
    assert (root / "go_core" / "arena" / "rate.py").read_text() == pinned, "its referee edit is undone"
    assert "cheated" not in pinned
    assert not (root / "go_core" / "learn").stat().st_mode & 0o222, "read-only"


def test_head_to_head_from_the_pin_gives_pentanomial_counts(referee, tmp_path):
    a = checkpoint(tmp_path / "a" / "best.pt", 1)
    b = checkpoint(tmp_path / "b" / "best.pt", 2)
    h = referee.head_to_head((1, a), (2, b), seed=7, max_pairs=12, delta=100, alpha=0.05, beta=0.2,
                             settle_se=0.0)
    assert h["status"] == "ok" and sum(h["pentanomial"]) >= 1
    assert h["referee"] == str(referee.pin)
    assert len(list((referee.ratings_dir(1) / "h2h_vs_2" / "games").glob("*.sgf"))) == 2 * sum(h["pentanomial"])
    # the rating process wrote nothing into the pin (root ignores its read-only bits)
    from autoresearch.referee_pin import verify_pin
    verify_pin(referee.pin)


def test_a_job_that_writes_its_own_elo_is_not_believed(referee, tmp_path, monkeypatch):
    """The job's summary says Elo 5000; the node's Elo is the referee's."""
    run = tmp_path / "runs" / "3"
    checkpoint(run / "checkpoints" / "best.pt", 3)
    summary = {"status": "ok", "metrics": {"elo": 5000.0, "elo_ci95": [4990, 5010],
                                           "winrate_vs_ref": 1.0, "policy_loss": 2.5}}
    assert job_metrics(summary) == {"policy_loss": 2.5}
    seen = {}

    def ladder(node_id, ckpt, visits, start_elo=None, board_size=9, komi=7.0):
        seen.update(node=node_id, ckpt=ckpt, start=start_elo)
        return {"status": "ok", "elo": 123.0, "elo_ci95": [50.0, 196.0], "sandbox": "bwrap"}

    monkeypatch.setattr(referee, "ladder", ladder)
    judge = Judge(referee, VerdictConfig(), visits=16, say=lambda m: None)
    node = SimpleNamespace(id=3, kind="config", run_dir=str(run), metrics={}, seed=0)
    parent = SimpleNamespace(id=1, metrics={"elo": 80.0})
    metrics, why = judge.rate(node, summary, parent)
    assert why is None and metrics["elo"] == 123.0 and metrics["elo_ci95"] == [50.0, 196.0]
    assert metrics["policy_loss"] == 2.5 and "winrate_vs_ref" not in metrics
    assert seen == {"node": 3, "ckpt": run / "checkpoints" / "best.pt", "start": 80.0}
    # no checkpoint: the node cannot be rated, so it is not ranked
    empty = SimpleNamespace(id=4, kind="config", run_dir=str(tmp_path / "runs" / "4"), metrics={}, seed=0)
    metrics, why = judge.rate(empty, summary, parent)
    assert "elo" not in metrics and "no checkpoint" in why


def test_a_broken_pin_stops_the_rating(referee, tmp_path):
    import os
    target = referee.pin / "go_core" / "arena" / "elo.py"
    os.chmod(target, 0o644)
    target.write_text(target.read_text() + "\n# tampered\n")
    a = checkpoint(tmp_path / "a" / "best.pt", 1)
    with pytest.raises(Exception, match="modified"):
        referee.head_to_head((1, a), (1, a), seed=1, max_pairs=2, delta=100, alpha=0.05, beta=0.2,
                             settle_se=0.0)


@pytest.mark.slow
@pytest.mark.katago
def test_ladder_rating_from_the_pin(referee, tmp_path):
    a = checkpoint(tmp_path / "a" / "best.pt", 1)
    r = referee.ladder(1, a, visits=4)
    assert r["status"] == "ok" and r["elo_ci95"][0] < r["elo"] < r["elo_ci95"][1]
    assert r["sandbox"] in ("bwrap", "none")
    with pytest.raises(RefereeError, match="does not exist"):
        referee.ladder(2, tmp_path / "missing.pt", visits=4)


def test_a_failed_head_to_head_is_recorded_once_not_replayed(referee, tmp_path, monkeypatch):
    from experiment_tree.store import TreeStore
    store = TreeStore(tmp_path / "tree.db")
    qid = store.add_question("q", {})
    runs = {}
    for nid, parent in ((1, None), (2, 1)):
        runs[nid] = tmp_path / "runs" / str(nid)
        checkpoint(runs[nid] / "checkpoints" / "best.pt", nid)
        made = store.add_node(qid, parent, "baseline" if parent is None else "config", "h", seed=0)
        store.update_node(made, status="ok", run_dir=str(runs[nid]))
    calls = []

    def broken(*a, **k):
        calls.append(a)
        raise RefereeError("the rating process crashed")

    monkeypatch.setattr(referee, "head_to_head", broken)
    judge = Judge(referee, VerdictConfig(), visits=16, say=lambda m: None)
    for _ in range(2):
        nodes = store.nodes(qid)
        cmp = judge.compare(store, nodes[1], nodes[0], nodes, seeds_affordable=True)
        assert cmp.record is None and "failed: the rating process crashed" in cmp.why_stopped
    assert len(calls) == 1, "the failure is stored on the child's run, not retried"
    assert store.nodes(qid)[1].metrics["h2h"]["1"] == {"error": "the rating process crashed"}
