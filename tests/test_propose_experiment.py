"""The Anthropic proposer's `propose_experiment` tool (issue 13): the model proposes an x/y
experiment and gets the offline planner's own plan (validated and cut the same way), stored on the
question, printed, and its arms run as nodes with their seeds; bad input is a tool error said back
to the model. Through the real anthropic SDK against the loopback fake Messages API
(tests/fake_messages_api.py), over the fake training job."""
from __future__ import annotations

import pytest

from autoresearch import run_cli
from autoresearch.agent_config import AgentConfig
from autoresearch.digest import make_digest
from autoresearch.proposers.anthropic_proposer import AnthropicProposer
from autoresearch.proposers.anthropic_tools import TOOLS
from experiment_tree.store import TreeStore
from experiment_tree.workspace import Workspace
from fabricate import LADDER
from reports.report import write_report
from tests.fake_messages_api import FakeMessagesAPI, tool_message
from tests.fakerepo import JOB_MODULE, make_fake_repo

QUESTION = "How does c_puct change the strength of a tiny run?"
FORECAST = {"diff_elo": 0, "interval_80": [-80, 80], "p_better": 0.3}


def experiment(x, seeds=None, x2=None, track="exploration", aim="how much exploration helps"):
    args = {"x": x, "hypothesis": "too much exploration wastes visits", "forecast": FORECAST,
            "track": track, "track_aim": aim}
    if seeds is not None:
        args["seeds"] = seeds
    if x2:
        args["x2"] = x2
    return args


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-never-used")
    repo = make_fake_repo(tmp_path / "repo")
    agent = tmp_path / "agent.yaml"
    agent.write_text("anthropic:\n  model: claude-opus-4-8\n  retries: 2\n  backoff_s: 0.01\n"
                     "  stepback_after: 0\nhealth:\n  enabled: false\n")
    return repo, tmp_path / "ws", agent


def test_the_tool_is_offered_with_x_y_seeds_and_a_forecast():
    tool = next(t for t in TOOLS if t["name"] == "propose_experiment")
    props = tool["input_schema"]["properties"]
    assert {"x", "x2", "y", "seeds", "hypothesis", "forecast", "track", "track_aim"} <= set(props)
    assert set(tool["input_schema"]["required"]) == {"x", "hypothesis", "forecast", "track"}


def test_the_model_proposes_an_experiment_and_its_arms_run_with_their_seeds(setup, capsys):
    repo, ws, agent = setup
    script = [
        tool_message(("propose_experiment", experiment("bad.key=1,2"))),
        tool_message(("propose_experiment", experiment("mcts.c_puct=1.25,2.5,3.5", seeds=3))),
        tool_message(("conclude", {"answer": "c_puct 2.5 is as strong as the default.",
                                   "evidence": [1, 2]})),
    ]
    with FakeMessagesAPI(script) as api:
        rc = run_cli.main([QUESTION, "--workspace", str(ws), "--repo", str(repo),
                           "--job-module", JOB_MODULE, "--proposer", "anthropic",
                           "--agent-config", str(agent), "--mem-limit-mb", "0", "--set", "fake.ci=5",
                           "--no-report", "--max-nodes", "6"], client=api.sdk())
    assert rc == 0
    assert not api.script, "every scripted answer was asked for"
    sent = [r.body for r in api.messages()]
    # the bad key came back to the model as a tool error naming what it may vary
    err = next(b for b in sent[1]["messages"][-1]["content"] if b["type"] == "tool_result")
    assert err.get("is_error") is True and "bad.key" in err["content"] \
        and "not a field a node may vary" in err["content"]
    assert "propose_experiment" in [t["name"] for t in sent[0]["tools"]]
    # the plan: cut from 3 to 2 seeds to fit the 6 runs, printed, stored on the question
    out = capsys.readouterr().out
    assert "Plan for: " + QUESTION in out and "cut: seeds per arm 3 -> 2" in out
    store = TreeStore(ws / "tree.db")
    q = store.questions()[-1]
    (exp,) = q.settings["experiments"]
    assert exp["plan"]["seeds"] == 2 and exp["plan"]["runs"] == 6 and exp["track"] == "exploration"
    assert q.settings["plan"] == exp["plan"]
    # its arms are nodes: the default 1.25 is the baseline; 2.5 and 3.5 are new, each with the
    # baseline's seeds 0 and 1, the model's forecast and track
    nodes = store.nodes(q.id)
    assert sorted((n.kind, tuple(n.overrides), n.seed) for n in nodes) == [
        ("baseline", (), 0), ("config", ("mcts.c_puct=2.5",), 0), ("config", ("mcts.c_puct=3.5",), 0),
        ("rerun", (), 1), ("rerun", ("mcts.c_puct=2.5",), 1), ("rerun", ("mcts.c_puct=3.5",), 1)]
    assert all(n.status == "ok" for n in nodes)
    arms = [n for n in nodes if n.kind == "config"]
    assert all(n.forecast["p_better"] == 0.3 and n.forecast["by"] == "agent" for n in arms)
    assert all(n.hypothesis.startswith("too much exploration wastes visits [Arm ") for n in arms)
    (track,) = store.tracks(q.id)
    assert track.name == "exploration" and all(n.track_id == track.id for n in arms)
    assert all(n.verdict is not None and n.verdict_test.count("2 run(s)") == 2 for n in arms)
    # the second arm was handed out from the stored experiment, without asking the model again
    assert len(sent) == 3 and sent[2]["tool_choice"] == {"type": "tool", "name": "conclude"}
    assert q.status == "answered"
    # the report carries the experiment's figure, each point pooled over its 2 seeds
    write_report(ws, ladder=LADDER)
    md = (ws / "report" / "report.md").read_text()
    after = md.split("](figures/xy.png)")[1]
    for label in ("mcts.c_puct=1.25", "mcts.c_puct=2.5", "mcts.c_puct=3.5"):
        line = next(ln for ln in after.splitlines() if ln.startswith(f"- {label}: elo "))
        assert "mean of 2 seeds" in line, line
    assert (ws / "report" / "figures" / "xy.png").stat().st_size > 5_000


def test_an_experiment_the_budget_cannot_hold_is_a_tool_error(tmp_path, monkeypatch):
    """A 2x2 grid without the defaults cannot shrink: 5 runs (the baseline's included) against
    4 is refused, with the runs it needs; nothing is stored and no node is made."""
    ws = Workspace(tmp_path / "ws")
    store = ws.store()
    qid = store.add_question(QUESTION, {"runs": 4, "board": "9x9", "budget": "tiny", "seed": 0})
    base = store.add_node(qid, None, "baseline", "b", overrides=[], seed=0)
    store.update_node(base, status="ok", metrics={"elo": 300.0, "elo_ci95": [250.0, 350.0]})
    cfg = AgentConfig()
    cfg.anthropic.model = "claude-opus-4-8"
    with FakeMessagesAPI([]) as api:
        prop = AnthropicProposer(cfg.anthropic, store, qid, tmp_path, client=api.sdk(),
                                 planner=cfg.planner)
        digest = make_digest(store, qid)
        text, is_error, made = prop.handle("propose_experiment", experiment(
            "mcts.c_puct=2.0,3.0", x2="train.lr=0.01,0.02"), digest, set())
        assert is_error and made is None
        assert "needs 5 runs" in text and "the budget allows 4" in text, text
        b = store.get_question(qid).settings      # one more run: the grid fits
        b["runs"] = 5
        store.update_question(qid, settings=b)
        text, is_error, made = prop.handle("propose_experiment", experiment(
            "mcts.c_puct=2.0,3.0", x2="train.lr=0.01,0.02"), digest, set())
        assert not is_error and len(made) == 4 and "runs: 5 of 5 allowed" in text, text
        # wrong types and missing fields are the model's errors too
        for bad, why in [({**experiment("mcts.c_puct=1,2"), "seeds": 0}, "at least 1"),
                         ({**experiment("mcts.c_puct=1,2"), "forecast": None}, "forecast is required"),
                         (experiment("mcts.c_puct=x,y"), "mcts.c_puct"),
                         (experiment("mcts.c_puct=1,2", track="new", aim=""), "track_aim")]:
            text, is_error, made = prop.handle("propose_experiment", bad, digest, set())
            assert is_error and made is None and why in text, (bad, text)
    assert len(store.get_question(qid).settings["experiments"]) == 1
    assert len(store.nodes(qid)) == 1
