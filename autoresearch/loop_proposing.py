"""The loop's proposing: when to ask the proposer, and how a proposal becomes a node (or is
refused: an unknown parent, overrides outside the learner's config groups, an experiment the tree
already holds). The tokens and dollars a proposer spends are booked on the nodes it made."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from autoresearch.digest import effective_change, make_digest, proposal_key
from autoresearch.loop_verdicts import add_planned_seeds
from autoresearch.override_policy import validate_overrides
from autoresearch.proposers.base import Conclusion, Proposal, Proposer
from experiment_tree.store import TreeStore

if TYPE_CHECKING:
    from autoresearch.loop import ResearchLoop

MAX_EMPTY_ROUNDS = 3         # proposer rounds in a row that yield nothing new -> stop


def propose_round(loop: ResearchLoop) -> None:
    """One round: with a worker free, the baseline finished and budget left, ask the proposer for
    as many proposals as can run; a Conclusion (or rounds with nothing new) sets the loop's
    `stop_reason`. Spent budget sets it too."""
    free = loop.cfg.workers - len(loop.running) - len(loop.pending())
    if free <= 0:
        return
    base = loop.baseline()
    if base is None or not base.finished:
        return   # the proposer needs the baseline's result
    if loop.wait_for_result and loop.running:
        return
    if loop.runs_left() <= 0:
        loop.stop_reason = "max-nodes"
        return
    if loop.seconds_left() <= 0:
        loop.stop_reason = "max-hours"
        return
    if loop.cost_left() <= 0:
        loop.stop_reason = "max-cost"
        return
    n = min(free, loop.runs_left())
    digest = make_digest(loop.store, loop.qid)
    try:
        result = loop.proposer.propose(digest, n)
    finally:
        tokens, cost = loop.proposer.take_usage()
    if isinstance(result, Conclusion):
        book_usage(loop.store, loop.qid, tokens, cost, [])
        loop.conclusion = result
        loop.stop_reason = "concluded"
        loop.say(f"the proposer concluded: {result.answer[:200]}")
        return
    made = [nid for p in result if (nid := loop.add_proposal(p, digest)) is not None]
    book_usage(loop.store, loop.qid, tokens, cost, made)
    if made:
        loop.empty_rounds = 0
        loop.wait_for_result = len(made) < n
    else:
        loop.empty_rounds += 1
        loop.wait_for_result = True
        if loop.empty_rounds >= MAX_EMPTY_ROUNDS and not loop.running:
            loop.stop_reason = "proposer had nothing new"


def book_usage(store: TreeStore, qid: int, tokens: int, cost: float, node_ids: list[int]) -> None:
    """Add a proposer call's tokens and cost to the question, shared evenly among `node_ids`."""
    if not tokens and not cost:
        return
    if not node_ids:
        store.add_usage(qid, tokens, cost)
        return
    for i, nid in enumerate(node_ids):
        share_t = tokens // len(node_ids) + (1 if i < tokens % len(node_ids) else 0)
        store.add_usage(qid, share_t, cost / len(node_ids), node_id=nid)


def add_proposal(store: TreeStore, qid: int, proposer: Proposer, p: Proposal, baseline: Any,
                 seed: int, runs_left: Callable[[], int], say: Callable[[str], None]) -> int | None:
    """Make a proposal a node with `seed` (or refuse it, telling the proposer why); its parent is
    `p.parent_id` or the `baseline`. Returns the node id or None."""
    nodes = {n.id: n for n in store.nodes(qid)}
    parent = nodes.get(p.parent_id) if p.parent_id is not None else baseline
    if parent is None:
        say(f"proposal refused: parent node {p.parent_id} is not in this question")
        proposer.rejected(p, f"parent node {p.parent_id} does not exist")
        return None
    bad = validate_overrides(p.overrides)   # the learner's config groups only
    if bad:
        say(f"proposal refused: {'; '.join(bad)}")
        proposer.rejected(p, "overrides refused: " + "; ".join(bad))
        return None
    # a node holds its effective change vs the baseline, so it reads (and reruns) alone
    overrides, patch = effective_change(parent, p.overrides, p.patch)
    key = proposal_key(overrides, patch)
    if key in make_digest(store, qid).keys:
        same = [n.id for n in nodes.values() if n.kind != "rerun"
                and n.status != "interrupted" and proposal_key(n.overrides, n.patch) == key]
        say(f"proposal refused: the same experiment is already node(s) {same}")
        proposer.rejected(p, f"the same experiment (overrides and patch) is already "
                             f"node(s) {same}")
        return None
    kind = p.kind if not (p.kind == "config" and patch) else "code"
    nid = store.add_node(qid, parent.id, kind, p.hypothesis, overrides=overrides,
                         patch=patch, seed=seed)
    proposer.accepted(p, nid)
    # -- issue 16 (agent branch): the proposal's forecast and track go on its node --------------
    from autoresearch.tracks import record_proposal
    record_proposal(store, qid, nid, p)
    # -- end issue 16 ----------------------------------------------------------------------------
    add_planned_seeds(store, qid, nid, parent, int(p.meta.get("seeds") or 1), runs_left, say)
    say(f"node {nid} ({kind}, parent {parent.id}): {' '.join(overrides) or '-'}"
        f"{' + patch' if patch else ''} -- {p.hypothesis[:120]}")
    return nid
