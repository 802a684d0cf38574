"""The end of a question: its answer (the proposer's conclusion, or the loop's own summary of the
tree when the proposer gives none), written from a digest that leaves suspect nodes out, and the
one-line text the loop says for each finished node."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoresearch import jobs
from autoresearch.digest import Digest, make_digest
from autoresearch.loop_proposing import book_usage
from autoresearch.progress import failure_line
from autoresearch.proposers.base import ProposerUnavailable
from experiment_tree.store import TreeStore

if TYPE_CHECKING:
    from autoresearch.loop import LoopResult, ResearchLoop


def finish(loop: ResearchLoop) -> LoopResult:
    """Write the question's answer and final status, and the report; a failed baseline or
    starting point ends the question `failed` with what to fix."""
    from autoresearch.loop import LoopResult
    if loop.baseline_failed:
        answer = (f"No answer: {loop.stop_reason}. Nothing could be compared. Fix the cause, "
                  f"then `research run --resume --question {loop.qid}` runs the baseline again.")
        base = loop.baseline()
        loop.save_time()
        loop.store.set_answer(loop.qid, answer, [base.id] if base else [], status="failed")
        loop.write_report(wait=True)
        loop.say(f"question {loop.qid} failed: {loop.stop_reason}")
        return LoopResult(loop.qid, "failed", loop.stop_reason or "", answer)
    loop.update_verdicts()
    digest, left_out = answer_digest(loop.store, loop.qid)
    known = {e.node_id for e in digest.entries}
    if loop.conclusion is not None:
        answer, evidence, status = loop.conclusion.answer, loop.conclusion.evidence, "answered"
    else:
        c = None
        try:
            c = loop.proposer.conclude(digest)
        except ProposerUnavailable as e:
            loop.say(f"the proposer could not write the answer ({e}); summarising the tree")
        finally:
            tokens, cost = loop.proposer.take_usage()
            book_usage(loop.store, loop.qid, tokens, cost, [])
        if c is not None:
            answer, evidence, status = c.answer, c.evidence, "answered"
        else:
            answer, evidence = summarise(digest, loop.stop_reason or "budget spent")
            status = "answered" if loop.stop_reason == "concluded" else "limit-reached"
    evidence = [e for e in evidence if e in known]
    if left_out:
        answer += (" [Left out as suspect -- failed health checks not explained: "
                   + "; ".join(left_out) + ". `research explain NODE \"reason\"` counts one again.]")
    loop.save_time()
    loop.store.set_answer(loop.qid, answer, evidence, status=status)
    loop.write_report(wait=True)
    loop.say(f"question {loop.qid} {status}: {answer}")
    return LoopResult(loop.qid, status, loop.stop_reason or "", answer)


def answer_digest(store: TreeStore, qid: int) -> tuple[Digest, list[str]]:
    """The digest the answer is written from: suspect nodes (a failed, unexplained health
    check: experiment_tree/suspect.py) and their seed re-runs left out; and what was left out."""
    from experiment_tree.suspect import failed_checks, is_suspect
    digest = make_digest(store, qid)
    nodes = store.nodes(qid)
    bad = {n.id: n for n in nodes if is_suspect(n)}
    out = set(bad) | {n.id for n in nodes if n.kind == "rerun" and n.parent_id in bad}
    if not out:
        return digest, []
    entries = [e for e in digest.entries if e.node_id not in out]
    return (dataclasses.replace(digest, entries=entries),
            [f"#{i} ({', '.join(failed_checks(n))})" for i, n in sorted(bad.items())])


def finished_line(node: Any) -> str:
    """One line for a finished node: status, Elo with its interval; for a failure the exception's
    own message and the path of its log."""
    m = node.metrics or {}
    elo, ci = m.get("elo"), m.get("elo_ci95")
    text = f"node {node.id} {node.status}"
    if isinstance(elo, (int, float)):
        text += f": Elo {elo:.0f}"
        if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
            text += f" [{ci[0]:.0f}, {ci[1]:.0f}]"
    if node.status != "ok":
        text += f" -- {failure_line(node.error)}"
        if node.run_dir:
            text += f" (log: {Path(node.run_dir) / jobs.LOG_NAME})"
    return text


def summarise(digest: Digest, reason: str) -> tuple[str, list[int]]:
    """The loop's own answer when the proposer gives none: best node vs the baseline, honestly."""
    base = digest.baseline()
    base = base if base is not None and base.status == "ok" else None
    counts: dict[str, int] = {}
    for e in digest.entries:
        counts[e.status] = counts.get(e.status, 0) + 1
    tally = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    head = f"Stopped ({reason}) after {len(digest.entries)} nodes ({tally})."
    better = [e for e in digest.entries if e.verdict == "better"]
    best = digest.best()
    if base is None:
        return f"{head} The baseline did not finish ok, so nothing could be compared.", \
            [e.node_id for e in digest.entries if e.kind == "baseline"]

    def fmt(e: Any) -> str:
        ci = (f" [{e.elo_ci95[0]:.0f}, {e.elo_ci95[1]:.0f}]" if e.elo_ci95 else "")
        return f"node {e.node_id} ({' '.join(e.overrides) or 'baseline'}): Elo {e.elo:.0f}{ci}"

    if better:
        top = max(better, key=lambda e: e.elo if e.elo is not None else -math.inf)
        text = (f"{head} {len(better)} change(s) beat their parent outside the noise; the "
                f"strongest is {fmt(top)} vs {fmt(base)} ({top.verdict_test}).")
        return text, [base.node_id] + [e.node_id for e in better]
    if best is not None and best.node_id != base.node_id:
        verdict = best.verdict or "not yet compared"
        text = (f"{head} No change was better than the baseline outside the noise. Highest "
                f"point estimate: {fmt(best)} vs {fmt(base)}; verdict: {verdict}"
                f"{' (' + best.verdict_test + ')' if best.verdict_test else ''}.")
        return text, [base.node_id, best.node_id]
    return f"{head} No change was better than the baseline {fmt(base)}.", [base.node_id]
