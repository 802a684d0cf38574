"""x/y experiments answer with a figure: y against x with 95% intervals pooled over each arm's seeds,
and the trend in words (issue 13, items 2 and 3), from fabricated trees (real run directories, real
tree.db rows; no job runs)."""
import struct

import numpy as np
import pytest
from matplotlib.image import imread

from autoresearch import run_cli
from autoresearch.planner.design import make_plan, parse_x_flag
from experiment_tree.store import TreeStore
from experiment_tree.workspace import Workspace
from fabricate import LADDER, write_run
from tests.fakerepo import JOB_MODULE, make_fake_repo
from reports import figures
from reports.report import write_report
from reports.xy import XYPoint, XYResult, fit_trend, pool, statement, t95, xy_result

QUESTION = "how does c_puct change the strength of a tiny 9x9 run?"
# c_puct -> (head-to-head difference from the baseline, its 95% interval, seed pairs)
DIFFS = {1.0: (-150.0, (-230.0, -70.0), 1), 2.0: (10.0, (-50.0, 70.0), 2), 3.0: (160.0, (80.0, 240.0), 1)}
BASE_ELO = (300.0, 320.0)            # the baseline's two seeds' ladder Elo: pooled 310


def verdict_detail(diff, ci, pairs):
    """The VerdictRecord JSON the loop stores (autoresearch/verdict.py), the fields the report reads."""
    return {"verdict": "better" if ci[0] > 0 else "worse" if ci[1] < 0 else "inconclusive",
            "next": None, "diff_elo": diff, "ci95": list(ci), "se_elo": (ci[1] - ci[0]) / 3.92,
            "games_per_side": 200 * pairs, "seed_pairs": pairs, "mde_elo": 110.0}


def fabricate_xy_tree(root, *, x="mcts.c_puct=1.0,2.0,3.0", x2=None, verdicts=True, answer=True):
    """A 3-value sweep of c_puct as the planner stores it: the baseline (c_puct 1.25, 2 seeds: the
    2-seed arm's seed pair trained both) and one node per arm, the c_puct=2 arm with a seed re-run."""
    ws = Workspace(root)
    store = ws.store()
    plan = make_plan(QUESTION, x=parse_x_flag(x), x2=parse_x_flag(x2) if x2 else None, seeds=1,
                     max_nodes=20, workers=1, minutes_per_node=5.0)
    q = store.add_question(QUESTION, {"runs": 20, "hours": None, "spent_s": 1234.5678,
                                      "board": "9x9", "budget": "tiny", "plan": plan.to_dict()})
    ids = {"question": q, "workspace": ws, "plan": plan, "arms": {}}

    def node(parent, kind, overrides, seed, elo, policy_loss, metrics=None):
        nid = store.add_node(q, parent, kind, f"{kind} {overrides}", overrides=overrides, seed=seed)
        rd = ws.run_dir(nid)
        write_run(rd, overrides=overrides, seed=seed, iterations=4, final_elo=elo, status="ok")
        with open(rd / "metrics.jsonl", "a") as f:     # the last line holds this seed's policy loss
            f.write(f'{{"iteration": 5, "policy_loss": {policy_loss}, "wall_s": 150.0}}\n')
        m = {"elo": elo, "elo_ci95": [elo - 60, elo + 60], "winrate_vs_ref": 0.4, "games_vs_ref": 40}
        store.update_node(nid, run_dir=rd, status="ok", metrics={**m, **(metrics or {})})
        return nid

    base = node(None, "baseline", [], 1, BASE_ELO[0], 2.0)
    ids["baseline"] = base
    ids["baseline_rerun"] = node(base, "rerun", [], 2, BASE_ELO[1], 2.2)
    for i, arm in enumerate(plan.new_arms):
        diff, ci, pairs = DIFFS.get(arm.x[plan.x_key], (0.0, (-80.0, 80.0), 1))
        detail = {"verdict_detail": verdict_detail(diff, ci, pairs)} if verdicts else {}
        nid = node(base, "config", list(arm.overrides), 1, 310.0 + diff + 25, 1.8 - 0.15 * i, detail)
        ids["arms"][arm.label] = nid
        if verdicts:
            store.update_node(nid, verdict=detail["verdict_detail"]["verdict"], verdict_test="head-to-head")
        if pairs == 2:
            ids["rerun"] = node(nid, "rerun", list(arm.overrides), 2, 310.0 + diff - 25, 1.45)
    if answer:
        store.set_answer(q, "c_puct 3 is strongest: +160 Elo [+80, +240] over the baseline",
                         [ids["arms"][a.label] for a in plan.new_arms][-1:])
    store.close()
    return ids


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    ids = fabricate_xy_tree(tmp_path_factory.mktemp("xy") / "ws")
    index = write_report(ids["workspace"], ladder=LADDER)
    return ids, index


def _result(ids, y=None):
    store = TreeStore(ids["workspace"].tree_db)
    q = store.get_question(ids["question"])
    if y:
        q.settings["plan"]["y"] = y
        q.settings["plan"]["y_direction"] = "minimize"
    return xy_result(q, store.nodes(q.id), ids["workspace"].root)


def test_sweep_report_opens_with_the_xy_figure_and_the_trend(sweep):
    ids, index = sweep
    figs = ids["workspace"].report_dir / "figures"
    png = (figs / "xy.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24])[0] > 500
    md = (ids["workspace"].report_dir / "report.md").read_text()
    page = index.read_text()
    alt = "x/y figure: elo against mcts.c_puct with 95% intervals"
    assert f"![{alt}](figures/xy.png)" in md and f'alt="{alt}"' in page
    # answer first: the question, the answer, the figure and its trend; the tree after
    assert md.index("# Question") < md.index("c_puct 3 is strongest") < md.index("figures/xy.png") \
        < md.index("## Experiment tree")
    assert "Best mcts.c_puct: mcts.c_puct=3, elo 470 [390, 550] (1 seed(s)). Its interval is clear " \
           "of every other arm's." in md      # the baseline too: +160 [+80, +240] head-to-head
    assert "Trend: elo rises with mcts.c_puct: slope +" in md and "per unit of mcts.c_puct" in md
    # each arm's point: the baseline's pooled ladder Elo plus its head-to-head difference
    assert "- mcts.c_puct=2: elo 320 [260, 380], head-to-head +10 Elo [-50, +70]" in md
    assert "on top of its ladder Elo 310" in md        # the point is the anchor plus the difference
    assert "2 seed pair(s)" in md
    assert "- baseline (default): elo 310" in md
    assert page.index('id="xy"') < page.index('id="tree-section"')
    assert "1235" not in md and "1234.5" not in md and "20.6 min spent" in md


def test_points_pool_seeds_and_place_head_to_head_on_the_ladder(sweep):
    ids, _ = sweep
    r = _result(ids)
    pts = {p.label: p for p in r.points}
    assert set(pts) == {"mcts.c_puct=1", "mcts.c_puct=2", "mcts.c_puct=3", "baseline (default)"}
    c2 = pts["mcts.c_puct=2"]
    assert (c2.y, c2.lo, c2.hi, c2.seeds) == (320.0, 260.0, 380.0, 2)
    assert sorted(c2.nodes) == sorted([ids["arms"]["mcts.c_puct=2"], ids["rerun"]])
    base = pts["baseline (default)"]
    assert base.baseline and base.x == 1.25 and base.y == pytest.approx(310.0) and base.seeds == 2
    # two seeds 300 and 320 (game intervals +-60): t(1) x sd/sqrt(2) = 12.706 x 10 = 127
    assert base.hi - base.y == pytest.approx(127.06, abs=0.1)
    t = r.trends[None]
    assert t.word == "rises" and t.lo > 0 and not t.log_x
    used = [p for p in r.points if p.y is not None]        # numpy's weighted fit agrees
    want = np.polyfit([p.x for p in used], [p.y for p in used], 1, w=[1 / p.se for p in used])[0]
    assert t.slope == pytest.approx(want) and 100 < t.slope < 200


def test_a_metric_from_the_runs_is_pooled_with_a_t_interval_and_one_seed_is_marked(sweep):
    ids, _ = sweep
    r = _result(ids, y="policy_loss")
    pts = {p.label: p for p in r.points}
    c2 = pts["mcts.c_puct=2"]        # last metrics.jsonl lines 1.65 and 1.45
    assert c2.y == pytest.approx(1.55) and c2.seeds == 2 and "t-interval" in c2.how
    assert c2.hi - c2.y == pytest.approx(t95(1) * np.std([1.65, 1.45], ddof=1) / np.sqrt(2))
    c1 = pts["mcts.c_puct=1"]
    assert c1.y == pytest.approx(1.8) and c1.lo is None and c1.how == "one seed"
    assert "one seed, no interval" in r.statement and "Best mcts.c_puct: mcts.c_puct=3" in r.statement


def test_the_figure_draws_the_intervals(tmp_path, sweep):
    """The error bars are really drawn: the same points without their intervals give a different,
    emptier picture (coloured pixels counted)."""
    ids, _ = sweep
    r = _result(ids)
    bare = XYResult(r.x_key, r.x2_key, r.y, r.y_direction,
                    [XYPoint(p.label, p.x, p.x2, p.y, seeds=p.seeds, baseline=p.baseline) for p in r.points],
                    {None: None}, r.log_x, r.statement)

    def ink(path):
        img = imread(path)[..., :3]
        return int((img.std(axis=2) > 0.15).sum())     # coloured (not grey or white) pixels
    with_bars = ink(figures.xy_figure(r, tmp_path / "with.png"))
    without = ink(figures.xy_figure(bare, tmp_path / "without.png"))
    assert with_bars > without * 1.3, (with_bars, without)


def test_trend_words_and_log_x():
    flat = [XYPoint(str(x), x, None, 100.0 + d, 50.0 + d, 150.0 + d) for x, d in ((1, 0), (2, 20), (3, -10))]
    t = fit_trend(flat, log_x=False)
    assert t.word == "no trend detected" and t.lo < 0 < t.hi
    falls = [XYPoint(str(x), x, None, 10.0 - x, 9.8 - x, 10.2 - x) for x in (8, 16, 32, 64)]
    t = fit_trend(falls, log_x=True)
    assert t.word == "falls" and t.log_x
    text = statement("selfplay.visits", "value_loss", "minimize", falls, {None: t})
    assert "Best selfplay.visits: 64" in text and "per doubling of selfplay.visits" in text
    assert "value_loss falls as selfplay.visits grows" in text
    # points that scatter far more than their intervals say: the slope's interval widens
    noisy = [XYPoint(str(x), x, None, y, y - 1, y + 1) for x, y in ((1, 0), (2, 40), (3, 5), (4, 45))]
    assert fit_trend(noisy, log_x=False).word == "no trend detected"
    assert fit_trend(noisy[:1], log_x=False) is None
    assert pool([(1.0, None)]) == (1.0, None, None, "one seed")


def test_grid_draws_one_line_per_second_factor(tmp_path):
    ids = fabricate_xy_tree(tmp_path / "ws", x="mcts.c_puct=1.0,2.0,3.0",
                            x2="selfplay.visits=8,16")
    r = _result(ids)
    assert r.x2_key == "selfplay.visits" and set(r.trends) == {8, 16}
    assert "(at selfplay.visits=8)" in r.statement and "(at selfplay.visits=16)" in r.statement
    write_report(ids["workspace"], ladder=LADDER)
    md = (ids["workspace"].report_dir / "report.md").read_text()
    assert "figures/xy.png" in md and "mcts.c_puct=2, selfplay.visits=8: elo" in md


def test_ab_opens_with_the_verdict_instead(tmp_path):
    ids = fabricate_xy_tree(tmp_path / "ws", x="mcts.c_puct=2.0")
    assert ids["plan"].design == "ab"
    write_report(ids["workspace"], ladder=LADDER)
    md = (ids["workspace"].report_dir / "report.md").read_text()
    assert "figures/xy.png" not in md and not (ids["workspace"].report_dir / "figures" / "xy.png").exists()
    arm = ids["arms"]["mcts.c_puct=2"]
    assert (f"- #{arm} (mcts.c_puct=2.0) vs #{ids['baseline']} (baseline): inconclusive, +10 Elo [-50, +70] "
            f"vs parent over 400 games, 2 seed pair(s)") in md
    assert md.index("Head-to-head verdict") < md.index("## Experiment tree")


def test_research_run_x_flag_then_report_draws_every_arm(tmp_path, monkeypatch):
    """End to end over the fake training job (tests/fakerepo.py): `research run --x` runs the sweep
    through the real loop, and the report maps the loop's own nodes onto the arms."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    repo = make_fake_repo(tmp_path / "repo")
    agent = tmp_path / "agent.yaml"
    agent.write_text("verdict:\n  max_reruns: 0\n")
    ws = tmp_path / "ws"
    assert run_cli.main(["How does c_puct change strength?", "--x", "mcts.c_puct=1.0,2.0,3.0",
                         "--seeds", "1", "--workspace", str(ws), "--repo", str(repo),
                         "--job-module", JOB_MODULE, "--mem-limit-mb", "0", "--no-report",
                         "--max-nodes", "4", "--set", "fake.ci=5",
                         "--agent-config", str(agent)]) == 0
    write_report(ws, ladder=LADDER)
    md = (ws / "report" / "report.md").read_text()
    after_figure = md.split("](figures/xy.png)")[1]      # the figure's own list of points
    for label in ("mcts.c_puct=1", "mcts.c_puct=2", "mcts.c_puct=3", "baseline (default)"):
        line = next(ln for ln in after_figure.splitlines() if ln.startswith(f"- {label}: elo "))
        assert "[" in line and "one seed" in line, line
    assert "Trend:" in after_figure and after_figure.index("Trend:") < after_figure.index("## Experiment tree")


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_a_real_xy_experiment_over_three_c_puct_values_answers_with_its_figure(tmp_path, repo_root):
    """Issue 13's acceptance, for real: `research run --x mcts.c_puct=0.75,1.25,3.0` on the tiny
    budget (real self-play and training, the referee's real rating and head-to-head games), then the
    report's figure with intervals. 1.25 is the default, so the baseline is one of the three points:
    3 nodes x (2.5 min training + 1.5 min rating) on 2 idle cores, plus the head-to-head games;
    the time taken is printed."""
    import os
    import subprocess
    import sys
    import time

    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    ws = tmp_path / "ws"
    t = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "autoresearch.cli", "run",
                          "How does c_puct change the strength of a tiny 9x9 run?",
                          "--x", "mcts.c_puct=0.75,1.25,3.0", "--seeds", "1", "--budget", "tiny",
                          "--max-nodes", "3", "--workspace", str(ws)],
                         cwd=repo_root, env=env, capture_output=True, text=True, timeout=3300)
    print(f"real x/y experiment (3 nodes, tiny): {time.monotonic() - t:.0f} s")
    print(run.stdout[-4000:])
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    store = TreeStore(ws / "tree.db")
    q = store.questions()[-1]
    r = xy_result(q, store.nodes(q.id), ws)
    measured = [p for p in r.points if p.y is not None]
    assert len(measured) >= 3, [p.text(r.y) for p in r.points]
    assert all(p.lo is not None and p.lo <= p.y <= p.hi for p in measured), \
        [p.text(r.y) for p in measured]
    md = (ws / "report" / "report.md").read_text()
    assert "figures/xy.png" in md and "Trend:" in md
    assert (ws / "report" / "figures" / "xy.png").stat().st_size > 10_000
