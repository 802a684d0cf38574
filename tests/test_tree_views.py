"""Browsing the tree: `research tree` (terminal, --html) and `research show` on a fabricated tree."""
import html as htmllib
import re

import pytest

from autoresearch.cli import main as research
from experiment_tree.format import headline
from go_core.arena.stats import wilson_interval
from experiment_tree.layout import layout
from experiment_tree.show import overrides_diff
from experiment_tree.store import TreeStore
from fabricate import fabricate_tree

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def tree(tmp_path):
    return fabricate_tree(tmp_path / "ws")


def _node_lines(text):
    """{node id: (line, depth)} from the terminal tree (depth = tree-drawing prefix width / 3)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([│├└─ ]*)#(\d+) ", line)
        if m:
            out[int(m.group(2))] = (line, len(m.group(1)) // 3)
    return out


def test_terminal_tree_shows_every_node_with_status_parent_and_metric(tree, capsys):
    ws = tree["workspace"]
    assert research(["tree", "--workspace", str(ws.root), "--no-color"]) == 0
    out = capsys.readouterr().out
    assert not ANSI.search(out), "--no-color (and a non-tty) must print no escape codes"
    lines = _node_lines(out)
    store = TreeStore(ws.tree_db)
    nodes = store.nodes(tree["question"])
    assert set(lines) == {n.id for n in nodes}
    depth = {n.id: len(store.ancestors(n.id)) for n in nodes}
    order = [int(re.search(r"#(\d+)", ln).group(1)) for ln in out.splitlines() if _node_lines(ln)]
    for n in nodes:
        line, d = lines[n.id]
        assert f" {n.status} " in line + " ", (n.id, n.status, line)
        assert d == depth[n.id], f"node {n.id} drawn at depth {d}, its depth is {depth[n.id]}"
        if n.parent_id is not None:   # drawn below its parent, before the next shallower node
            i, j = order.index(n.parent_id), order.index(n.id)
            assert i < j and all(depth[k] > depth[n.parent_id] for k in order[i + 1:j])
    assert "Elo 420 [385, 455]" in lines[tree["better"]][0] and "better" in lines[tree["better"]][0]
    assert "win 25% [14%, 40%] of 40" in lines[tree["worse"]][0]
    assert "worse" in lines[tree["worse"]][0]
    assert "inconclusive" in lines[tree["rerun"]][0]
    assert "RuntimeError: CUDA out of memory" in lines[tree["crash"]][0]
    assert "wall-clock limit" in lines[tree["timeout"]][0]
    assert "a higher learning rate learns faster" in lines[tree["better"]][0]
    assert "answer: yes: lr 0.02" in out and "#2, #5" in out


def test_terminal_tree_is_coloured_on_a_tty(tree):
    from experiment_tree.terminal import render_tree
    store = TreeStore(tree["workspace"].tree_db)
    coloured = render_tree(store, color=True)
    assert "\x1b[1;32m" in coloured       # better in green
    assert "\x1b[1;31m" in coloured       # crash in red
    assert ANSI.sub("", coloured) == render_tree(store, color=False)


def test_show_prints_everything_about_a_crashed_node(tree, capsys):
    ws = tree["workspace"]
    assert research(["show", str(tree["crash"]), "--workspace", str(ws.root)]) == 0
    out = capsys.readouterr().out
    assert "status:     crash" in out
    assert "error:      RuntimeError: CUDA out of memory" in out
    assert "+ model.blocks=40" in out                     # overrides diff against the parent
    assert "+    blocks: int = 40" in out                 # the patch
    assert "Log tail:" in out and "loss.backward()" in out.split("Log tail:")[1]
    assert "iter 2 loss=" in out                          # from log.txt on disk


def test_show_diffs_config_against_parent(tree, capsys):
    ws = tree["workspace"]
    assert research(["show", str(tree["worse"]), "-w", str(ws.root)]) == 0
    out = capsys.readouterr().out
    assert "~ train.lr: 0.02 -> 0.1" in out
    assert "-  lr: 0.02" in out and "+  lr: 0.1" in out    # .hydra/config.yaml diff
    assert "verdict:    worse  (test: Wilson CI below parent's)" in out
    assert '"winrate_vs_ref"' in out


def test_show_a_pending_node_with_no_run_yet(tree, capsys):
    assert research(["show", str(tree["pending"]), "-w", str(tree["workspace"].root)]) == 0
    out = capsys.readouterr().out
    assert "status:     pending" in out and "run dir:    -" in out and "(no log)" in out
    assert "+ train.warmup=100" in out                   # `+key=value` adds a key


def test_missing_workspace_and_node_say_what_to_do(tmp_path, tree, capsys):
    assert research(["tree", "--workspace", str(tmp_path / "nowhere")]) == 1
    assert "research run" in capsys.readouterr().err
    assert research(["show", "999", "-w", str(tree["workspace"].root)]) == 1
    assert "no node 999" in capsys.readouterr().err


def test_html_tree_has_every_node_with_status_parent_and_colour(tree, capsys):
    ws = tree["workspace"]
    assert research(["tree", "--html", "--workspace", str(ws.root)]) == 0
    page_path = ws.report_dir / "tree.html"
    assert str(page_path) in capsys.readouterr().out
    page = page_path.read_text()
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page, "the page must be self-contained (no CDN)"
    store = TreeStore(ws.tree_db)
    groups = {int(m.group(1)): m.group(0) for m in
              re.finditer(r'<g class="node [^"]*" id="node-(\d+)"[^>]*>', page)}
    nodes = store.nodes(tree["question"])
    assert set(groups) == {n.id for n in nodes}
    for n in nodes:
        g = groups[n.id]
        assert f'data-status="{n.status}"' in g
        assert f'data-parent="{n.parent_id if n.parent_id is not None else ""}"' in g
        if n.parent_id is not None:
            assert f'data-from="{n.parent_id}" data-to="{n.id}"' in page
    assert "v-better" in groups[tree["better"]] and "v-worse" in groups[tree["worse"]]
    assert "v-inconclusive" in groups[tree["rerun"]] and "v-crashed" in groups[tree["crash"]]
    assert "v-crashed" in groups[tree["timeout"]] and "v-running" in groups[tree["running"]]
    assert "v-pending" in groups[tree["pending"]]
    text = htmllib.unescape(page)
    assert "error: RuntimeError: CUDA" in text      # crashed node's box shows its error
    assert "CUDA out of memory. Tried to allocate 2.00 GiB" in text   # and its details do


def test_html_page_survives_hostile_text(tmp_path):
    store = TreeStore(tmp_path / "tree.db")
    q = store.add_question("</script><script>alert(1)</script>", {})
    n = store.add_node(q, None, "baseline", "<b>bold</b> & </script>")
    store.update_node(n, status="crash", error="</script><img src=x onerror=alert(1)>")
    from experiment_tree.html import render_tree_html
    page = render_tree_html(store)
    assert page.count("</script>") == page.count("<script")  # no early end of a script
    assert "<img src=x" not in page and "<b>bold</b>" not in page


def test_layout_places_parents_over_children_without_overlap(tree):
    store = TreeStore(tree["workspace"].tree_db)
    placed = {p.node.id: p for p in layout(store.nodes())}
    spots = {(p.x, p.depth) for p in placed.values()}
    assert len(spots) == len(placed)
    for p in placed.values():
        if p.node.parent_id is not None:
            assert placed[p.node.parent_id].depth == p.depth - 1


def test_headline_and_wilson_interval():
    assert headline({"elo": 312.4, "elo_ci95": [280, 344.6]}) == "Elo 312 [280, 345]"
    assert headline({"winrate_vs_ref": 0.5, "games_vs_ref": 100}) == "win 50% [40%, 60%] of 100"
    assert headline({"winrate_vs_ref": 1.0, "winrate_ci95": [0.72, 1.0]}) == "win 100% [72%, 100%]"
    assert headline({}) == "" and headline({"elo": None}) == ""
    lo, hi = wilson_interval(10, 10)
    assert 0.70 < lo < 0.73 and hi == pytest.approx(1.0)


def test_overrides_diff():
    assert overrides_diff(["a=1", "b=2"], ["a=1", "b=3", "+c=4", "~d"]) == [
        "~ b: 2 -> 3", "+ c=4", "+ d=<deleted>"]
    assert overrides_diff(["a=1"], []) == ["- a=1"]
