"""The whole loop driven by a scripted fake LLM (recorded anthropic Message objects, no network)
over a fake training job: every outcome lands in the tree with the right status."""
from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path

import anthropic
import pytest
from anthropic.types import Message, TextBlock, ToolUseBlock, Usage

from autoresearch import run_cli
from autoresearch.ladder_verdict import compare
from experiment_tree.store import TreeStore
from tests.fakerepo import JOB_MODULE, PROTECTED_PATCH, behaviour_patch, make_fake_repo

NOOP_PATCH = ("diff --git a/go_core/learn/fake_behaviour.py b/go_core/learn/fake_behaviour.py\n"
              "--- a/go_core/learn/fake_behaviour.py\n+++ b/go_core/learn/fake_behaviour.py\n"
              "@@ -1,3 +1,4 @@\n"
              " # What a code patch edits in the fake project: the job's behaviour and a flat Elo bonus.\n"
              " BEHAVIOUR = \"ok\"\n ELO_BONUS = 0.0\n+# a refactor that should change nothing\n")

# every proposal carries a forecast and a track (issue 16); tests/test_agent_session.py checks them
PLAN = {"forecast": {"diff_elo": 0, "interval_80": [-50, 50], "p_better": 0.3},
        "track": "one track", "track_aim": "what the scripted model tries"}


def message(*tools: tuple[str, dict], text: str = "", n: int = 0, tokens=(1200, 150)) -> Message:
    content = [TextBlock(type="text", text=text or "Next step.")]
    content += [ToolUseBlock(type="tool_use", id=f"toolu_{n}_{i}", name=name, input=args)
                for i, (name, args) in enumerate(tools)]
    return Message(id=f"msg_{n}", type="message", role="assistant", model="claude-test",
                   content=content, stop_reason="tool_use" if tools else "end_turn",
                   stop_sequence=None,
                   usage=Usage(input_tokens=tokens[0], output_tokens=tokens[1],
                               cache_creation_input_tokens=900 if n == 0 else 0,
                               cache_read_input_tokens=0 if n == 0 else 900))


class FakeSDK:
    """Stands in for anthropic.Anthropic(): `.messages.create(**kw)` replays a script."""

    def __init__(self, script: list):
        self.script = list(script)
        self.calls: list[dict] = []
        self.messages = self

    def create(self, **kw):
        self.calls.append(copy.deepcopy(kw))
        if not self.script:
            raise AssertionError("the loop asked the model more often than scripted")
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


def connection_error() -> anthropic.APIConnectionError:
    httpx_mod = importlib.import_module(anthropic._exceptions.__dict__.get("httpx2").__name__) \
        if "httpx2" in anthropic._exceptions.__dict__ else importlib.import_module("httpx")
    return anthropic.APIConnectionError(request=httpx_mod.Request("POST", "https://api.anthropic.com/v1/messages"))


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-never-used")
    repo = make_fake_repo(tmp_path / "repo")
    agent = tmp_path / "agent.yaml"
    # no step-back reviews here (their scripted call is tests/test_agent_session.py's)
    agent.write_text("anthropic:\n  retries: 3\n  backoff_s: 0.01\n  model: claude-opus-4-8\n"
                     "  stepback_after: 0\n")
    return repo, tmp_path / "ws", agent


def argv(repo, ws, agent, *extra):
    return ["--workspace", str(ws), "--repo", str(repo), "--job-module", JOB_MODULE,
            "--proposer", "anthropic", "--agent-config", str(agent), "--mem-limit-mb", "0",
            "--set", "fake.ci=5", *extra]


def test_scripted_llm_drives_every_outcome_into_the_tree(setup):
    repo, ws, agent = setup
    script = [
        message(("propose_config", {**PLAN, "overrides": ["train.lr=0.01"], "parent_id": 1,
                                    "hypothesis": "a larger step size learns faster on a tiny budget"}), n=0),
        message(("list_nodes", {}), ("read_file", {"path": "go_core/learn/fake_behaviour.py"}), n=1),
        message(("propose_code", {**PLAN, "patch": NOOP_PATCH, "hypothesis": "a comment changes nothing"}), n=2),
        # asks for an experiment already run: the proposer refuses it, the model tries again
        message(("propose_config", {**PLAN, "overrides": ["train.lr=0.01"], "hypothesis": "again"}), n=3),
        message(("propose_code", {**PLAN, "patch": behaviour_patch("crash"), "hypothesis": "crashes"}), n=4),
        message(("propose_code", {**PLAN, "patch": behaviour_patch("hang"), "hypothesis": "hangs"}), n=5),
        message(("propose_code", {**PLAN, "patch": PROTECTED_PATCH, "hypothesis": "easier rules"}), n=6),
        message(("conclude", {"answer": "lr 0.01 beats the baseline; code changes did not help.",
                              "evidence": [1, 2]}), n=7),
    ]
    sdk = FakeSDK(script)
    rc = run_cli.main(["Does a larger learning rate help?", *argv(repo, ws, agent, "--max-nodes", "12",
                                                                   "--job-timeout-s", "8")], client=sdk)
    assert rc == 0
    assert not sdk.script, "every scripted message was used"
    store = TreeStore(ws / "tree.db")
    nodes = store.nodes(1)
    by_hyp = {n.hypothesis: n for n in nodes}
    base = nodes[0]
    assert base.kind == "baseline" and base.status == "ok"
    cfg = by_hyp["a larger step size learns faster on a tiny budget"]
    assert (cfg.kind, cfg.status, cfg.overrides, cfg.verdict) == ("config", "ok", ["train.lr=0.01"], "better")
    assert "Elo z-test" in cfg.verdict_test
    noop = by_hyp["a comment changes nothing"]
    assert noop.kind == "code" and noop.status == "ok" and noop.verdict == "inconclusive"
    reruns = [n for n in nodes if n.kind == "rerun"]
    assert [r.parent_id for r in reruns] == [noop.id] and reruns[0].seed == 1 and reruns[0].status == "ok"
    crash = by_hyp["crashes"]
    assert crash.status == "crash" and "fake job crashed on purpose" in crash.log_tail
    hang = by_hyp["hangs"]
    assert hang.status == "timeout" and "wall-clock limit" in hang.error
    prot = by_hyp["easier rules"]
    assert prot.status == "refused" and "go_core/game/board.py" in prot.error
    assert "again" not in by_hyp, "a repeated experiment never becomes a node"
    q = store.get_question(1)
    assert q.status == "answered" and q.answer.startswith("lr 0.01 beats") and q.evidence == [1, 2]
    # tokens and cost per node and in total; prompt caching on the stable prefix
    assert cfg.tokens > 0 and cfg.cost_usd > 0 and q.cost_usd >= sum(n.cost_usd for n in nodes)
    assert q.tokens == sum((1200 + 150 + 900) for _ in range(8))
    for call in sdk.calls:
        assert call["tools"][-1]["cache_control"] == {"type": "ephemeral"}
        assert call["system"][-1]["cache_control"] == {"type": "ephemeral"}
        assert call["model"] == "claude-opus-4-8"
    # tool results went back to the model: the read_file answer holds the file
    tool_results = sdk.calls[2]["messages"][-1]["content"]
    assert any("ELO_BONUS" in r["content"] for r in tool_results)
    # the report was regenerated with the answer
    assert (ws / "report" / "index.html").exists()
    # the job never saw the API key
    env = json.loads((ws / "runs" / str(cfg.id) / "env.json").read_text())
    assert "ANTHROPIC_API_KEY" not in env["keys"]


def test_api_errors_pause_the_question_and_resume_continues_it(setup):
    repo, ws, agent = setup
    down = FakeSDK([connection_error() for _ in range(3)])
    rc = run_cli.main(["Is c_puct 2 better?", *argv(repo, ws, agent, "--max-nodes", "3", "--no-report")],
                      client=down)
    assert rc == 130
    store = TreeStore(ws / "tree.db")
    assert store.get_question(1).status == "interrupted"
    assert [n.status for n in store.nodes(1)] == ["ok"], "the baseline finished and was kept"
    up = FakeSDK([message(("propose_config", {**PLAN, "overrides": ["mcts.c_puct=2.0"], "hypothesis": "c2"}), n=0),
                  message(("conclude", {"answer": "c_puct 2 vs 1.5: see node 2", "evidence": [1, 2]}), n=1)])
    rc = run_cli.main(["--resume", *argv(repo, ws, agent, "--no-report")], client=up)
    assert rc == 0
    nodes = store.nodes(1)
    assert [(n.id, n.status) for n in nodes] == [(1, "ok"), (2, "ok")]
    assert store.get_question(1).status == "answered"


def test_verdict_needs_the_difference_outside_the_noise():
    base = [{"elo": 100, "elo_ci95": [60, 140]}]
    assert compare([{"elo": 130, "elo_ci95": [90, 170]}], base).verdict == "inconclusive"
    assert compare([{"elo": 130, "elo_ci95": [90, 170]}], base).within_noise
    assert compare([{"elo": 250, "elo_ci95": [210, 290]}], base).verdict == "better"
    assert compare([{"elo": -50, "elo_ci95": [-90, -10]}], base).verdict == "worse"
    # pooling seeds shrinks the interval: four runs at +50 become significant
    four = [{"elo": 150, "elo_ci95": [110, 190]}] * 4
    assert compare(four, [{"elo": 100, "elo_ci95": [95, 105]}]).verdict == "better"
    # win-rate fallback: 0% vs 0% is no evidence either way
    v = compare([{"winrate_vs_ref": 0.0, "games_vs_ref": 20}], [{"winrate_vs_ref": 0.0, "games_vs_ref": 20}])
    assert v.verdict == "inconclusive" and "two-proportion" in v.test
    assert compare([{}], base).verdict is None


def test_cost_budget_stops_proposing_and_the_loop_answers_itself(setup):
    repo, ws, agent = setup
    sdk = FakeSDK([message(("propose_config", {**PLAN, "overrides": ["train.lr=0.01"], "hypothesis": "lr"}), n=0)])
    rc = run_cli.main(["Does lr matter?", *argv(repo, ws, agent, "--max-nodes", "10",
                                                 "--max-cost-usd", "0.005", "--no-report")], client=sdk)
    assert rc == 0 and not sdk.script
    store = TreeStore(ws / "tree.db")
    q = store.get_question(1)
    # one call cost 1200 x $5 + 150 x $25 + 900 x $6.25 per Mtok = $0.015375 > $0.005
    assert q.cost_usd == pytest.approx(0.015375)
    assert len(store.nodes(1)) == 2 and q.status == "limit-reached"
    assert "max-cost" in q.answer and q.evidence[0] == 1


def test_proposer_defaults_to_offline_without_an_api_key(monkeypatch):
    from autoresearch.agent_config import AgentConfig
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert run_cli.choose_proposer_kind(AgentConfig()) == "offline"
    with pytest.raises(SystemExit, match="needs ANTHROPIC_API_KEY"):
        run_cli.choose_proposer_kind(AgentConfig(proposer="anthropic"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    assert run_cli.choose_proposer_kind(AgentConfig()) == "anthropic"
