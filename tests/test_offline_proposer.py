"""The offline proposer: Optuna ask/tell over a conf/sweep file, one node per trial, no repeats,
its study kept in the workspace so --resume continues it."""
from __future__ import annotations

from pathlib import Path

import optuna

from autoresearch.digest import make_digest, proposal_key
from autoresearch.proposers.base import Conclusion
from autoresearch.proposers.offline import OfflineProposer
from experiment_tree.store import TreeStore
from tests.fakerepo import FAKE_PROJECT

SWEEP = str(FAKE_PROJECT / "fake_sweep.yaml")


def tree(tmp_path: Path):
    store = TreeStore(tmp_path / "tree.db")
    qid = store.add_question("which lr?", {"runs": 10})
    base = store.add_node(qid, None, "baseline", "baseline")
    store.update_node(base, status="ok", metrics={"elo": 100.0, "elo_ci95": [80.0, 120.0]})
    return store, qid, base


def run_node(store, qid, proposer, p, elo):
    nid = store.add_node(qid, p.parent_id, p.kind, p.hypothesis, overrides=p.overrides)
    proposer.accepted(p, nid)
    node = store.update_node(nid, status="ok", metrics={"elo": elo, "elo_ci95": [elo - 20, elo + 20]})
    proposer.observe(node)
    return nid


def test_trials_become_proposals_with_hypotheses_and_results_are_told(tmp_path):
    store, qid, base = tree(tmp_path)
    prop = OfflineProposer(tmp_path, qid, SWEEP, seed=0)
    out = prop.propose(make_digest(store, qid), 2)
    assert len(out) == 2
    for p in out:
        assert p.kind == "sweep-trial" and p.parent_id == base
        keys = sorted(o.split("=")[0] for o in p.overrides)
        assert keys == ["mcts.c_puct", "train.lr"]
        assert "Trial" in p.hypothesis and "maximize elo" in p.hypothesis
        lr = float(next(o for o in p.overrides if o.startswith("train.lr")).split("=")[1])
        assert 1e-4 <= lr <= 3e-2
    run_node(store, qid, prop, out[0], 150.0)
    prop.observe(store.get_node(base))   # the baseline is not a trial: ignored
    done = [t for t in prop.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert [t.value for t in done] == [150.0]


def test_failed_nodes_are_told_as_failures(tmp_path):
    store, qid, _ = tree(tmp_path)
    prop = OfflineProposer(tmp_path, qid, SWEEP, seed=0)
    (p,) = prop.propose(make_digest(store, qid), 1)
    nid = store.add_node(qid, p.parent_id, p.kind, p.hypothesis, overrides=p.overrides)
    prop.accepted(p, nid)
    prop.observe(store.update_node(nid, status="crash", error="boom"))
    assert prop.study.trials[0].state == optuna.trial.TrialState.FAIL


def test_never_the_same_overrides_twice_and_exhaustion_concludes(tmp_path):
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text("name: tiny\nobjective: elo\nparams:\n  model.blocks: {type: categorical, "
                     "choices: [2, 4]}\nsampler: {type: random, seed: 0}\npruner: none\n")
    store, qid, _ = tree(tmp_path)
    prop = OfflineProposer(tmp_path, qid, str(sweep))
    seen = []
    for _ in range(2):
        (p,) = prop.propose(make_digest(store, qid), 1)
        run_node(store, qid, prop, p, 100.0)
        seen.append(proposal_key(p.overrides, None))
    assert len(set(seen)) == 2
    result = prop.propose(make_digest(store, qid), 1)
    assert isinstance(result, Conclusion) and "exhausted" in result.answer


def test_study_persists_in_the_workspace_for_resume(tmp_path):
    store, qid, _ = tree(tmp_path)
    prop = OfflineProposer(tmp_path, qid, SWEEP, seed=0)
    (p1,) = prop.propose(make_digest(store, qid), 1)
    n1 = run_node(store, qid, prop, p1, 140.0)
    (p2,) = prop.propose(make_digest(store, qid), 1)
    n2 = store.add_node(qid, p2.parent_id, p2.kind, p2.hypothesis, overrides=p2.overrides)
    prop.accepted(p2, n2)
    del prop   # the loop dies with trial 1 running
    again = OfflineProposer(tmp_path, qid, SWEEP, seed=0)
    assert len(again.study.trials) == 2 and again.node_trial == {n1: 0, n2: 1}
    # node n2 was interrupted and re-queued as n3: the same trial is told n3's result
    n3 = store.add_node(qid, p2.parent_id, p2.kind, p2.hypothesis, overrides=p2.overrides)
    again.rerun(n2, n3)
    again.observe(store.update_node(n3, status="ok", metrics={"elo": 90.0, "elo_ci95": [70, 110]}))
    assert [t.value for t in again.study.trials] == [140.0, 90.0]
