"""`--seeds N` for real (issue 13): every arm of a plan, the baseline included, trains seeds
s..s+N-1 as seed re-runs; child seed k is compared with baseline seed k; the verdict pools the N
seed pairs and may add one more on top when it stays open, up to the seed-pair cap; the x/y point
of an arm is pooled over its seeds. The loop's own functions over a real tree.db, the real judge
(autoresearch/judge.py, verdict.py) and a fake referee (tests/fake_referee.py); no job runs here
except in the end-to-end test, which runs the fake training job."""
from __future__ import annotations

import json

import pytest

from autoresearch import run_cli
from autoresearch.agent_config import AgentConfig
from autoresearch.digest import make_digest
from autoresearch.judge import Judge
from autoresearch.loop import ResearchLoop
from autoresearch.planner.design import make_plan, parse_x_flag
from autoresearch.proposers.planner import PlannerProposer
from experiment_tree.store import TreeStore
from experiment_tree.workspace import Workspace
from reports.xy import xy_result
from go_core.arena.sprt import estimate
from tests.fake_referee import COUNTS_BY_SEED, EVEN, FakeReferee, fake_checkpoints
from tests.fakerepo import JOB_MODULE, make_fake_repo

QUESTION = "How does c_puct change strength?"


def finish(store, ws, node, elo=300.0):
    """Mark `node` finished ok with a run directory holding its summary (the fake checkpoint)."""
    rd = ws.run_dir(node.id)
    rd.mkdir(parents=True, exist_ok=True)
    (rd / "summary.json").write_text(json.dumps({"status": "ok", "metrics": {"elo": elo}}))
    (rd / "metrics.jsonl").write_text(json.dumps({"step": 1, "policy_loss": 2.0 - node.seed / 10}) + "\n")
    # the referee puts a node on the ladder, not its seed re-runs (autoresearch/judge.py)
    ladder = {} if node.kind == "rerun" else {"elo": elo, "elo_ci95": [elo - 50, elo + 50]}
    store.update_node(node.id, status="ok", run_dir=str(rd), finished_at=1.0,
                      metrics={**(node.metrics or {}), **ladder, "policy_loss": 2.0 - node.seed / 10})


def finish_all(store, ws, qid):
    for n in store.nodes(qid):
        if n.status == "pending":
            finish(store, ws, n)


@pytest.fixture()
def planned(tmp_path, monkeypatch):
    """A 2-seed sweep of c_puct (1.25 is the default: the baseline is an arm) with its baseline
    finished, a loop over it with the real judge and a fake referee."""
    fake_checkpoints(monkeypatch)
    ws = Workspace(tmp_path / "ws")
    store = ws.store()
    plan = make_plan(QUESTION, x=parse_x_flag("mcts.c_puct=1.25,2.0,3.0"), seeds=2, max_nodes=12,
                     minutes_per_node=1.0)
    qid = store.add_question(QUESTION, {"runs": 12, "board": "9x9", "budget": "tiny", "seed": 0,
                                        "plan": plan.to_dict()})
    said: list[str] = []
    loop = ResearchLoop(store, ws.root, qid, PlannerProposer(plan), AgentConfig(), tmp_path,
                        say=said.append, report=False)
    loop.ensure_baseline()
    finish(store, ws, loop.baseline())
    ref = FakeReferee(ws.root, lambda nid: store.get_node(nid).seed)
    loop.judge = Judge(ref, loop.cfg.verdict, 16, said.append)
    return loop, store, ws, qid, plan, ref


def seeds_of(store, qid, node_id):
    """The seeds trained for node `node_id`: its own and its seed re-runs'."""
    nodes = store.nodes(qid)
    return sorted([store.get_node(node_id).seed]
                  + [n.seed for n in nodes if n.parent_id == node_id and n.kind == "rerun"])


def test_the_plan_counts_seeds_times_arms_and_cuts_seeds_first():
    plan = make_plan(QUESTION, x=parse_x_flag("mcts.c_puct=1.0,2.0,3.0"), seeds=3, max_nodes=40)
    assert plan.runs == 3 * 4                           # 3 arms + the baseline, 3 seeds each
    cut = make_plan(QUESTION, x=parse_x_flag("mcts.c_puct=1.0,2.0,3.0"), seeds=3, max_nodes=9)
    assert (cut.seeds, cut.runs) == (2, 8)
    assert cut.cut[0].startswith("seeds per arm 3 -> 2: each arm's interval widens x1.22")


def test_each_arm_and_the_baseline_train_n_seeds_paired_by_seed(planned):
    loop, store, ws, qid, plan, ref = planned
    proposals = loop.proposer.propose(make_digest(store, qid), 4)
    assert [p.meta["seeds"] for p in proposals] == [2, 2]
    ids = [loop.add_proposal(p, make_digest(store, qid)) for p in proposals]
    base = loop.baseline()
    # each arm's node and the baseline: seeds 0 and 1, the baseline's seed 1 made once for both
    assert seeds_of(store, qid, base.id) == [0, 1]
    assert all(seeds_of(store, qid, i) == [0, 1] for i in ids)
    reruns = [n for n in store.nodes(qid) if n.kind == "rerun"]
    assert len(reruns) == 3 and len(store.nodes(qid)) == 2 * len(plan.arms) == plan.runs
    assert all(n.overrides == store.get_node(n.parent_id).overrides for n in reruns)
    # no verdict while a seed of the child or of the baseline is still training
    finish(store, ws, store.get_node(ids[0]))
    loop.update_verdicts()
    assert ref.h2h == [] and store.get_node(ids[0]).verdict is None
    finish_all(store, ws, qid)
    loop.update_verdicts()
    # seed k of each child played seed k of the baseline
    base_by_seed = {n.seed: n.id for n in store.nodes(qid) if n.id == base.id
                    or (n.parent_id == base.id and n.kind == "rerun")}
    for child, parent in ref.h2h:
        assert store.get_node(parent).seed == store.get_node(child).seed
        assert parent == base_by_seed[store.get_node(child).seed]
    assert len(ref.h2h) == 4                           # 2 arms x 2 seed pairs
    # the 2 pairs pooled (+ and - cancel) leave the verdict open: one more seed pair on top,
    # seed 2 of the child and of the baseline (made once for both arms)
    assert all(seeds_of(store, qid, i) == [0, 1, 2] for i in ids + [base.id])
    assert all("open after" in store.get_node(i).verdict_test for i in ids)
    finish_all(store, ws, qid)
    loop.update_verdicts()
    cap = loop.cfg.verdict.max_seed_pairs
    for i in ids:
        n = store.get_node(i)
        detail = n.metrics["verdict_detail"]
        assert n.verdict == "inconclusive" and detail["seed_pairs"] == cap == 3
        # pooled by verdict.decide over seeds 0, 1, 2 in seed order: the plain mean of the d_k
        per_seed = [s["diff_elo"] for s in detail["per_seed_pair"]]
        assert per_seed == pytest.approx([estimate(COUNTS_BY_SEED[0]).elo,
                                          estimate(COUNTS_BY_SEED[1]).elo, estimate(EVEN).elo])
        assert detail["diff_elo"] == pytest.approx(sum(per_seed) / 3)
    assert all(seeds_of(store, qid, i) == [0, 1, 2] for i in ids)   # the cap: no seed 3


def test_a_crashed_planned_seed_is_replaced_by_the_next_seed_pair(planned):
    """Seed 1 of the child crashed: the verdict has one pair; the pair it adds is seed 2 (not
    seed 1 again, which would never train), for the child and the baseline."""
    loop, store, ws, qid, plan, ref = planned
    (p,) = loop.proposer.propose(make_digest(store, qid), 1)
    nid = loop.add_proposal(p, make_digest(store, qid))
    crashed = next(n for n in store.nodes(qid) if n.parent_id == nid and n.seed == 1)
    store.update_node(crashed.id, status="crash", finished_at=1.0, error="boom")
    finish_all(store, ws, qid)
    loop.update_verdicts()
    assert seeds_of(store, qid, nid) == [0, 1, 2] and seeds_of(store, qid, loop.baseline().id) == [0, 1, 2]
    finish_all(store, ws, qid)
    loop.update_verdicts()           # pairs 0 and 2 leave it open: seed 3, the third pair
    assert seeds_of(store, qid, nid) == [0, 1, 2, 3]
    finish_all(store, ws, qid)
    loop.update_verdicts()
    detail = store.get_node(nid).metrics["verdict_detail"]
    assert detail["seed_pairs"] == 3 and store.get_node(nid).verdict == "inconclusive"
    assert [store.get_node(c).seed for c, _ in ref.h2h] == [0, 2, 3]   # the crashed seed left out


def test_the_xy_point_of_an_arm_pools_its_seed_nodes(planned):
    loop, store, ws, qid, plan, ref = planned
    for p in loop.proposer.propose(make_digest(store, qid), 4):
        loop.add_proposal(p, make_digest(store, qid))
    finish_all(store, ws, qid)
    loop.update_verdicts()
    finish_all(store, ws, qid)
    loop.update_verdicts()
    q = store.get_question(qid)
    # Elo: the verdict's pooled difference over its 3 seed pairs, every seed node in the point
    points = {p.label: p for p in xy_result(q, store.nodes(qid), ws.root).points}
    for label, p in points.items():
        assert len(p.nodes) == 3, (label, p.nodes)
        if label != "mcts.c_puct=1.25":
            assert p.seeds == 3 and "3 seed pair(s)" in p.how
    # another y (policy loss from each seed's run): the mean of the 3 seeds with a t-interval
    q.settings["plan"]["y"], q.settings["plan"]["y_direction"] = "policy_loss", "minimize"
    points = {p.label: p for p in xy_result(q, store.nodes(qid), ws.root).points}
    assert all(p.seeds == 3 and p.how == "mean of 3 seeds, t-interval" for p in points.values())
    assert points["mcts.c_puct=2"].y == pytest.approx(2.0 - 0.1)    # seeds 0, 1, 2


def test_planned_seeds_stop_at_the_max_nodes(planned):
    loop, store, ws, qid, plan, ref = planned
    b = store.get_question(qid).settings
    b["runs"] = 3
    store.update_question(qid, settings=b)
    said = []
    loop.say = said.append
    (p,) = loop.proposer.propose(make_digest(store, qid), 1)
    nid = loop.add_proposal(p, make_digest(store, qid))
    assert len(store.nodes(qid)) == 3 and seeds_of(store, qid, loop.baseline().id) == [0, 1]
    assert seeds_of(store, qid, nid) == [0]
    assert any(f"no runs left for seed 1 of node {nid}" in s for s in said)


def test_the_planner_concludes_only_after_every_seed_has_finished(planned):
    loop, store, ws, qid, plan, ref = planned
    for p in loop.proposer.propose(make_digest(store, qid), 4):
        loop.add_proposal(p, make_digest(store, qid))
    for n in store.nodes(qid):
        if n.kind != "rerun" and n.status == "pending":
            finish(store, ws, n)
    assert loop.proposer.propose(make_digest(store, qid), 4) == []   # seed runs still pending
    finish_all(store, ws, qid)
    loop.update_verdicts()
    finish_all(store, ws, qid)
    loop.update_verdicts()
    answer = loop.proposer.propose(make_digest(store, qid), 4)
    assert "2 seed(s) per arm" in answer.answer and "3 seed pair(s)" not in answer.answer


def test_research_run_seeds_2_trains_two_seeds_per_arm(tmp_path, monkeypatch):
    """End to end over the fake training job (no referee: the ladder z-test pools the seeds)."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    repo = make_fake_repo(tmp_path / "repo")
    ws = tmp_path / "ws"
    assert run_cli.main([QUESTION, "--x", "mcts.c_puct=1.25,2.5", "--seeds", "2",
                         "--workspace", str(ws), "--repo", str(repo), "--job-module", JOB_MODULE,
                         "--mem-limit-mb", "0", "--no-report", "--max-nodes", "4",
                         "--set", "fake.ci=5"]) == 0
    store = TreeStore(ws / "tree.db")
    q = store.questions()[-1]
    nodes = store.nodes(q.id)
    assert sorted((n.kind, n.seed) for n in nodes) == [("baseline", 0), ("config", 0),
                                                       ("rerun", 1), ("rerun", 1)]
    assert all(n.status == "ok" for n in nodes)
    child = next(n for n in nodes if n.kind == "config")
    assert child.verdict is not None and "2 run(s); parent" in child.verdict_test \
        and child.verdict_test.count("2 run(s)") == 2, child.verdict_test
    points = {p.label: p for p in xy_result(q, nodes, ws).points}
    assert all(p.seeds == 2 and "mean of 2 seeds" in p.how for p in points.values())


def test_an_open_verdict_does_not_take_the_runs_of_planned_arms(tmp_path, monkeypatch):
    """A 3-arm plan that fills --max-nodes 4 exactly: the first arm's open verdict must not spend
    the last two runs on a seed pair (which left two arms of a 2x2 question 'not run'); the next
    arm runs instead. Once every arm is in the tree, the runs left go to seed pairs again."""
    fake_checkpoints(monkeypatch)
    ws = Workspace(tmp_path / "ws")
    store = ws.store()
    plan = make_plan(QUESTION, x=parse_x_flag("mcts.c_puct=1.25,2.0,3.0,4.0"), seeds=1, max_nodes=4,
                     minutes_per_node=1.0)
    assert plan.runs == 4 and len(plan.new_arms) == 3
    qid = store.add_question(QUESTION, {"runs": 4, "board": "9x9", "budget": "tiny", "seed": 0,
                                        "plan": plan.to_dict()})
    loop = ResearchLoop(store, ws.root, qid, PlannerProposer(plan), AgentConfig(), tmp_path,
                        say=lambda m: None, report=False)
    loop.ensure_baseline()
    finish(store, ws, loop.baseline())
    ref = FakeReferee(ws.root, lambda nid: store.get_node(nid).seed)
    loop.judge = Judge(ref, loop.cfg.verdict, 16, lambda m: None)
    (p,) = loop.proposer.propose(make_digest(store, qid), 1)
    first = loop.add_proposal(p, make_digest(store, qid))
    finish_all(store, ws, qid)
    assert loop.proposer.runs_reserved(make_digest(store, qid)) == 2
    loop.update_verdicts()
    assert [n for n in store.nodes(qid) if n.kind == "rerun"] == []
    assert store.get_node(first).verdict == "inconclusive"
    nxt = loop.proposer.propose(make_digest(store, qid), 2)
    assert len(nxt) == 2 and {q.meta["arm"] for q in nxt} != {p.meta["arm"]}
    # with room beyond the plan, the open verdict of the next arm gets its seed pair
    b = store.get_question(qid).settings
    b["runs"] = 6
    store.update_question(qid, settings=b)
    second = loop.add_proposal(nxt[0], make_digest(store, qid))
    finish_all(store, ws, qid)
    loop.update_verdicts()   # 6 - 3 used - 1 arm reserved = 2: one seed pair
    assert seeds_of(store, qid, second) == [0, 1]
