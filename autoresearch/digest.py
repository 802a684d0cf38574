"""A compact digest of a question's tree, for the proposers: what was tried, the result with its
interval, why failures failed. Also the identity of an experiment (overrides set + patch hash),
by which the loop refuses to run the same experiment twice.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from autoresearch.jobs.protect import patch_paths

# Nodes that settled nothing about their proposal; proposing the same again is allowed.
NOT_A_RESULT = ("interrupted",)
ERROR_CHARS = 300


def merge_overrides(*groups: list[str]) -> list[str]:
    """Hydra refuses a key given twice: later groups win, order of first appearance kept."""
    out: dict[str, str] = {}
    for group in groups:
        for o in group:
            key = o.split("=", 1)[0].strip()
            out.pop(key, None)
            out[key] = o
    return list(out.values())


def effective_change(parent: Any, overrides: list[str], patch: str | None
                     ) -> tuple[list[str], str | None]:
    """A node's change vs the baseline: the parent's overrides then its own; the parent's patch
    unless it brings one (a patch is always a diff against HEAD, never against the parent's)."""
    inherited = list(parent.overrides or []) if parent is not None and parent.kind != "baseline" else []
    own_patch = patch if patch and patch.strip() else None
    return merge_overrides(inherited, overrides), own_patch or (parent.patch if parent is not None else None)


def normalise_overrides(overrides: list[str]) -> tuple[str, ...]:
    out = set()
    for o in overrides:
        key, sep, value = str(o).strip().partition("=")
        out.add(f"{key.strip()}{sep}{value.strip()}")
    return tuple(sorted(out))


def proposal_key(overrides: list[str], patch: str | None) -> tuple[tuple[str, ...], str | None]:
    """An experiment's identity: its set of overrides and the sha256 of its patch."""
    sha = hashlib.sha256(patch.encode()).hexdigest() if patch and patch.strip() else None
    return normalise_overrides(overrides), sha


@dataclass
class DigestEntry:
    node_id: int
    parent_id: int | None
    kind: str
    status: str
    hypothesis: str
    overrides: list[str]
    patch_files: list[str]
    patch_sha256: str | None
    seed: int
    elo: float | None = None
    elo_ci95: list[float] | None = None
    winrate: float | None = None
    winrate_ci95: list[float] | None = None
    verdict: str | None = None
    verdict_test: str | None = None
    why_failed: str | None = None
    notes: str | None = None
    verdict_detail: dict | None = None    # head-to-head: diff, ci95, mde, games, seed_pairs (verdict_summary)

    def line(self) -> str:
        change = " ".join(self.overrides) or "(no overrides)"
        if self.patch_files:
            change += f" + patch {self.patch_sha256[:8] if self.patch_sha256 else ''} on " \
                      f"{', '.join(self.patch_files)}"
        head = (f"#{self.node_id} [{self.kind}] parent={self.parent_id} seed={self.seed} "
                f"status={self.status}: {change}")
        parts = [head]
        if self.hypothesis:
            parts.append(f"  hypothesis: {self.hypothesis}")
        if self.elo is not None:
            ci = (f" [{self.elo_ci95[0]:.0f}, {self.elo_ci95[1]:.0f}]"
                  if self.elo_ci95 and None not in self.elo_ci95 else "")
            wr = ""
            if self.winrate is not None:
                wci = (f" [{self.winrate_ci95[0]:.0%}, {self.winrate_ci95[1]:.0%}]"
                       if self.winrate_ci95 and None not in self.winrate_ci95 else "")
                wr = f"; win rate vs reference {self.winrate:.0%}{wci}"
            parts.append(f"  result: Elo {self.elo:.0f}{ci}{wr}")
        if self.verdict and self.verdict_detail and self.verdict_detail.get("diff") is not None:
            d = self.verdict_detail
            parts.append(f"  verdict vs parent: {self.verdict}, {d['diff']:+.0f} Elo "
                         f"[{d['ci95'][0]:+.0f}, {d['ci95'][1]:+.0f}] head-to-head over {d['games']} games "
                         f"and {d['seed_pairs']} seed pair(s); minimum detectable difference "
                         f"{d['mde']:.0f} Elo")
        elif self.verdict:
            parts.append(f"  verdict vs parent: {self.verdict} ({self.verdict_test})")
        if self.why_failed:
            parts.append(f"  why it failed: {self.why_failed}")
        return "\n".join(parts)


@dataclass
class Digest:
    question_id: int
    question: str
    entries: list[DigestEntry]
    runs_used: int
    max_nodes: int | None
    keys: set = field(default_factory=set)     # proposal_key of every node that is a result

    @property
    def text(self) -> str:
        budget = (f"{self.runs_used} of {self.max_nodes} runs used" if self.max_nodes
                  else f"{self.runs_used} runs used")
        lines = [f"Question {self.question_id}: {self.question}", f"Budget: {budget}.",
                 f"Nodes ({len(self.entries)}):"]
        lines += [e.line() for e in self.entries] or ["(none yet)"]
        return "\n".join(lines)

    def entry(self, node_id: int) -> DigestEntry | None:
        return next((e for e in self.entries if e.node_id == node_id), None)

    def baseline(self) -> DigestEntry | None:
        """The question's baseline: the latest one (an interrupted or failed one is replaced by
        its re-run)."""
        return next((e for e in reversed(self.entries) if e.kind == "baseline"
                     and e.status not in NOT_A_RESULT), None)

    def best(self) -> DigestEntry | None:
        ok = [e for e in self.entries if e.status == "ok" and e.elo is not None
              and e.kind != "rerun"]
        return max(ok, key=lambda e: e.elo) if ok else None


def entry_of(node: Any) -> DigestEntry:
    m = node.metrics or {}
    why = None
    if node.status not in ("ok", "pending", "running"):
        why = (node.error or "").strip().splitlines()
        why = why[-1] if why else None
        if not why and node.log_tail:
            why = node.log_tail.strip().splitlines()[-1]
        why = (why or node.status)[:ERROR_CHARS]
    return DigestEntry(
        node_id=node.id, parent_id=node.parent_id, kind=node.kind, status=node.status,
        hypothesis=node.hypothesis or "", overrides=list(node.overrides or []),
        patch_files=patch_paths(node.patch) if node.patch else [],
        patch_sha256=node.patch_sha256, seed=node.seed, elo=m.get("elo"),
        elo_ci95=m.get("elo_ci95"), winrate=m.get("winrate_vs_ref"),
        winrate_ci95=m.get("winrate_ci95"), verdict=node.verdict, verdict_test=node.verdict_test,
        why_failed=why, notes=node.notes, verdict_detail=verdict_summary(m.get("verdict_detail")))


def verdict_summary(record: Any) -> dict | None:
    """The few numbers of a head-to-head verdict record (autoresearch/verdict.py VerdictRecord)
    that readers show: the difference, its 95% interval, the minimum detectable difference, the
    games per side and the seed pairs."""
    if not isinstance(record, dict) or record.get("diff_elo") is None or not record.get("ci95"):
        return None
    return {"diff": record["diff_elo"], "ci95": list(record["ci95"]), "mde": record.get("mde_elo"),
            "games": record.get("games_per_side"), "seed_pairs": record.get("seed_pairs")}


def runs_used(nodes: list[Any]) -> int:
    """Budget used: every node except the interrupted ones (re-queued) counts once."""
    return sum(1 for n in nodes if n.status not in NOT_A_RESULT)


def make_digest(store: Any, question_id: int) -> Digest:
    q = store.get_question(question_id)
    nodes = store.nodes(question_id)
    keys = {proposal_key(n.overrides, n.patch) for n in nodes
            if n.status not in NOT_A_RESULT and n.kind != "rerun"}
    return Digest(question_id=question_id, question=q.text, entries=[entry_of(n) for n in nodes],
                  runs_used=runs_used(nodes), max_nodes=(q.settings or {}).get("runs"), keys=keys)
