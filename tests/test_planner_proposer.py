"""The planner proposer: one node per arm (an A/B's treatment trained as the child of its control),
an answer that reads the verdicts with their intervals, and `research run` driving it end to end
over the fake training job."""
from __future__ import annotations

import os
from types import SimpleNamespace

from autoresearch import run_cli
from autoresearch.digest import make_digest
from autoresearch.planner.design import make_plan
from autoresearch.planner.plan import Plan
from autoresearch.proposers.base import Conclusion
from autoresearch.proposers.planner import PlannerProposer, claim
from experiment_tree.store import TreeStore
from tests.fakerepo import JOB_MODULE, make_fake_repo


def tree(tmp_path, plan, elo=300.0):
    store = TreeStore(tmp_path / "tree.db")
    qid = store.add_question(plan.question, {"runs": plan.runs, "plan": plan.to_dict()})
    base = store.add_node(qid, None, "baseline", "baseline")
    store.update_node(base, status="ok", metrics={"elo": elo, "elo_ci95": [elo - 50, elo + 50]})
    return store, qid, base


def add(store, qid, p, **done):
    nid = store.add_node(qid, p.parent_id, p.kind, p.hypothesis, overrides=p.overrides)
    if done:
        store.update_node(nid, status="ok", **done)
    return nid


def test_ab_between_two_named_values_trains_the_treatment_as_the_controls_child(tmp_path):
    plan = make_plan("Does c_puct 2.5 beat 1.5 on 9x9?", max_nodes=4)
    store, qid, base = tree(tmp_path, plan)
    prop = PlannerProposer(plan)
    (ctrl,) = prop.propose(make_digest(store, qid), 4)       # the treatment waits for its control
    assert ctrl.kind == "config" and ctrl.parent_id == base and ctrl.overrides == ["mcts.c_puct=1.5"]
    assert "control" in ctrl.hypothesis and plan.question in ctrl.hypothesis
    cid = add(store, qid, ctrl)
    (treat,) = prop.propose(make_digest(store, qid), 4)
    assert treat.parent_id == cid and treat.overrides == ["mcts.c_puct=2.5"]
    assert treat.meta == {"arm": "mcts.c_puct=2.5", "x": {"mcts.c_puct": 2.5}, "seeds": 1}
    tid = add(store, qid, treat)
    assert prop.propose(make_digest(store, qid), 4) == []      # both running: wait
    store.update_node(cid, status="ok", metrics={"elo": 310.0, "elo_ci95": [260.0, 360.0]})
    store.update_node(tid, status="ok", metrics={"elo": 450.0, "elo_ci95": [400.0, 500.0]},
                      verdict="better", verdict_test="z=3.1")
    c = prop.propose(make_digest(store, qid), 4)
    assert isinstance(c, Conclusion) and sorted(c.evidence) == [cid, tid]   # the arms, not the default
    assert "mcts.c_puct=2.5 vs mcts.c_puct=1.5: better (z=3.1); Elo 450 [400, 500]" in c.answer
    assert "mcts.c_puct=1.5: Elo 310 [260, 360]" in c.answer


def test_when_the_asked_value_is_the_baseline_the_verdict_is_read_the_other_way(tmp_path):
    plan = make_plan("Does a 10% no-resign fraction help a tiny 9x9 run?")
    store, qid, base = tree(tmp_path, plan)
    prop = PlannerProposer(plan)
    (p,) = prop.propose(make_digest(store, qid), 2)
    assert p.overrides == ["selfplay.no_resign_fraction=0.0"] and p.parent_id == base
    detail = {"diff": -80.0, "ci95": [-150.0, -10.0], "mde": 95.0}
    add(store, qid, p, metrics={"elo": 220.0}, verdict="worse", verdict_test="h2h")
    digest = make_digest(store, qid)
    digest.entries[1].verdict_detail = detail          # what the head-to-head verdicts will add
    answer = prop.conclude(digest).answer
    # 0.0 is worse than the baseline's 0.1 by 80 Elo: the 10% the question asks about is better
    assert "selfplay.no_resign_fraction=0.1 vs selfplay.no_resign_fraction=0: better: +80 Elo " \
           "[+10, +150] head-to-head, minimum detectable difference 95 Elo" in answer


def test_an_inconclusive_answer_says_what_it_rules_out_and_what_would_settle_it():
    e = SimpleNamespace(status="ok", verdict="inconclusive", elo=300.0, elo_ci95=[250, 350],
                        verdict_test="z=0.4", why_failed=None,
                        verdict_detail={"diff": 20.0, "ci95": [-90.0, 130.0], "mde": 160.0})
    assert claim(e) == ("inconclusive: +20 Elo [-90, +130] head-to-head, minimum detectable "
                        "difference 160 Elo; it rules out differences below -90 and above +130 Elo")
    plan = make_plan("Does c_puct 2.5 beat 1.5 on 9x9?")
    from autoresearch.proposers.planner import ArmResult, write_answer
    results = [ArmResult(a, e if a.role == "treatment" else None) for a in plan.arms]
    text = write_answer(plan, results)
    assert "Not settled: 4 seeds per arm (--seeds 4)" in text and "more minutes" in text


def test_a_sweep_proposes_every_new_arm_then_names_the_best_and_the_trend(tmp_path):
    plan = make_plan("How does strength depend on visits between 8 and 64?")
    store, qid, base = tree(tmp_path, plan, elo=300.0)
    prop = PlannerProposer(plan)
    out = prop.propose(make_digest(store, qid), 2)          # n caps a round
    assert [p.overrides for p in out] == [["selfplay.visits=8"], ["selfplay.visits=32"]]
    for p, elo in zip(out, (100.0, 500.0)):
        add(store, qid, p, metrics={"elo": elo, "elo_ci95": [elo - 40, elo + 40]})
    (last,) = prop.propose(make_digest(store, qid), 2)
    add(store, qid, last, metrics={"elo": 700.0, "elo_ci95": [660.0, 740.0]})
    c = prop.propose(make_digest(store, qid), 2)
    assert isinstance(c, Conclusion)
    assert "Best: selfplay.visits=64 (700 [660, 740]), clear of every other arm's interval." in c.answer
    assert "Trend: elo rises with selfplay.visits" in c.answer


def test_a_sweep_point_with_a_head_to_head_verdict_is_read_on_the_ladder_scale(tmp_path):
    """Two ladder walks of a few games each disagree with 40 head-to-head games: the answer ranks
    arms by what the verdict measured (the baseline's Elo + the head-to-head difference)."""
    plan = make_plan("How does c_puct change strength?", x=("mcts.c_puct", [1.25, 3.0]))
    store, qid, base = tree(tmp_path, plan, elo=472.0)
    prop = PlannerProposer(plan)
    (p,) = prop.propose(make_digest(store, qid), 2)
    add(store, qid, p, metrics={"elo": 392.0, "elo_ci95": [64.0, 720.0]}, verdict="inconclusive")
    digest = make_digest(store, qid)
    digest.entries[1].verdict_detail = {"diff": 235.0, "ci95": [-121.0, 590.0], "mde": 508.0}
    answer = prop.conclude(digest).answer
    assert "- mcts.c_puct=3: elo 707 [351, 1062]" in answer
    assert "Best: mcts.c_puct=3 (707" in answer


def test_a_crashed_arm_is_reported_and_the_rest_still_answer(tmp_path):
    plan = make_plan("Which batch size is best?")
    store, qid, _ = tree(tmp_path, plan)
    prop = PlannerProposer(plan)
    a, b = prop.propose(make_digest(store, qid), 4)
    nid = add(store, qid, a)
    store.update_node(nid, status="crash", error="Traceback\nRuntimeError: out of memory")
    add(store, qid, b, metrics={"elo": 350.0, "elo_ci95": [300.0, 400.0]})
    c = prop.propose(make_digest(store, qid), 4)
    assert "train.batch_size=64: crash: RuntimeError: out of memory" in c.answer
    assert "Best: train.batch_size=256 (350 [300, 400]); its interval overlaps" in c.answer


def test_research_run_plans_runs_and_answers_the_question(tmp_path, monkeypatch):
    """The offline default, end to end over the fake job: the plan is stored on the question,
    each arm is a node (the treatment the child of its control), and the answer reads them."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    repo = make_fake_repo(tmp_path / "repo")
    ws = tmp_path / "ws"
    agent = tmp_path / "agent.yaml"      # the loop's own seed re-runs would spend the plan's runs
    agent.write_text("verdict:\n  max_reruns: 0\n")
    rc = run_cli.main(["Does c_puct 2.5 beat 1.5 on 9x9?", "--workspace", str(ws), "--repo",
                       str(repo), "--job-module", JOB_MODULE, "--mem-limit-mb", "0", "--no-report",
                       "--max-nodes", "3", "--set", "fake.ci=5", "--agent-config", str(agent)])
    assert rc == 0
    store = TreeStore(ws / "tree.db")
    q = store.questions()[-1]
    plan = Plan.from_dict(q.settings["plan"])
    assert plan.design == "ab" and plan.x_values == [1.5, 2.5]
    nodes = {n.id: n for n in store.nodes(q.id)}
    by_arm = {plan.arm_of_overrides(n.overrides).label: n for n in nodes.values()
              if n.kind == "config"}
    assert set(by_arm) == {"mcts.c_puct=1.5", "mcts.c_puct=2.5"}
    assert by_arm["mcts.c_puct=2.5"].parent_id == by_arm["mcts.c_puct=1.5"].id
    assert all(n.status == "ok" for n in nodes.values()), [(n.status, n.error) for n in nodes.values()]
    assert q.status == "answered" and "mcts.c_puct=2.5 vs mcts.c_puct=1.5" in q.answer


def test_sweep_flag_keeps_the_optuna_search(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    from tests.fakerepo import FAKE_PROJECT
    repo = make_fake_repo(tmp_path / "repo")
    ws = tmp_path / "ws"
    rc = run_cli.main(["Is Go hard?", "--workspace", str(ws), "--repo", str(repo), "--job-module",
                       JOB_MODULE, "--mem-limit-mb", "0", "--no-report", "--max-nodes", "2",
                       "--sweep", str(FAKE_PROJECT / "fake_sweep.yaml")])
    assert rc == 0
    store = TreeStore(ws / "tree.db")
    q = store.questions()[-1]
    assert "plan" not in q.settings
    assert [n.kind for n in store.nodes(q.id)] == ["baseline", "sweep-trial"]
    assert os.path.exists(ws / "optuna.db")
