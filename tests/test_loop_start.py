"""The question's starting point and baseline (autoresearch/loop_start.py) through the loop's own
methods: the warm start trained once by a real job in the sandbox, then read by every node that does
not change it; a start that leaves no checkpoint stops the question before any baseline runs."""
from __future__ import annotations

import subprocess

import pytest

from autoresearch.agent_config import AgentConfig
from autoresearch.loop import ResearchLoop
from experiment_tree.workspace import Workspace
from tests.fakerepo import make_fake_repo

# a job that writes the run directory a `train.warm_start.only=true` run leaves (or, with
# fake.no_checkpoint=1 in the question's extra overrides, a run without its checkpoint)
START_JOB = '''
import json, os, sys
cfg = dict(a.partition("=")[::2] for a in sys.argv[1:])
run = cfg["hydra.run.dir"]
os.makedirs(os.path.join(run, "checkpoints"), exist_ok=True)
with open(os.path.join(run, "argv.json"), "w") as f:
    json.dump(sys.argv[1:], f)
if cfg.get("fake.no_checkpoint") != "1":
    open(os.path.join(run, "checkpoints", "latest.pt"), "wb").write(b"start")
json.dump({"status": "ok", "metrics": {}}, open(os.path.join(run, "summary.json"), "w"))
'''


def make_loop(tmp_path, extra: list[str]):
    repo = make_fake_repo(tmp_path / "repo")
    (repo / "startjob.py").write_text(START_JOB)
    for args in (["add", "startjob.py"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit",
                                         "-q", "-m", "start job"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    ws = Workspace(tmp_path / "ws")
    store = ws.store()
    qid = store.add_question("q", {"runs": 4, "board": "9x9", "budget": "tiny", "seed": 3})
    cfg = AgentConfig()
    cfg.job.module, cfg.job.wall_clock_s, cfg.job.extra_overrides = "startjob", 120.0, extra
    said: list[str] = []
    loop = ResearchLoop(store, ws.root, qid, proposer=None, cfg=cfg, repo_root=repo,
                        say=said.append, report=False)
    loop.judge = object()      # the start is trained only when the referee rates the nodes
    return loop, store, ws, qid, said


def test_the_start_is_trained_once_and_read_by_nodes_that_do_not_change_it(tmp_path):
    loop, store, ws, qid, said = make_loop(tmp_path, [])
    loop.ensure_start()
    ckpt = ws.start_dir(qid) / "checkpoints" / "latest.pt"
    assert ckpt.read_bytes() == b"start" and loop.stop_reason is None, said
    assert store.get_question(qid).settings["start_checkpoint"] == str(ckpt)
    argv = (ws.start_dir(qid) / "argv.json").read_text()
    assert "train.warm_start.only=true" in argv and "seed=3" in argv and "board=9x9" in argv
    loop.ensure_start()        # once per question: the second call finds the checkpoint
    assert sum("training the warm start once" in s for s in said) == 1

    loop.ensure_baseline()
    base = loop.baseline()
    assert base.kind == "baseline" and base.seed == 3
    ov = loop.command_overrides(base)
    assert f"train.warm_start.init_checkpoint={ckpt}" in ov and "rating.at_end=false" in ov
    own = store.get_node(store.add_node(qid, base.id, "config", "own warm start",
                                        overrides=["train.warm_start.games=8"], seed=3))
    assert not any(o.startswith("train.warm_start.init_checkpoint=")
                   for o in loop.command_overrides(own))


@pytest.mark.parametrize("kind", ["start", "baseline"])
def test_a_failed_start_or_baseline_stops_the_question(tmp_path, kind):
    loop, store, ws, qid, said = make_loop(tmp_path, ["fake.no_checkpoint=1"] if kind == "start" else [])
    if kind == "start":
        loop.ensure_start()
        assert loop.baseline_failed and "starting point is ok" in loop.stop_reason
        loop.ensure_baseline()
        assert loop.baseline() is None        # nothing runs after a failed start
        return
    loop.ensure_baseline()
    base = loop.baseline()
    store.update_node(base.id, status="crash", error="boom", finished_at=1.0, run_dir=str(tmp_path))
    loop.check_baseline()
    assert loop.baseline_failed and loop.stop_reason.startswith(f"the baseline (node {base.id}) is crash")
    loop.baseline_failed = False              # a resume runs a fresh baseline
    loop.ensure_baseline()
    assert loop.baseline().id != base.id and any("running the baseline again" in s for s in said)
