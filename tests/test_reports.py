"""Reports from a fabricated tree: report.md, index.html and non-empty PNG figures, also when
data is missing or partial."""
import json
import re
import struct

import pytest

from autoresearch.cli import main as research
from experiment_tree.store import TreeStore
from fabricate import LADDER, fabricate_tree
from experiments.rundir import append_metrics
from reports.calibration import NOTHING as NO_CALIBRATION
from reports.data import curves_frame, nodes_frame
from reports.ladder_elos import load_ladder, normalise_ladder
from reports.page import settings_text
from reports.report import NO_CURVES, NO_LADDER, NO_STRENGTH, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_side=100):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= min_side and height >= min_side, (path, width, height)
    assert len(data) > 5000, f"{path} is suspiciously small ({len(data)} bytes)"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    ids = fabricate_tree(tmp_path_factory.mktemp("reports") / "ws")
    index = write_report(ids["workspace"], ladder=LADDER)
    return ids, index


def test_report_writes_markdown_html_and_nonempty_figures(report):
    ids, index = report
    ws = ids["workspace"]
    assert index == ws.report_dir / "index.html"
    figs = ws.report_dir / "figures"
    for name in ("learning_curves", "node_strength", "tree", "ladder"):
        assert_png(figs / f"{name}.png")
    # per-run curves for every node that has metrics (all but the pending one)
    runs = sorted(int(p.stem.split("_")[1]) for p in figs.glob("run_*.png"))
    assert runs == sorted(v for k, v in ids.items()
                          if k not in ("question", "workspace", "pending"))
    for p in figs.glob("run_*.png"):
        assert_png(p)
    md = (ws.report_dir / "report.md").read_text()
    for link in re.findall(r"\]\((figures/[^)]+)\)", md):    # every figure linked exists
        assert (ws.report_dir / link).exists(), link
    assert (ws.report_dir / "tree.html").exists()


def test_report_states_question_answer_evidence_and_every_node(report):
    ids, index = report
    md = (ids["workspace"].report_dir / "report.md").read_text()
    page = index.read_text()
    assert "does a higher learning rate make a stronger 9x9 net?" in md
    assert "yes: lr 0.02 gains about 100 Elo" in md and "yes: lr 0.02 gains about 100 Elo" in page
    assert f"*Evidence (nodes):* #{ids['better']}, #{ids['rerun']}" in md
    assert f'data-id="{ids["better"]}">#{ids["better"]}</a>' in page
    store = TreeStore(ids["workspace"].tree_db)
    table = md.split("## Nodes")[1]
    for n in store.nodes(ids["question"]):
        row = next(ln for ln in table.splitlines() if ln.startswith(f"| {n.id} |"))
        assert f"| {n.status} |" in row
        assert f'<tr id="row-{n.id}" data-status="{n.status}">' in page
    crash_row = next(ln for ln in table.splitlines() if ln.startswith(f"| {ids['crash']} |"))
    assert "RuntimeError: CUDA out of memory" in crash_row
    assert "Elo 420 [385, 455]" in table
    assert "| gnugo-1 | 650 | 600 – 700 |" in md          # the ladder table


def test_report_cli_finds_the_cached_ladder_and_redraws_only_what_changed(report, capsys):
    # runs after the tests above, which read the first report (pytest keeps file order)
    ids, index = report
    ws = ids["workspace"]
    (ws.root / "ladder.json").write_text(json.dumps({"rungs": [
        {"name": "random", "elo": 0, "ci95": [0, 0]},
        {"name": "gnugo-10", "elo": 900, "ci95": [850, 950]}]}))
    figs = ws.report_dir / "figures"
    before = {p.name: p.stat().st_mtime_ns for p in figs.glob("run_*.png")}
    append_metrics(ws.run_dir(ids["running"]), {"iteration": 4, "loss": 2.0, "wall_s": 120.0})
    assert research(["report", str(ids["question"]), "--workspace", str(ws.root)]) == 0
    assert "index.html" in capsys.readouterr().out
    md = (ws.report_dir / "report.md").read_text()
    assert "| gnugo-10 | 900 | 850 – 950 |" in md
    after = {p.name: p.stat().st_mtime_ns for p in figs.glob("run_*.png")}
    changed = {name for name in before if after[name] != before[name]}
    assert changed == {f"run_{ids['running']}.png"}
    assert research(["report", "77", "--workspace", str(ws.root)]) == 1
    assert "no question 77" in capsys.readouterr().err


def test_report_of_a_tree_with_no_data_yet(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))            # no ladder cache anywhere
    for var in ("XDG_CACHE_HOME", "TENGEN_CACHE", "TENGEN_LADDER_CACHE"):
        monkeypatch.delenv(var, raising=False)
    store = TreeStore(tmp_path / "ws" / "tree.db")
    q = store.add_question("an empty question", {"runs": 1})
    n = store.add_node(q, None, "baseline", "defaults")
    store.update_node(n, status="crash", error="ImportError: no module named foo")
    index = write_report(tmp_path / "ws")
    figs = tmp_path / "ws" / "report" / "figures"
    assert_png(figs / "tree.png")
    # figures with nothing to show are not drawn: one line says why instead of an empty panel
    for name in ("learning_curves", "node_strength", "ladder", "xy", "calibration"):
        assert not (figs / f"{name}.png").exists(), name
    assert not list(figs.glob("run_*.png"))
    md = (tmp_path / "ws" / "report" / "report.md").read_text()
    page = index.read_text()
    assert "No answer yet" in md and "ImportError: no module named foo" in md
    assert "No answer yet" in page
    for line in (NO_CURVES, NO_STRENGTH, NO_LADDER, NO_CALIBRATION):
        assert f"_{line}_" in md
    assert page.count('class="nofig"') == 4
    assert "figures/learning_curves.png" not in md + page and "figures/ladder.png" not in md + page


def test_status_line_is_for_people(tmp_path):
    """Issue 13 saw `spent_s=495.1624290943146`, `hours=None` and the raw plan in the status line."""
    store = TreeStore(tmp_path / "ws" / "tree.db")
    q = store.add_question("q", {"runs": 6, "hours": None, "spent_s": 495.1624290943146,
                                 "board": "9x9", "budget": "tiny", "workers": 2,
                                 "plan": {"design": "sweep", "arms": []},
                                 "referee_commit": "9cb79c6a" * 5,
                                 "start_checkpoint": "/tmp/x/start.pt",
                                 "job_module": "experiments.train"})
    store.add_node(q, None, "baseline", "defaults")
    write_report(tmp_path / "ws", ladder=LADDER)
    md = (tmp_path / "ws" / "report" / "report.md").read_text()
    status = next(ln for ln in md.splitlines() if ln.startswith("*Status:*"))
    assert "at most 6 nodes" in status and "8.3 min spent" in status and "2 worker(s)" in status
    assert "referee pinned at 9cb79c6a9c" in status
    for raw in ("495.16", "None", "hours", "plan", "start.pt", "design", "9cb79c6a9cb79c6a9cb",
                "job_module", "spent_s"):
        assert raw not in status, raw
    assert settings_text({"hours": 2.0, "cost_usd": 1.5, "spent_s": 7200}) == \
        "at most 2 h, at most $1.50 for the LLM, 2.0 h spent"


def test_report_is_answer_first_and_draws_the_tree_once(report):
    ids, index = report
    md = (ids["workspace"].report_dir / "report.md").read_text()
    page = index.read_text()
    assert md.index("## Answer") < md.index("## Experiment tree") < md.index("## Learning curves") \
        < md.index("## Reference ladder")
    assert md.count("](figures/tree.png)") == 1
    # the HTML draws the tree once, as the clickable SVG (the PNG copy was the second drawing)
    assert page.count('id="report-tree"') == 1 and "figures/tree.png" not in page
    assert page.index('id="answer"') < page.index('id="tree-section"') < page.index('id="curves"')


def test_report_without_questions_says_what_to_do(tmp_path):
    TreeStore(tmp_path / "tree.db")
    with pytest.raises(ValueError, match="research run"):
        write_report(tmp_path)


def test_frames_tolerate_partial_runs(tmp_path):
    ids = fabricate_tree(tmp_path / "ws")
    store = TreeStore(ids["workspace"].tree_db)
    nodes = store.nodes()
    # a run killed mid-line leaves half a JSON object: it is skipped, not fatal
    with open(ids["workspace"].run_dir(ids["running"]) / "metrics.jsonl", "a") as f:
        f.write('{"iteration": 4, "loss": 1.')
    frame = nodes_frame(nodes, ids["workspace"].root)
    curves = curves_frame(nodes, ids["workspace"].root)
    assert list(frame["node"]) == [n.id for n in nodes]
    row = frame.set_index("node").loc[ids["worse"]]
    assert row["winrate"] == pytest.approx(0.25) and 0.1 < row["winrate_lo"] < 0.25
    assert frame.set_index("node").loc[ids["pending"], "iterations"] == 0
    assert curves[curves["node"] == ids["running"]]["iteration"].max() == 3
    assert curves[curves["node"] == ids["crash"]]["elo"].isna().all()


def test_ladder_cache_of_this_machine_is_found(tmp_path, monkeypatch):
    import socket
    monkeypatch.setenv("TENGEN_CACHE", str(tmp_path))
    monkeypatch.delenv("TENGEN_LADDER_CACHE", raising=False)
    # the shape go_core.arena.calibration writes: rungs with elo, ci95, stderr, games, signature
    (tmp_path / f"ladder-{socket.gethostname()}.json").write_text(json.dumps(
        {"date": "2026-11-24", "rungs": {"random": {"elo": 0.0, "ci95": [0.0, 0.0], "games": 20},
                                         "gnugo-1": {"elo": 612.5, "ci95": [540.0, 690.1],
                                                     "stderr": 38.0, "games": 40}}}))
    assert load_ladder(workspace_root=tmp_path / "nowhere") == {
        "random": {"elo": 0.0, "ci95": [0.0, 0.0]}, "gnugo-1": {"elo": 612.5, "ci95": [540.0, 690.1]}}


def test_ladder_shapes():
    want = {"random": {"elo": 0.0, "ci95": None}, "gnugo-1": {"elo": 650.0, "ci95": [600.0, 700.0]}}
    assert normalise_ladder({"gnugo-1": [650, 600, 700], "random": 0}) == want
    assert normalise_ladder({"rungs": {"gnugo-1": {"elo": 650, "elo_ci95": [600, 700]},
                                       "random": {"elo": 0}}}) == want
    assert list(normalise_ladder(LADDER)) == list(LADDER)          # sorted by Elo
    assert load_ladder({"x": "junk"}) == {}
