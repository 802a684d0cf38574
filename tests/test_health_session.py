"""Issue 16's acceptance, the health part, through `research run`, the real anthropic SDK and the
fake Messages API (tests/fake_messages_api.py): a node whose patch turns augmentation off while
its config says on is flagged by the referee's health check, marked suspect, shown to the model
in its next round, and left out of the answer until `research explain` records why.

(The rest of the acceptance -- forecasts recorded and scored, a step-back after three non-better
nodes, an image block sent, a retired model refused at start -- is in tests/test_agent_session.py
and tests/test_anthropic_sdk.py.)"""
from __future__ import annotations

import difflib
import shutil
import subprocess
from pathlib import Path

import pytest

from autoresearch import run_cli
from autoresearch.cli import main as research
from experiment_tree.store import TreeStore
from experiment_tree.suspect import is_suspect
from tests.fake_messages_api import FakeMessagesAPI, tool_message
from tests.fakerepo import JOB_MODULE, make_fake_repo

ROOT = Path(__file__).resolve().parents[1]
TRAINING = "go_core/learn/training.py"


@pytest.fixture()
def repo(tmp_path, monkeypatch):
    """The fake project (its fake job) with this checkout's real learner and rules beside it, so
    the augmentation probe runs the node's real train_step."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-never-used")
    repo = make_fake_repo(tmp_path / "repo")
    keep = (repo / "go_core/learn/fake_behaviour.py").read_text()
    for rel in ("go_core/game", "go_core/learn"):
        shutil.rmtree(repo / rel)
        subprocess.run(f"git -C {ROOT} archive HEAD {rel} | tar -x -C {repo}", shell=True, check=True)
    (repo / "go_core/learn/fake_behaviour.py").write_text(keep)
    for args in (["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "real learner"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    return repo


def no_augment_patch(repo: Path) -> str:
    old = (repo / TRAINING).read_text().splitlines(keepends=True)
    new = [line.replace("if cfg.augment:", "if cfg.augment and False:  # 'faster'") for line in old]
    assert new != old, "training.py no longer has `if cfg.augment:`: update this test"
    return "".join(difflib.unified_diff(old, new, f"a/{TRAINING}", f"b/{TRAINING}"))


def forecast(d):
    return {"diff_elo": d, "interval_80": [d - 50, d + 50], "p_better": 0.5}


@pytest.mark.slow      # ~30 s on 2 busy cores: three sandboxed augmentation probes import torch
def test_a_patch_that_turns_augmentation_off_is_flagged_and_left_out_of_the_answer(repo, tmp_path, capsys):
    ws = tmp_path / "ws"
    agent = tmp_path / "agent.yaml"
    agent.write_text("anthropic:\n  model: claude-opus-4-8\n  retries: 2\n  backoff_s: 0.01\n"
                     "verdict:\n  max_reruns: 0\n")
    script = [
        tool_message(("propose_code", {"patch": no_augment_patch(repo), "hypothesis": "skip augmentation: faster steps",
                                       "track": "speed", "track_aim": "train faster per step",
                                       "forecast": forecast(30)})),
        tool_message(("propose_config", {"overrides": ["train.lr=0.01"], "hypothesis": "larger lr",
                                         "track": "speed", "forecast": forecast(30)})),
        tool_message(("conclude", {"answer": "both help", "evidence": [2, 3]})),
    ]
    with FakeMessagesAPI(script) as api:
        rc = run_cli.main(["Does training faster help?", "--workspace", str(ws), "--repo", str(repo),
                           "--job-module", JOB_MODULE, "--proposer", "anthropic", "--agent-config",
                           str(agent), "--mem-limit-mb", "0", "--set", "fake.ci=5", "--no-report",
                           "--max-nodes", "3"], client=api.sdk())
    assert rc == 0, capsys.readouterr()
    store = TreeStore(ws / "tree.db")
    patched, plain = store.get_node(2), store.get_node(3)
    flags = {f["check"]: f for f in patched.metrics["health"]["flags"]}
    assert flags["augmentation_applied"]["ok"] is False, flags
    assert "augmentation is not applied" in flags["augmentation_applied"]["detail"]
    assert is_suspect(patched) and patched.status == "ok", "a mark on an ok node, not a job status"
    assert not is_suspect(plain) and plain.metrics["health"]["suspect"] is False
    # the model was told in its next round
    second = api.messages()[1].body["messages"][0]["content"]
    assert "#2 SUSPECT (augmentation_applied)" in second
    # ... and the answer leaves it out until explained
    q = store.get_question(1)
    assert q.evidence == [3] and "Left out as suspect" in q.answer and "#2 (augmentation_applied)" in q.answer
    assert "node 2 SUSPECT: health check(s) failed: augmentation_applied" in capsys.readouterr().out
    assert research(["explain", "2", "augmentation off was the point of this node", "-w", str(ws)]) == 0
    assert not is_suspect(store.get_node(2))
