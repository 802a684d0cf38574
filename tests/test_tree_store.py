"""The experiment tree store: nodes, questions, migrations, and several writing processes."""
import hashlib
import multiprocessing as mp
import sqlite3

import pytest

from experiment_tree.schema import MIGRATIONS, SCHEMA_VERSION, migrate
from experiment_tree.store import TreeStore
from experiment_tree.workspace import Workspace


def test_nodes_round_trip_with_parent_links_and_patch_hash(tmp_path):
    store = TreeStore(tmp_path / "tree.db")
    q = store.add_question("does a 10% no-resign fraction help?", {"runs": 5, "hours": 2})
    root = store.add_node(q, None, "baseline", "the default config", seed=1)
    patch = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n"
    child = store.add_node(q, root, "code", "bigger net", overrides=["model.blocks=4"],
                           patch=patch, command="python -m experiments.train", seed=2)
    node = store.get_node(child)
    assert node.parent_id == root and node.question_id == q
    assert node.overrides == ["model.blocks=4"] and node.seed == 2 and node.kind == "code"
    assert node.patch_sha256 == hashlib.sha256(patch.encode()).hexdigest()
    assert node.status == "pending" and node.metrics == {}
    assert [n.id for n in store.children(root)] == [child]
    assert [n.id for n in store.ancestors(child)] == [root]


def test_update_node_records_every_contract_field(tmp_path):
    store = TreeStore(tmp_path / "tree.db")
    q = store.add_question("q", {})
    n = store.add_node(q, None, "baseline", "h")
    node = store.update_node(
        n, status="ok", run_dir=tmp_path / "runs" / "1", metrics={"elo": 120.5, "elo_ci95": [90, 150]},
        verdict="better", verdict_test="elo CI disjoint", notes="it helped", error=None,
        log_tail="last line", wandb_path="offline-run-x", started_at=1.0, finished_at=2.0,
        tokens=10, cost_usd=0.01)
    assert node.status == "ok" and node.metrics["elo_ci95"] == [90, 150]
    assert node.run_dir == str(tmp_path / "runs" / "1")
    assert (node.verdict, node.verdict_test, node.notes) == ("better", "elo CI disjoint", "it helped")
    assert (node.log_tail, node.wandb_path, node.started_at, node.finished_at) == (
        "last line", "offline-run-x", 1.0, 2.0)
    assert (node.tokens, node.cost_usd) == (10, 0.01)


def test_bad_values_are_refused_with_the_allowed_ones(tmp_path):
    store = TreeStore(tmp_path / "tree.db")
    q = store.add_question("q", {})
    n = store.add_node(q, None, "baseline", "h")
    with pytest.raises(ValueError, match="kind"):
        store.add_node(q, n, "magic", "h")
    with pytest.raises(ValueError, match="status"):
        store.update_node(n, status="done")
    with pytest.raises(ValueError, match="verdict"):
        store.update_node(n, verdict="great")
    with pytest.raises(TypeError, match="unknown field"):
        store.update_node(n, colour="red")
    with pytest.raises(KeyError, match="parent node 99"):
        store.add_node(q, 99, "config", "h")
    q2 = store.add_question("another", {})
    with pytest.raises(ValueError, match="belongs to question"):
        store.add_node(q2, n, "config", "h")
    # a failed write leaves nothing behind
    assert [x.id for x in store.nodes()] == [n]


def test_answer_usage_and_evidence(tmp_path):
    store = TreeStore(tmp_path / "tree.db")
    q = store.add_question("q", {"runs": 3})
    a = store.add_node(q, None, "baseline", "h")
    b = store.add_node(q, a, "config", "h2")
    store.add_usage(q, tokens=1000, cost_usd=0.02)
    store.add_usage(q, tokens=500, cost_usd=0.01, node_id=b)
    with pytest.raises(ValueError, match="not nodes of question"):
        store.set_answer(q, "yes", [b, 42])
    question = store.set_answer(q, "yes, +80 Elo", [b])
    assert question.answer == "yes, +80 Elo" and question.evidence == [b]
    assert question.status == "answered" and question.finished_at is not None
    assert question.tokens == 1500 and question.cost_usd == pytest.approx(0.03)
    assert store.get_node(b).tokens == 500
    assert [x.text for x in store.questions()] == ["q"]


def test_database_is_in_wal_mode(tmp_path):
    TreeStore(tmp_path / "tree.db")
    conn = sqlite3.connect(tmp_path / "tree.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_older_database_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "tree.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=1) == 1
    conn.execute("INSERT INTO questions (text, budget, status, created_at) "
                 "VALUES ('old q', '{\"runs\": 3, \"budget\": \"tiny\"}', 'budget-exhausted', 0)")
    conn.execute("INSERT INTO nodes (question_id, parent_id, created_at, kind, hypothesis, status, "
                 "metrics) VALUES (1, NULL, 0, 'baseline', 'old node', 'ok', '{\"elo\": 5}')")
    conn.close()

    store = TreeStore(path)
    assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    node = store.get_node(1)
    assert node.hypothesis == "old node" and node.metrics == {"elo": 5}
    assert node.tokens == 0 and node.error is None
    assert store.get_question(1).evidence == []
    # version 6: the question's record is its settings; a stop at a limit is `limit-reached`
    q = store.get_question(1)
    assert q.settings == {"runs": 3, "budget": "tiny"} and q.status == "limit-reached"
    # and the new columns work
    store.update_node(1, wandb_path="x", error="boom")
    assert store.get_node(1).wandb_path == "x"


def test_a_newer_database_is_refused(tmp_path):
    path = tmp_path / "tree.db"
    TreeStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 5,))
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this code"):
        TreeStore(path)


def _writer(path, question_id, parent_id, tag, count, barrier):
    store = TreeStore(path)
    barrier.wait()
    for i in range(count):
        n = store.add_node(question_id, parent_id, "config", f"{tag}-{i}", overrides=[f"x={i}"])
        store.update_node(n, status="ok", metrics={"i": i})
    store.close()


def test_two_processes_adding_nodes_at_once_lose_nothing(tmp_path):
    path = tmp_path / "tree.db"
    store = TreeStore(path)
    q = store.add_question("concurrency", {})
    root = store.add_node(q, None, "baseline", "root")
    ctx = mp.get_context("spawn")  # real, independent processes (no inherited connection)
    barrier = ctx.Barrier(2)
    count = 60
    procs = [ctx.Process(target=_writer, args=(str(path), q, root, tag, count, barrier))
             for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0, "a writer process failed"
    nodes = store.nodes(q)
    hyps = sorted(n.hypothesis for n in nodes if n.id != root)
    assert hyps == sorted(f"{t}-{i}" for t in "ab" for i in range(count))
    assert all(n.status == "ok" and n.parent_id == root for n in nodes if n.id != root)
    assert len({n.id for n in nodes}) == 2 * count + 1


def test_workspace_layout(tmp_path):
    ws = Workspace(tmp_path / "ws")
    assert ws.tree_db == tmp_path / "ws" / "tree.db"
    assert ws.run_dir(7) == tmp_path / "ws" / "runs" / "7"
    assert ws.report_dir == tmp_path / "ws" / "report"
    with pytest.raises(FileNotFoundError, match="research run"):
        ws.store(create=False)
    store = ws.store()
    assert ws.tree_db.exists() and store.questions() == []
