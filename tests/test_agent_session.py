"""A scripted research session through `research run`, the real anthropic SDK and a fake
Messages API on 127.0.0.1 (tests/fake_messages_api.py), over the fake training job: forecasts
recorded on the nodes and scored against the verdicts, the calibration shown to the model, a
step-back review after three non-better nodes in a track that closes it, and model names the
API or the SDK no longer serve refused before anything trains."""
from __future__ import annotations

import math

import pytest

from autoresearch import run_cli
from autoresearch.forecast import scored
from experiment_tree.store import TreeStore
from tests.fake_messages_api import FakeMessagesAPI, tool_message
from tests.fakerepo import JOB_MODULE, make_fake_repo


def propose(overrides, track, forecast, aim=None, hyp="h"):
    args = {"overrides": overrides, "hypothesis": hyp, "track": track,
            "forecast": {"diff_elo": forecast[0], "interval_80": list(forecast[1]), "p_better": forecast[2]}}
    if aim:
        args["track_aim"] = aim
    return tool_message(("propose_config", args))


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-never-used")
    repo = make_fake_repo(tmp_path / "repo")
    return repo, tmp_path / "ws", tmp_path


def argv(repo, ws, agent, *extra):
    return ["--workspace", str(ws), "--repo", str(repo), "--job-module", JOB_MODULE,
            "--proposer", "anthropic", "--agent-config", str(agent), "--mem-limit-mb", "0",
            "--set", "fake.ci=5", "--no-report", *extra]


def test_forecasts_are_scored_and_a_track_is_reviewed_after_three_non_better_nodes(setup):
    repo, ws, tmp = setup
    agent = tmp / "agent.yaml"
    agent.write_text("anthropic:\n  model: claude-opus-4-8\n  retries: 2\n  backoff_s: 0.01\n  stepback_after: 3\n")
    # the fake job: baseline ~249 Elo; lr 0.01 ~290 (+41); c_puct 4 / 3.5 / 5 ~ -150 / -80 / -350
    script = [
        propose(["train.lr=0.01"], "learning rate", (30, (0, 60), 0.7), aim="is the step size too small?"),
        propose(["mcts.c_puct=4.0"], "exploration", (20, (-20, 60), 0.55), aim="is c_puct tuned?"),
        propose(["mcts.c_puct=3.5"], "exploration", (10, (-40, 60), 0.4)),
        propose(["mcts.c_puct=5.0"], "exploration", (-50, (-400, 0), 0.1)),
        tool_message(("record_stepback", {
            "limits": "c_puct above 2 only loses strength at this budget",
            "worth_it": "no: three settings all worse, the optimum is near the default",
            "better_question": "does the learning rate schedule matter more?",
            "decision": "close", "reason": "every higher c_puct was clearly worse"})),
        tool_message(("conclude", {"answer": "lr 0.01 is better; more exploration is worse.",
                                   "evidence": [1, 2]})),
    ]
    with FakeMessagesAPI(script) as api:
        rc = run_cli.main(["Does a larger learning rate help?",
                           *argv(repo, ws, agent, "--max-nodes", "6")], client=api.sdk())
    assert rc == 0
    assert not api.script, "every scripted answer was asked for"
    store = TreeStore(ws / "tree.db")
    nodes = store.nodes(1)
    assert [(n.overrides, n.verdict) for n in nodes[1:]] == [
        (["train.lr=0.01"], "better"), (["mcts.c_puct=4.0"], "worse"),
        (["mcts.c_puct=3.5"], "worse"), (["mcts.c_puct=5.0"], "worse")]
    # forecasts recorded on the nodes and scored against the verdicts
    assert nodes[1].forecast == {"diff_elo": 30.0, "lo80": 0.0, "hi80": 60.0, "p_better": 0.7, "by": "agent"}
    rows = scored(nodes)
    assert [n.id for n, _, _ in rows] == [2, 3, 4, 5]
    assert [s.hit for _, _, s in rows] == [True, False, False, True]
    assert [s.log_score for _, _, s in rows] == pytest.approx(
        [math.log(0.7), math.log(0.45), math.log(0.6), math.log(0.9)])
    # the model saw its running calibration before its third proposal
    sent = [r.body for r in api.messages()]
    third = sent[2]["messages"][0]["content"]
    assert "Your forecasts so far (2 scored): 1/2 measured differences inside your 80% intervals" in third
    assert "#3: forecast +20 Elo" in third and "OUTSIDE" in third
    # the step-back review: a separate call with its own brief and a forced decision tool
    review = sent[4]
    assert "first principles" in review["system"][0]["text"]
    assert review["tool_choice"] == {"type": "tool", "name": "record_stepback"}
    assert [t["name"] for t in review["tools"]] == ["record_stepback"]
    assert "Step back on the track 'exploration'" in review["messages"][0]["content"]
    assert "#3 (worse), #4 (worse), #5 (worse)" in review["messages"][0]["content"]
    tracks = {t.name: t for t in store.tracks(1)}
    assert tracks["learning rate"].status == "open" and tracks["learning rate"].aim == "is the step size too small?"
    ex = tracks["exploration"]
    assert ex.status == "closed" and ex.reviewed_through == 5
    assert ex.notes[0]["decision"] == "close" and ex.notes[0]["nodes"] == [3, 4, 5]
    assert "learning rate schedule" in ex.notes[0]["better_question"]
    assert [n.track_id for n in nodes] == [None, tracks["learning rate"].id] + [ex.id] * 3
    # the model reads the closed track and its note in the next round
    last = sent[5]["messages"][0]["content"]
    assert "- exploration [closed]" in last and "every higher c_puct was clearly worse" in last
    q = store.get_question(1)
    assert q.status == "answered" and q.tokens == 6 * (1200 + 150 + 900)
    # every proposed node that finished ok was health-checked (autoresearch/health.py)
    for n in nodes[1:]:
        flags = {f["check"]: f["ok"] for f in n.metrics["health"]["flags"]}
        assert flags["losses_finite"] is True and n.metrics["health"]["suspect"] is False


@pytest.mark.parametrize("model,served,rc,why", [
    ("claude-2.0", (), 1, "preflight failed"),                       # the SDK does not list it
    ("claude-opus-4-6", ("claude-opus-4-8",), 2, "does not serve model 'claude-opus-4-6'"),  # the API says 404
    # the SDK lists it, and records its end of life (2026-06-30) as passed
    # ... refused by the preflight (research doctor's check of the SDK's end-of-life table): exit 1
    ("claude-mythos-preview", ("claude-mythos-preview",), 1, "end of life 2026-06-30: retired"),
])
def test_a_retired_model_is_refused_before_anything_trains(setup, capsys, model, served, rc, why):
    repo, ws, tmp = setup
    agent = tmp / "agent.yaml"
    agent.write_text("anthropic:\n  model: claude-opus-4-8\n")     # --model overrides it
    with FakeMessagesAPI([tool_message(("conclude", {"answer": "x", "evidence": []}))],
                         served=served) as api:
        got = run_cli.main(["Does lr matter?", *argv(repo, ws, agent, "--max-nodes", "3",
                                                     "--model", model)], client=api.sdk())
    assert got == rc
    assert why in capsys.readouterr().err
    assert not api.messages(), "no message was sent"
    if (ws / "tree.db").exists():
        assert TreeStore(ws / "tree.db").nodes() == [], "nothing trained"


def test_the_offline_planner_forecasts_its_stated_prior_on_the_same_scale(setup, monkeypatch):
    """No key: the planner runs the A/B; its nodes carry the prior (0 Elo, 80% interval
    +-(the plan's minimum detectable difference), P(better) 0.5), scored like the model's."""
    from autoresearch.planner.plan import Plan
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    repo, ws, tmp = setup
    agent = tmp / "agent.yaml"
    agent.write_text("verdict:\n  max_reruns: 0\n")
    rc = run_cli.main(["Does c_puct 2.5 beat 1.5 on 9x9?", "--workspace", str(ws), "--repo",
                       str(repo), "--job-module", JOB_MODULE, "--mem-limit-mb", "0", "--no-report",
                       "--max-nodes", "3", "--set", "fake.ci=5", "--agent-config", str(agent)])
    assert rc == 0
    store = TreeStore(ws / "tree.db")
    plan = Plan.from_dict(store.get_question(1).settings["plan"])
    arms = [n for n in store.nodes(1) if n.kind == "config"]
    assert len(arms) == 2 and plan.mde_elo
    for n in arms:
        assert n.forecast == {"diff_elo": 0.0, "lo80": -plan.mde_elo, "hi80": plan.mde_elo,
                              "p_better": 0.5, "by": "planner-prior"}
    [track] = store.tracks(1)
    assert track.name == "A/B test over mcts.c_puct" and all(n.track_id == track.id for n in arms)
    rows = scored(store.nodes(1))
    assert rows and all(s.log_score == pytest.approx(math.log(0.5)) for _, _, s in rows)
    # the referee's health checks ran on the planner's nodes too (autoresearch/loop.py health_check)
    for n in arms:
        flags = {f["check"]: f["ok"] for f in n.metrics["health"]["flags"]}
        assert flags["losses_finite"] is True and n.metrics["health"]["suspect"] is False
