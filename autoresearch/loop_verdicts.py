"""The loop's verdicts: each finished node compared with its parent, and the seed re-runs a
comparison asks for.

Two tests, one per rating: with the referee on, child seed k plays parent seed k head to head
(autoresearch/judge.py, autoresearch/verdict.py) and an open verdict trains the next seed pair;
without it (the tests' fake job rates itself) the ladder Elo z-test of autoresearch/ladder_verdict.py,
with a seed re-run when the difference is within the noise. Plain functions over the tree: the loop
passes what they read (its budget as `runs_left`, whether the proposer `concluded`).
"""
from __future__ import annotations

from typing import Any, Callable

from autoresearch.agent_config import VerdictConfig
from autoresearch.ladder_verdict import compare
from experiment_tree.store import TreeStore

Say = Callable[[str], None]


def update_verdicts(store: TreeStore, qid: int, judge: Any, cfg: VerdictConfig,
                    runs_left: Callable[[], int], concluded: bool, say: Say) -> None:
    """Give every finished, uncompared node of question `qid` its verdict vs its parent, or queue
    the seed re-runs that verdict waits for. `judge` None: the ladder z-test (no referee)."""
    if judge is not None:
        update_h2h_verdicts(store, qid, judge, runs_left, concluded, say)
    else:
        update_ladder_verdicts(store, qid, cfg, runs_left, concluded, say)


def update_ladder_verdicts(store: TreeStore, qid: int, cfg: VerdictConfig,
                           runs_left: Callable[[], int], concluded: bool, say: Say) -> None:
    """The legacy test: pooled ladder Elo of the node's seeds vs its parent's (a z-test); a node
    within the noise is re-run with the next seed, up to `cfg.max_reruns`."""
    nodes = store.nodes(qid)
    by_id = {n.id: n for n in nodes}

    def runs_of(n: Any) -> list[Any]:
        return [n] + [c for c in nodes if c.parent_id == n.id and c.kind == "rerun"
                      and c.status == "ok"]

    for n in nodes:
        if n.kind in ("baseline", "rerun") or n.status != "ok" or n.verdict is not None:
            continue
        if (n.verdict_test or "").startswith("not compared"):
            continue
        parent = by_id.get(n.parent_id)
        if parent is None or not parent.finished:
            continue
        if parent.status != "ok":
            store.update_node(n.id, verdict_test=f"not compared: parent node "
                                                 f"{parent.id} is {parent.status}")
            continue
        reruns = [c for c in nodes if c.parent_id == n.id and c.kind == "rerun"
                  and c.status != "interrupted"]
        if any(not r.finished for r in reruns) or any(
                c.parent_id == parent.id and c.kind == "rerun" and not c.finished for c in nodes):
            continue        # pool every planned seed of both (--seeds N), not the first ones
        v = compare([r.metrics for r in runs_of(n)], [r.metrics for r in runs_of(parent)], cfg.z)
        if v.verdict is None:
            store.update_node(n.id, verdict_test=v.test)
        elif (v.within_noise and len(reruns) < cfg.max_reruns
              and runs_left() > 0 and not concluded):
            seed = n.seed + len(reruns) + 1
            rid = store.add_node(
                qid, n.id, "rerun",
                f"Re-run of node {n.id} with seed {seed}: its difference from node "
                f"{parent.id} is within the noise; pooled seeds will decide.",
                overrides=n.overrides, patch=n.patch, seed=seed)
            store.update_node(n.id, verdict_test=f"within the noise so far ({v.test}); "
                                                 f"re-running as node {rid}")
            say(f"node {n.id} is within the noise: re-run as node {rid} (seed {seed})")
        else:
            store.update_node(n.id, verdict=v.verdict, verdict_test=v.test)
            say(f"node {n.id} vs node {parent.id}: {v.verdict} ({v.test})")


def update_h2h_verdicts(store: TreeStore, qid: int, judge: Any, runs_left: Callable[[], int],
                        concluded: bool, say: Say) -> None:
    """Child seed k against parent seed k in head-to-head pairs (autoresearch/judge.py);
    another seed pair for both when the games settle but training noise leaves it open."""
    nodes = store.nodes(qid)
    by_id = {n.id: n for n in nodes}
    for n in nodes:
        if n.kind in ("baseline", "rerun") or n.status != "ok" or n.verdict is not None:
            continue
        parent = by_id.get(n.parent_id)
        if parent is None or not parent.finished:
            continue
        if parent.status != "ok":
            if not (n.verdict_test or "").startswith("not compared"):
                store.update_node(n.id, verdict_test=f"not compared: parent node "
                                                     f"{parent.id} is {parent.status}")
            continue
        busy = [c for c in nodes if c.kind == "rerun" and c.parent_id in (n.id, parent.id)
                and not c.finished]
        if busy:
            continue
        affordable = runs_left() >= 2 and not concluded
        if (n.verdict_test or "").startswith("not compared"):
            continue
        cmp = judge.compare(store, n, parent, nodes, affordable)
        if cmp.record is None:
            if cmp.why_stopped:
                store.update_node(n.id, verdict_test=f"not compared: {cmp.why_stopped}")
            continue
        if cmp.add_seed is not None:
            add_seed_pair(store, qid, n, parent, cmp.add_seed, cmp.record.test, say)
            continue
        rec = cmp.record
        metrics = dict(store.get_node(n.id).metrics or {})
        metrics["verdict_detail"] = rec.to_json()
        store.update_node(n.id, verdict=rec.verdict, verdict_test=rec.test, metrics=metrics)
        ci = rec.ci95
        say(f"node {n.id} vs node {parent.id}: {rec.verdict}, "
            f"{rec.diff_elo:+.0f} Elo [{ci[0]:+.0f}, {ci[1]:+.0f}] over {rec.games_per_side} "
            f"games and {rec.seed_pairs} seed pair(s); minimum detectable difference "
            f"{rec.mde_elo:.0f} Elo")


def add_seed_pair(store: TreeStore, qid: int, child: Any, parent: Any, seed: int, why: str,
                  say: Say) -> None:
    """Train child and parent with `seed` (whichever lacks it): the next seed pair."""
    nodes = store.nodes(qid)
    made = []
    for n in (parent, child):
        if not has_seed(n, seed, nodes):
            rid = store.add_node(
                qid, n.id, "rerun", f"Seed {seed} of node {n.id}: the next seed pair of "
                f"node {child.id} vs node {parent.id} (training noise left the verdict open).",
                overrides=n.overrides, patch=n.patch, seed=seed)
            made.append(rid)
    store.update_node(child.id, verdict_test=f"open after {why[:300]}; seed {seed} pair: "
                                             f"node(s) {made or 'already there'}")
    say(f"node {child.id} vs node {parent.id}: open; training seed {seed} of both "
        f"(node(s) {made})")


def add_planned_seeds(store: TreeStore, qid: int, node_id: int, parent: Any, seeds: int,
                      runs_left: Callable[[], int], say: Say) -> None:
    """`--seeds N` (a plan's `seeds`, a proposal's `meta["seeds"]`): the new node and its parent
    each train seeds s..s+N-1 (s: the node's own seed) as seed re-runs, the same nodes an open
    verdict adds (`add_seed_pair`), so child seed k pairs with parent seed k (common random
    numbers) and the verdict, which waits for them, pools the N pairs. An open verdict can
    still add seed s+N on top, up to `verdict.max_seed_pairs`. Seeds the runs budget cannot
    pay for are left out, and said."""
    if seeds <= 1:
        return
    node = store.get_node(node_id)
    made, unpaid = [], []
    for k in range(1, seeds):
        seed = node.seed + k
        for n in (parent, node):
            if has_seed(n, seed, store.nodes(qid)):
                continue
            if runs_left() <= 0:
                unpaid.append(f"seed {seed} of node {n.id}")
                continue
            made.append(store.add_node(
                qid, n.id, "rerun", f"Seed {seed} of node {n.id}: planned seed pair {k + 1} "
                f"of {seeds} of node {node.id} vs node {parent.id} (--seeds {seeds}).",
                overrides=n.overrides, patch=n.patch, seed=seed))
    say(f"node {node.id} vs node {parent.id}: {seeds} seeds each; seed node(s) {made}"
        + (f"; no runs left for {', '.join(unpaid)}" if unpaid else ""))


def has_seed(node: Any, seed: int, nodes: list[Any]) -> bool:
    """Is `seed` of `node` trained or queued (the node itself, or one of its seed re-runs)?"""
    return node.seed == seed or any(c.parent_id == node.id and c.kind == "rerun" and c.seed == seed
                                    and c.status != "interrupted" for c in nodes)


def compared(store: TreeStore, question_id: int) -> bool:
    """Did the question compare at least one pair of finished nodes (a verdict of any kind)?"""
    return any(n.verdict is not None for n in store.nodes(question_id))
