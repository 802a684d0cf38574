"""Red team: malformed output never stops the loop. A summary.json off the contract makes the
node `invalid` with the reason (and `--resume` reads it again without crashing); a model's tool
call with a bad regex or a path through a file is an error message back to the model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoresearch import jobs, run_cli
from tests.launch import start_job
from experiment_tree.store import TreeStore
from tests.fakerepo import JOB_MODULE, make_fake_repo

KINDS = ["list", "non_utf8", "string_elo", "nan", "huge", "no_keys", "not_json", "deep"]


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_summary_makes_the_node_invalid_with_the_reason(tmp_path, kind):
    repo = make_fake_repo(tmp_path / "repo")
    res = start_job(repo, 1, [f"fake.summary={kind}"], None, tmp_path / "ws/runs/1",
                    wall_clock_s=60, mem_limit_mb=0, job_module=JOB_MODULE).wait()
    assert res.status == "invalid", (res.status, res.error)
    assert "summary.json is malformed" in res.error
    # the run directory ends with a summary that says so; the original is kept beside it
    rewritten = json.loads((tmp_path / "ws/runs/1/summary.json").read_text())
    assert rewritten["status"] == "invalid" and rewritten["metrics"] == {}
    assert (tmp_path / "ws/runs/1/summary.malformed.json").exists()


def test_loop_goes_on_and_resume_works_after_a_malformed_summary(tmp_path):
    repo = make_fake_repo(tmp_path / "repo")
    ws = tmp_path / "ws"
    args = ["--workspace", str(ws), "--repo", str(repo), "--job-module", JOB_MODULE,
            "--proposer", "offline", "--mem-limit-mb", "0", "--no-report",
            "--sweep", str(Path(__file__).parent / "fake_project/fake_sweep.yaml")]
    # a malformed baseline: the question stops as `failed` (resumable), it does not crash
    rc = run_cli.main(["q?", *args, "--max-nodes", "2", "--set", "fake.summary=list"])
    assert rc == 1   # the baseline is invalid: the question stops without a comparison
    nodes = TreeStore(ws / "tree.db").nodes(1)
    assert nodes and all(n.status == "invalid" for n in nodes if n.finished)
    assert "summary.json is malformed" in nodes[0].error
    # the malformed file is still on disk for a node left `running`: resume must read it too
    TreeStore(ws / "tree.db").update_node(nodes[0].id, status="running")
    TreeStore(ws / "tree.db").update_question(1, status="interrupted")
    (ws / "runs" / str(nodes[0].id) / "summary.json").write_bytes(b"[1, 2, 3]")
    rc = run_cli.main(["--resume", "--question", "1", *args, "--max-nodes", "3"])
    assert rc == 0   # the resume runs a fresh baseline (no malformed override now) and compares
    again = TreeStore(ws / "tree.db").get_node(nodes[0].id)
    assert again.status == "invalid" and "a JSON list" in again.error
    assert any(n.kind == "baseline" and n.status == "ok" for n in TreeStore(ws / "tree.db").nodes(1))


def test_a_metrics_line_that_is_not_an_object_or_not_utf8_is_skipped(tmp_path):
    from experiments.rundir import read_metrics
    (tmp_path / "metrics.jsonl").write_bytes(b'{"step": 1}\n[1,2]\n\xff\xfe\n"x"\n{"step": 2}\n')
    assert read_metrics(tmp_path) == [{"step": 1}, {"step": 2}]


@pytest.fixture()
def proposer(tmp_path):
    from autoresearch.agent_config import AnthropicConfig
    from autoresearch.proposers.anthropic_proposer import AnthropicProposer
    repo = make_fake_repo(tmp_path / "repo")
    (tmp_path / "outside.txt").write_text("a secret outside the repository\n")
    (repo / "escape").symlink_to(tmp_path)
    store = TreeStore(tmp_path / "tree.db")
    qid = store.add_question("q", {})
    return AnthropicProposer(AnthropicConfig(), store=store, question_id=qid, repo_root=repo,
                             client=object())


@pytest.mark.parametrize("name, args, said", [
    ("search_files", {"pattern": "("}, "error"),
    ("read_file", {"path": "fakejob.py/inner"}, "NotADirectoryError"),
    ("read_file", {"path": "escape/outside.txt"}, "outside the repository"),
    ("search_files", {"pattern": "secret", "path": "escape"}, "outside the repository"),
    ("read_file", {"path": "a\x00b"}, "Error"),
    ("read_node", {"node_id": "x"}, "ValueError"),
    ("propose_config", {"overrides": ["rating=smoke"], "hypothesis": "h"}, "rating"),
])
def test_a_bad_tool_call_is_an_error_message_to_the_model(proposer, name, args, said):
    class Digest:
        keys: set = set()

        @staticmethod
        def baseline():
            return None

    text, is_error, made = proposer.handle(name, args, Digest(), set())
    assert is_error and made is None and said in text, text


def test_the_harness_never_writes_through_a_symlink_a_job_planted(tmp_path):
    """A job can write its run directory; the harness's writes there (summary.json, job.pid)
    must not follow a symlink it planted, at the file's name or at a temp name."""
    import os
    from experiments.rundir import atomic_write_text
    run = tmp_path / "run"
    run.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (run / f".summary.json.tmp{os.getpid()}").symlink_to(victim)
    (run / "summary.json").symlink_to(victim)
    atomic_write_text(run / "summary.json", '{"status": "ok"}')
    assert victim.read_text() == "keep"
    assert not (run / "summary.json").is_symlink()
    assert (run / "summary.json").read_text() == '{"status": "ok"}'


def test_kill_orphan_only_kills_the_process_of_exactly_this_run_directory(tmp_path):
    import subprocess
    import sys
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                              f"hydra.run.dir={tmp_path / 'runs/10'}"], start_new_session=True)
    try:
        (tmp_path / "runs/1").mkdir(parents=True)
        (tmp_path / "runs/1" / jobs.spec.PID_NAME).write_text(f"{other.pid} 0\n")
        assert not jobs.local.kill_orphan(tmp_path / "runs/1")
        assert other.poll() is None, "node 10's job was killed for node 1"
    finally:
        other.kill()
        other.wait()
