"""The Anthropic proposer through the REAL SDK against a fake Messages API on 127.0.0.1: what
arrives at the server (tools with their forecast/track schemas, cache_control, image blocks),
retries on 529 overloaded and 429 rate limit with retry-after, the models endpoint check."""
from __future__ import annotations

import base64
import os
import struct
import zlib

import pytest

from autoresearch.agent_config import AnthropicConfig
from autoresearch.digest import make_digest
from autoresearch.proposers.anthropic_client import AnthropicClient, ModelUnavailable
from autoresearch.proposers.anthropic_proposer import AnthropicProposer
from autoresearch.proposers.base import ProposerUnavailable
from experiment_tree.store import TreeStore
from tests.fake_messages_api import FakeMessagesAPI, error, tool_message

FORECAST = {"diff_elo": 30, "interval_80": [-10, 70], "p_better": 0.6}


def png_bytes() -> bytes:
    """A valid 1x1 PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


@pytest.fixture()
def tree(tmp_path):
    store = TreeStore(tmp_path / "ws" / "tree.db")
    qid = store.add_question("Does a larger learning rate help?", {"runs": 10})
    base = store.add_node(qid, None, "baseline", "baseline")
    run_dir = tmp_path / "ws" / "runs" / str(base)
    run_dir.mkdir(parents=True)
    store.update_node(base, status="ok", run_dir=str(run_dir),
                      metrics={"elo": 250.0, "elo_ci95": [210.0, 290.0]})
    return store, qid, base, tmp_path


def proposer(api, store, qid, repo, sleeps=None, **cfg) -> AnthropicProposer:
    cfg.setdefault("model", "claude-opus-4-8")   # not deprecated in the installed SDK
    c = AnthropicConfig(retries=3, backoff_s=0.01, **cfg)
    client = AnthropicClient(c, sdk=api.sdk(), sleep=(sleeps.append if sleeps is not None else lambda s: None))
    return AnthropicProposer(c, store, qid, repo, client=client)


def test_the_sdk_sends_tools_cache_control_forecast_schema_and_images(tree):
    store, qid, base, tmp = tree
    fig = tmp / "ws" / "report" / "figures" / f"run_{base}.png"
    fig.parent.mkdir(parents=True)
    fig.write_bytes(png_bytes())
    script = [tool_message(("read_node", {"node_id": base})),
              tool_message(("propose_config", {"overrides": ["train.lr=0.01"], "hypothesis": "faster",
                                               "track": "learning rate",
                                               "track_aim": "is the step size the bottleneck?",
                                               "forecast": FORECAST}))]
    with FakeMessagesAPI(script) as api:
        p = proposer(api, store, qid, tmp)
        out = p.propose(make_digest(store, qid), 1)
    assert len(out) == 1 and out[0].track == "learning rate"
    assert out[0].forecast.diff_elo == 30 and out[0].forecast.p_better == 0.6
    assert out[0].track_aim == "is the step size the bottleneck?"
    # the models endpoint was asked about the configured model before any message
    assert api.requests[0].method == "GET" and api.requests[0].path == "/v1/models/claude-opus-4-8"
    sent = api.messages()
    assert len(sent) == 2
    for r in sent:
        # the SDK's own auth and version headers: a real request, not a replayed object
        assert "test" in (r.headers.get("x-api-key", "") + r.headers.get("authorization", ""))
        assert "anthropic-version" in r.headers and r.headers["user-agent"].startswith("Anthropic/Python")
        body = r.body
        assert body["model"] == "claude-opus-4-8" and body["max_tokens"] == 4096
        assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
        assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
        assert "Forecast every proposal" in body["system"][0]["text"]   # brief.md, loaded
        tools = {t["name"]: t for t in body["tools"]}
        for name in ("propose_config", "propose_code"):
            schema = tools[name]["input_schema"]
            assert {"forecast", "track"} <= set(schema["required"])
            assert schema["properties"]["forecast"]["required"] == ["diff_elo", "interval_80", "p_better"]
    # the digest carries the calibration and the tracks
    first = sent[0].body["messages"][0]["content"]
    assert "Your forecasts so far: none scored yet" in first and "Tracks: none yet" in first
    # the read_node result went back as a text block and the node's figure as an image block
    result = sent[1].body["messages"][-1]["content"][0]
    assert result["type"] == "tool_result"
    kinds = [b["type"] for b in result["content"]]
    assert kinds == ["text", "image"]
    image = result["content"][1]
    assert image["source"]["media_type"] == "image/png"
    assert base64.b64decode(image["source"]["data"]) == png_bytes()


def test_a_proposal_without_a_forecast_or_a_new_track_without_an_aim_is_sent_back(tree):
    store, qid, base, tmp = tree
    script = [tool_message(("propose_config", {"overrides": ["train.lr=0.01"], "hypothesis": "h",
                                               "track": "lr"})),
              tool_message(("propose_config", {"overrides": ["train.lr=0.01"], "hypothesis": "h",
                                               "track": "lr", "forecast": {"diff_elo": 90,
                                                                           "interval_80": [0, 50],
                                                                           "p_better": 0.5}})),
              tool_message(("propose_config", {"overrides": ["train.lr=0.01"], "hypothesis": "h",
                                               "track": "lr", "forecast": FORECAST})),
              tool_message(("propose_config", {"overrides": ["train.lr=0.01"], "hypothesis": "h",
                                               "track": "lr", "track_aim": "step size",
                                               "forecast": FORECAST}))]
    with FakeMessagesAPI(script) as api:
        out = proposer(api, store, qid, tmp).propose(make_digest(store, qid), 1)
    assert len(out) == 1 and out[0].track_aim == "step size"
    errors = [m.body["messages"][-1]["content"][0] for m in api.messages()[1:]]
    assert all(e["is_error"] for e in errors)
    assert "forecast is required" in errors[0]["content"]
    assert "must lie in its interval_80" in errors[1]["content"]
    assert "is new: give its track_aim" in errors[2]["content"]


def test_retries_on_overloaded_and_rate_limit_honour_retry_after(tree):
    store, qid, base, tmp = tree
    script = [error(529), error(429, retry_after=7),
              tool_message(("conclude", {"answer": "done", "evidence": [base]}))]
    sleeps: list[float] = []
    with FakeMessagesAPI(script) as api:
        out = proposer(api, store, qid, tmp, sleeps=sleeps).propose(make_digest(store, qid), 1)
    assert out.answer == "done"
    assert len(api.messages()) == 3, "two failed attempts, then the answer"
    assert api.messages()[0].body == api.messages()[2].body, "the retry resends the same request"
    # 529: our own backoff (0.01 s); 429: the server's retry-after (7 s) wins over the backoff
    assert sleeps == [pytest.approx(0.01), pytest.approx(7.0)]


def test_retry_after_is_capped_and_persistent_overload_pauses_the_question(tree):
    store, qid, base, tmp = tree
    sleeps: list[float] = []
    with FakeMessagesAPI([error(429, retry_after=3600), error(529), error(529)]) as api:
        p = proposer(api, store, qid, tmp, sleeps=sleeps, max_retry_after_s=30.0)
        with pytest.raises(ProposerUnavailable, match="failed 3 times.*529|failed 3 times"):
            p.propose(make_digest(store, qid), 1)
    assert sleeps[0] == 30.0 and len(api.messages()) == 3


def test_a_request_error_is_not_retried(tree):
    store, qid, base, tmp = tree
    with FakeMessagesAPI([error(400)]) as api:
        with pytest.raises(ProposerUnavailable, match="refused the request"):
            proposer(api, store, qid, tmp).propose(make_digest(store, qid), 1)
    assert len(api.messages()) == 1


def test_a_model_the_api_does_not_serve_is_refused_at_start(tree):
    store, qid, base, tmp = tree
    with FakeMessagesAPI([], served=("claude-opus-4-8",)) as api:
        with pytest.raises(ModelUnavailable, match="does not serve model 'claude-opus-4-6'"):
            proposer(api, store, qid, tmp, model="claude-opus-4-6")
    assert [r.path for r in api.requests] == ["/v1/models/claude-opus-4-6"]
    assert not api.messages(), "no message was sent with a model the API refused"


def test_end_of_life_from_the_installed_sdk_refuses_a_retired_model_offline():
    import datetime

    from autoresearch.proposers.anthropic_client import check_model, end_of_life
    eol = end_of_life("claude-opus-4-5")
    assert eol == datetime.date(2027, 1, 22)
    check_model(None, "claude-opus-4-5", today=eol - datetime.timedelta(days=1))   # deprecated: warned
    with pytest.raises(ModelUnavailable, match="end of life on 2027-01-22"):
        check_model(None, "claude-opus-4-5", today=eol)
    assert end_of_life("claude-opus-4-8") is None


def test_the_answer_figure_is_shown_to_the_model_before_it_concludes(tree):
    store, qid, base, tmp = tree
    fig = tmp / "ws" / "report" / "figures" / "node_strength.png"
    fig.parent.mkdir(parents=True)
    fig.write_bytes(png_bytes())
    script = [tool_message(("conclude", {"answer": "the baseline stands", "evidence": [base]}))]
    with FakeMessagesAPI(script) as api:
        c = proposer(api, store, qid, tmp).conclude(make_digest(store, qid))
    assert c.answer == "the baseline stands" and c.evidence == [base]
    body = api.messages()[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "conclude"}
    content = body["messages"][0]["content"]
    assert [b["type"] for b in content] == ["text", "text", "image"]
    assert "The budget is spent" in content[0]["text"] and "Your forecasts so far" in content[0]["text"]
    assert base64.b64decode(content[2]["source"]["data"]) == png_bytes()


def test_run_check_runs_a_snippet_in_a_sandboxed_worktree_of_the_node(tmp_path):
    """The model asks to check a node; the snippet runs in the node's code (its patch applied),
    without the API key, and a command past its time limit is killed; both are tallied."""
    from tests.fakerepo import behaviour_patch, make_fake_repo
    repo = make_fake_repo(tmp_path / "repo")
    store = TreeStore(tmp_path / "ws" / "tree.db")
    qid = store.add_question("q?", {"runs": 5})
    base = store.add_node(qid, None, "baseline", "b")
    node = store.add_node(qid, base, "code", "bonus", patch=behaviour_patch("ok", bonus=77.0))
    snippet = ("import os, go_core.learn.fake_behaviour as f; "
               "print('bonus', f.ELO_BONUS, 'key', os.environ.get('ANTHROPIC_API_KEY'))")
    script = [tool_message(("run_check", {"node_id": node, "python": snippet})),
              tool_message(("run_check", {"node_id": node, "python": "import time; time.sleep(60)",
                                          "timeout_s": 1})),
              tool_message(("conclude", {"answer": "checked", "evidence": [node]}))]
    os.environ["ANTHROPIC_API_KEY"] = "sk-must-not-leak"
    try:
        with FakeMessagesAPI(script) as api:
            p = proposer(api, store, qid, repo, check_timeout_s=20.0)
            out = p.propose(make_digest(store, qid), 1)
    finally:
        del os.environ["ANTHROPIC_API_KEY"]
    assert out.answer == "checked"
    first = api.messages()[1].body["messages"][-1]["content"][0]
    assert not first.get("is_error"), first["content"]
    assert "exit code 0" in first["content"] and "bonus 77.0 key None" in first["content"]
    from autoresearch.bwrap import bwrap_status
    if bwrap_status()[0]:                       # where bubblewrap runs, the check runs inside it
        assert "sandbox: bwrap" in first["content"]
    second = api.messages()[2].body["messages"][-1]["content"][0]
    assert second["is_error"] and "timed out after 1 s" in second["content"]
    b = store.get_question(qid).settings
    assert b["checks"] == 2 and b["check_s"] >= 1.0
    assert not list((tmp_path / "ws" / "checks").iterdir()), "the worktrees are removed"
