"""What a person sees of issue 16 in the views: a suspect node marked in `research tree`/`show`,
the HTML page and the report, kept out of the answer's claims until `research explain`; nodes
grouped by track with aims and step-back notes; the report's calibration figure and table per
proposer; the step-back every K nodes."""
from __future__ import annotations


from autoresearch.cli import main as research
from autoresearch.proposers.stepback import due_reviews, review_prompt
from autoresearch.tracks import due_for_review, due_periodic
from experiment_tree.store import TreeStore
from experiment_tree.suspect import is_suspect

FAILED = {"suspect": True, "flags": [
    {"check": "losses_finite", "ok": True, "detail": "every logged number is finite"},
    {"check": "symmetry", "ok": False, "detail": "trained with augmentation but not symmetric"}]}


def h2h(diff, lo, hi):
    return {"verdict_detail": {"diff_elo": diff, "ci95": [lo, hi], "games_per_side": 100,
                               "seed_pairs": 1, "verdict": "x"}}


def make_tree(ws):
    store = TreeStore(ws / "tree.db")
    q = store.add_question("does lr matter?", {"runs": 5})
    base = store.add_node(q, None, "baseline", "defaults")
    store.update_node(base, status="ok", metrics={"elo": 100.0, "elo_ci95": [80, 120]})
    t = store.add_track(q, "learning rate", "is the step size too small?")
    ids = []
    for i, (verdict, diff, fc, by) in enumerate([
            ("better", 60, (40, (0, 80), 0.7), "agent"),
            ("worse", -90, (20, (-20, 60), 0.5), "agent"),
            ("inconclusive", 10, (0, (-50, 50), 0.5), "planner-prior")]):
        n = store.add_node(q, base, "config", f"h{i}", overrides=[f"train.lr=0.0{i + 2}"])
        metrics = {"elo": 100.0 + diff, "elo_ci95": [80 + diff, 120 + diff], **h2h(diff, diff - 30, diff + 30)}
        if i == 0:
            metrics["health"] = FAILED
        store.update_node(n, status="ok", verdict=verdict, metrics=metrics, track_id=t,
                          forecast={"diff_elo": fc[0], "lo80": fc[1][0], "hi80": fc[1][1],
                                    "p_better": fc[2], "by": by})
        ids.append(n)
    store.update_track(t, note={"node_id": ids[-1], "decision": "continue",
                                "reason": "one clear gain, worth a finer look"},
                       reviewed_through=ids[1])
    store.set_answer(q, "lr 0.02 is better", [ids[0]])
    return store, q, base, ids


def test_a_suspect_node_is_marked_everywhere_and_counts_again_once_explained(tmp_path, capsys):
    ws = tmp_path / "ws"
    store, q, base, ids = make_tree(ws)
    bad = ids[0]
    assert is_suspect(store.get_node(bad)) and not is_suspect(store.get_node(ids[1]))
    assert research(["tree", "-w", str(ws), "--no-color"]) == 0
    tree = capsys.readouterr().out
    line = next(x for x in tree.splitlines() if f"#{bad} " in x and "ok" in x)
    assert "SUSPECT (symmetry)" in line
    # nodes grouped by track with the aim and the step-back note
    assert "Tracks:" in tree and "learning rate [open] -- aim: is the step size too small?" in tree
    assert f"#{bad} better [SUSPECT (symmetry)]" in tree
    assert "step-back after" in tree and "one clear gain" in tree
    assert research(["show", str(bad), "-w", str(ws)]) == 0
    shown = capsys.readouterr().out
    assert "health:     SUSPECT (symmetry)" in shown and "FAIL symmetry: trained with augmentation" in shown
    # the HTML page marks it and lists the tracks
    assert research(["tree", "-w", str(ws), "--html"]) == 0
    page = (ws / "report" / "tree.html").read_text()
    assert f'data-id="{bad}" data-parent' in page and 'data-suspect="yes"' in page
    assert 'class="track" data-track="learning rate"' in page
    # the report: a health section, and the verdict of the suspect node is not counted
    from reports.report import write_report
    write_report(ws, q)
    md = (ws / "report" / "report.md").read_text()
    assert f"#{bad}: SUSPECT (symmetry) -- left out of the answer until explained" in md
    assert "## Tracks" in md and "is the step size too small?" in md
    # explaining: by the user, through the CLI; a node with nothing to explain is refused
    assert research(["explain", str(ids[1]), "why", "-w", str(ws)]) == 1
    assert "nothing to explain" in capsys.readouterr().err
    assert research(["explain", str(bad), "augmentation is off on purpose in this arm",
                     "-w", str(ws)]) == 0
    assert "explained: augmentation is off on purpose in this arm (by user)" in capsys.readouterr().out
    assert not is_suspect(store.get_node(bad))
    assert research(["show", str(bad), "-w", str(ws)]) == 0
    assert "failed symmetry, explained: augmentation is off on purpose" in capsys.readouterr().out


def test_the_report_has_a_calibration_figure_and_table_per_proposer(tmp_path):
    ws = tmp_path / "ws"
    store, q, _, ids = make_tree(ws)
    from reports.report import write_report
    index = write_report(ws, q)
    fig = ws / "report" / "figures" / "calibration.png"
    assert fig.is_file() and fig.read_bytes()[:4] == b"\x89PNG"
    md = (ws / "report" / "report.md").read_text()
    assert "## Forecast calibration" in md and "figures/calibration.png" in md
    # agent: +60 inside [0, 80], -90 outside [-20, 60]; the planner's prior: +10 inside [-50, 50]
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "1/2 = 50% [" in rows["agent"] and "| 2 |" in rows["agent"]
    assert "1/1 = 100% [" in rows["planner-prior"]
    assert 'id="calibration"' in index.read_text()


def test_a_step_back_is_due_every_k_settled_nodes_of_a_track(tmp_path):
    store = TreeStore(tmp_path / "tree.db")
    q = store.add_question("q", {"runs": 9})
    base = store.add_node(q, None, "baseline", "b")
    t = store.add_track(q, "lr", "aim")
    ids = [store.add_node(q, base, "config", f"h{i}", overrides=[f"train.lr=0.{i + 1}"]) for i in range(3)]
    for i, v in zip(ids, ["better", "better"]):
        store.update_node(i, status="ok", verdict=v, track_id=t)
    store.update_node(ids[2], status="running", track_id=t)
    track = store.get_track(t)
    nodes = store.nodes(q)
    assert due_for_review(track, nodes, 3) == []                # no run of non-better nodes
    assert due_periodic(track, nodes, 3) == []                  # 2 settled, the third still runs
    assert [n.id for n in due_periodic(track, nodes, 2)] == ids[:2]
    assert due_periodic(track, nodes, 0) == []                  # 0: never
    [(tr, run)] = due_reviews(store, q, after=3, every=2)
    assert "periodic review is due after 2 nodes" in review_prompt(tr, run, "ctx")
    store.update_track(t, reviewed_through=ids[1], note={"decision": "continue", "reason": "r"})
    assert due_reviews(store, q, after=3, every=2) == []

