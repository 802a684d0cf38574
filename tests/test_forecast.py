"""Forecast scoring (autoresearch/forecast.py) and track bookkeeping (autoresearch/tracks.py,
the tracks table of migration 5)."""
from __future__ import annotations

import math
from types import SimpleNamespace as NS

import pytest

from autoresearch.forecast import (Forecast, calibration, calibration_text, measured_diff,
                                   parse_forecast, prior_forecast, score, scored)
from autoresearch.tracks import due_for_review, open_or_continue, record_proposal
from autoresearch.proposers.base import Proposal
from experiment_tree.store import TreeStore
from go_core.arena.stats import wilson_interval


def test_an_interval_hit_and_the_log_score_follow_the_verdict():
    f = Forecast(30, -10, 70, 0.8)
    s = score(f, "better", 45.0)
    assert s.hit is True and s.log_score == pytest.approx(math.log(0.8))
    assert s.brier == pytest.approx(0.04)
    s = score(f, "worse", -120.0)
    assert s.hit is False and s.log_score == pytest.approx(math.log(0.2))
    assert s.brier == pytest.approx(0.64)
    # inconclusive is "not better" for P(better); no measured difference: no hit either way
    s = score(f, "inconclusive", None)
    assert s.hit is None and s.log_score == pytest.approx(math.log(0.2))
    # certainty that turns out wrong is punished hard but finitely
    assert score(Forecast(0, -1, 1, 1.0), "worse", 0).log_score == pytest.approx(math.log(0.01))
    with pytest.raises(ValueError, match="verdict"):
        score(f, "pending", None)


def test_a_forecast_the_model_gets_wrong_is_explained_back():
    assert parse_forecast({"diff_elo": "20", "interval_80": [0, 40], "p_better": 0.5}).diff_elo == 20
    for bad, why in [(None, "forecast is required"), ({"diff_elo": 1}, "needs diff_elo"),
                     ({"diff_elo": 80, "interval_80": [0, 40], "p_better": .5}, "must lie in"),
                     ({"diff_elo": 10, "interval_80": [0, 40], "p_better": 1.5}, "probability"),
                     ({"diff_elo": float("nan"), "interval_80": [0, 40], "p_better": .5}, "finite")]:
        with pytest.raises(ValueError, match=why):
            parse_forecast(bad)


def test_the_planner_prior_knows_nothing_on_the_same_scale():
    p = prior_forecast(140.0)
    assert (p.diff_elo, p.lo80, p.hi80, p.p_better, p.by) == (0.0, -140.0, 140.0, 0.5, "planner-prior")
    assert prior_forecast(None).hi80 == 100.0
    assert score(p, "better", 50).log_score == pytest.approx(math.log(0.5))


def test_measured_difference_prefers_the_head_to_head_record():
    parent = NS(id=1, metrics={"elo": 200.0})
    h2h = NS(id=2, parent_id=1, metrics={"elo": 260.0, "verdict_detail": {"diff_elo": 35.0}})
    ladder = NS(id=3, parent_id=1, metrics={"elo": 260.0})
    assert measured_diff(h2h, parent) == 35.0
    assert measured_diff(ladder, parent) == 60.0
    assert measured_diff(NS(id=4, parent_id=1, metrics={}), parent) is None


def test_calibration_counts_hits_and_averages_scores():
    base = NS(id=1, parent_id=None, forecast=None, verdict=None, metrics={"elo": 0.0})
    f = Forecast(20, -20, 60, 0.5).to_json()
    nodes = [base,
             NS(id=2, parent_id=1, forecast=f, verdict="better", metrics={"elo": 40.0}),   # hit
             NS(id=3, parent_id=1, forecast=f, verdict="worse", metrics={"elo": -90.0}),   # miss
             NS(id=4, parent_id=1, forecast=f, verdict=None, metrics={}),                  # open
             NS(id=5, parent_id=1, forecast=None, verdict="worse", metrics={"elo": -5.0})]  # no forecast
    rows = scored(nodes)
    assert [n.id for n, _, _ in rows] == [2, 3]
    c = calibration(rows)
    assert (c.scored, c.hits, c.with_diff) == (2, 1, 2)
    assert c.mean_log_score == pytest.approx(math.log(0.5))
    assert c.hit_ci95 == pytest.approx(wilson_interval(1, 2))
    assert c.log_score_se == pytest.approx(0.0)        # both log(0.5)
    text = calibration_text(nodes)
    assert "1/2 measured differences inside your 80% intervals" in text
    assert "#3: forecast +20 Elo" in text and "OUTSIDE" in text
    assert "none scored yet" in calibration_text([base])


def test_tracks_are_stored_and_a_step_back_is_due_after_three_not_better(tmp_path):
    store = TreeStore(tmp_path / "tree.db")
    assert store.schema_version() >= 5
    qid = store.add_question("q?")
    base = store.add_node(qid, None, "baseline", "b")
    ids = []
    for i in range(4):
        nid = store.add_node(qid, base, "config", f"h{i}", overrides=[f"mcts.c_puct={i + 2}"])
        record_proposal(store, qid, nid, Proposal(kind="config", hypothesis="h", parent_id=base,
                                                  forecast=Forecast(0, -50, 50, 0.4),
                                                  track="exploration", track_aim="is c_puct tuned?"))
        ids.append(nid)
    tracks = store.tracks(qid)
    assert [(t.name, t.aim, t.status) for t in tracks] == [("exploration", "is c_puct tuned?", "open")]
    t = tracks[0]
    n = store.get_node(ids[0])
    assert n.track_id == t.id and n.forecast["p_better"] == 0.4 and n.forecast["by"] == "agent"
    assert open_or_continue(store, qid, "exploration") == t.id, "continuing names the same track"
    # better, worse, crash, (running): the trailing run of settled not-better nodes is 2 long
    store.update_node(ids[0], status="ok", verdict="better")
    store.update_node(ids[1], status="ok", verdict="worse")
    store.update_node(ids[2], status="crash")
    store.update_node(ids[3], status="running")
    assert due_for_review(t, store.nodes(qid), 3) == []
    # ... inconclusive makes it 3: due, and the `better` before it is not part of the run
    store.update_node(ids[3], status="ok", verdict="inconclusive")
    assert [n.id for n in due_for_review(t, store.nodes(qid), 3)] == ids[1:]
    assert due_for_review(t, store.nodes(qid), 4) == []
    store.update_node(ids[0], verdict="worse")
    assert [n.id for n in due_for_review(t, store.nodes(qid), 3)] == ids
    # a node still running at the end does not hide the run before it
    more = store.add_node(qid, base, "config", "h5", overrides=["mcts.c_puct=9"])
    store.update_node(more, track_id=t.id, status="running")
    assert len(due_for_review(t, store.nodes(qid), 3)) == 4
    # once reviewed, the same nodes are not reviewed again; a closed track is never due
    t = store.update_track(t.id, note={"decision": "continue", "reason": "r"}, reviewed_through=ids[-1])
    assert due_for_review(t, store.nodes(qid), 3) == [] and t.notes[0]["reason"] == "r"
    t = store.update_track(t.id, status="closed")
    store.update_node(more, status="ok", verdict="worse")
    assert due_for_review(t, store.nodes(qid), 1) == []
    # proposing in a closed track reopens it, with a note saying so
    open_or_continue(store, qid, "exploration")
    t = store.get_track(t.id)
    assert t.status == "open" and t.notes[-1]["text"] == "reopened by a new proposal"
    with pytest.raises(ValueError, match="already has a track"):
        store.add_track(qid, "exploration")
    with pytest.raises(ValueError, match="track status"):
        store.update_track(t.id, status="paused")
