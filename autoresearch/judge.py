"""From finished nodes to ranked numbers and verdicts, through the referee's games.

Two steps, both run by the loop when the referee is on (nodes that run the real training job):
- `rate`: a finished node's metrics are its job's training metrics (losses, games, steps) plus
  the referee's ladder Elo with its interval; whatever Elo or win rate the job wrote itself is
  dropped. The ladder walk starts at the parent's Elo. Seed re-runs are not put on the ladder:
  they exist for the verdict's head-to-head games.
- `compare`: child seed k plays parent seed k (same seed: common random numbers) in colour-swapped
  game pairs until the games settle; `verdict.decide` combines the seed pairs with the training
  noise sigma_paired and says `better`, `worse`, `inconclusive`, or that another seed pair is
  needed. Each head-to-head result is stored on the child's run (`metrics.h2h[<parent run id>]`)
  so a resumed loop never replays it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from autoresearch.agent_config import VerdictConfig
from autoresearch.referee import Referee, RefereeError
from autoresearch.jobs.status import job_metrics
from autoresearch.verdict import ADD_SEED_PAIR, MORE_GAMES, VerdictRecord, decide, estimate_sigma_paired

LADDER_KEYS = ("elo", "elo_ci95", "winrate_vs_ref", "winrate_ci95", "games_vs_ref", "reference",
               "rungs", "colour_advantage", "ladder_source", "rating_seconds")


@dataclass
class Comparison:
    record: VerdictRecord | None      # None: a seed pair is still training
    add_seed: int | None = None       # train child and parent with this seed, then compare again
    why_stopped: str = ""


class Judge:
    def __init__(self, referee: Referee, cfg: VerdictConfig, visits: int,
                 say: Callable[[str], None], board_size: int = 9, komi: float = 7.0):
        self.referee = referee
        self.cfg = cfg
        self.visits = visits
        self.say = say
        self.board_size = board_size
        self.komi = komi

    # -- ladder ------------------------------------------------------------------------------
    def rate(self, node: Any, summary: dict | None, parent: Any | None) -> tuple[dict, str | None]:
        """(metrics, error): the job's training metrics and the referee's ladder rating; an error
        (the node cannot be rated: no checkpoint, the rating failed) makes the node `invalid`."""
        metrics = job_metrics(summary)
        ckpt = checkpoint_of(node)
        if ckpt is None:
            return metrics, "the job ended ok but left no checkpoint for the referee to rate"
        if node.kind == "rerun":
            return metrics, None
        start = (parent.metrics or {}).get("elo") if parent is not None else None
        self.say(f"node {node.id}: the referee rates it on the ladder"
                 + (f" (walk from the parent's Elo {start:.0f})" if isinstance(start, (int, float)) else ""))
        try:
            r = self.referee.ladder(node.id, ckpt, self.visits, start_elo=start if isinstance(
                start, (int, float)) else None, board_size=self.board_size, komi=self.komi)
        except RefereeError as e:
            return metrics, f"the referee could not rate it: {e}"
        metrics.update({k: r[k] for k in LADDER_KEYS if k in r})
        metrics["rating"] = {"by": "referee", "sandbox": r.get("sandbox"),
                             "ladder": str(self.referee.ratings_dir(node.id) / "ladder.json")}
        return metrics, None

    # -- head to head ------------------------------------------------------------------------
    def compare(self, store: Any, child: Any, parent: Any, nodes: list[Any],
                seeds_affordable: bool) -> Comparison:
        child_runs = runs_by_seed(child, nodes)
        parent_runs = runs_by_seed(parent, nodes)
        sigma = self.sigma(nodes)
        counts: list[list[float]] = []
        for seed in sorted(child_runs):
            c, p = child_runs[seed], parent_runs.get(seed)
            if p is None:
                continue
            h = ((c.metrics or {}).get("h2h") or {}).get(str(p.id))
            if h is None:
                h = self.play(store, c, p, sigma.elo)
            if h is None:
                continue
            if h.get("error"):
                return Comparison(None, why_stopped=f"head-to-head of node {c.id} vs node {p.id} "
                                                    f"failed: {h['error']}")
            counts.append(list(h["pentanomial"]))
        if not counts:
            return Comparison(None)
        rec = decide(counts, self.cfg, sigma)
        if rec.verdict is not None:
            return Comparison(rec)
        # the rating process plays each seed pair until its games settle: 'more games' after it
        # (pairs abandoned by failures) counts as settled
        nxt = rec.next
        if nxt == MORE_GAMES:
            nxt = ADD_SEED_PAIR if len(counts) < self.cfg.max_seed_pairs else None
        if nxt == ADD_SEED_PAIR and seeds_affordable:
            return Comparison(rec, add_seed=next_seed(child, nodes))
        why = ("seed-pair cap reached" if nxt is None else
               "no budget left for another seed pair")
        return Comparison(_inconclusive(rec, why), why_stopped=why)

    def play(self, store: Any, c: Any, p: Any, sigma_elo: float) -> dict | None:
        ck, pk = checkpoint_of(c), checkpoint_of(p)
        if ck is None or pk is None:
            return None
        seed = 1_000 * int(c.id) + int(c.seed)   # each node's openings, order and colours its own
        self.say(f"node {c.id} vs node {p.id}: head-to-head game pairs (seed {c.seed})")
        try:
            h = self.referee.head_to_head((c.id, ck), (p.id, pk), seed, self.cfg.pairs_per_seed_pair,
                                          self.cfg.delta_elo, self.cfg.alpha, self.cfg.beta,
                                          math.sqrt(self.cfg.settle_ratio) * sigma_elo,
                                          self.board_size, self.komi)
        except RefereeError as e:
            self.say(f"node {c.id} vs node {p.id}: head-to-head failed: {e}")
            h = {"error": str(e)[:500]}        # recorded: a resumed loop does not replay it
        if h.get("error"):
            keep = {"error": h["error"]}
        else:
            keep = self._keep(h)
        metrics = dict(c.metrics or {})
        metrics["h2h"] = {**(metrics.get("h2h") or {}), str(p.id): keep}
        store.update_node(c.id, metrics=metrics)
        c.metrics = metrics
        if keep.get("error"):
            return keep
        diff, ci = keep.get("diff_elo"), keep.get("ci95")
        self.say(f"node {c.id} vs node {p.id}: {keep['games']} games"
                 + (f", {diff:+.0f} Elo [{ci[0]:+.0f}, {ci[1]:+.0f}]" if diff is not None and ci else "")
                 + f" ({keep.get('stopped')})")
        return keep

    @staticmethod
    def _keep(h: dict) -> dict:
        keep = {k: h.get(k) for k in ("pentanomial", "diff_elo", "se_elo", "ci95", "stopped",
                                      "games_per_min", "opening_source", "seconds")}
        keep["games"] = 2 * sum(h["pentanomial"])
        return keep

    def sigma(self, nodes: list[Any]):
        """sigma_paired pooled over the question's children with two or more seed pairs."""
        groups = []
        for n in nodes:
            h = [v for r in runs_by_seed(n, nodes).values()
                 for v in ((r.metrics or {}).get("h2h") or {}).values()
                 if v.get("diff_elo") is not None and v.get("se_elo") is not None]
            if len(h) >= 2:
                groups.append([(v["diff_elo"], v["se_elo"]) for v in h])
        return estimate_sigma_paired(groups, self.cfg.sigma_paired_prior_elo, self.cfg.sigma_prior_df)


def checkpoint_of(node: Any) -> Path | None:
    if not node.run_dir:
        return None
    for name in ("best.pt", "latest.pt"):
        p = Path(node.run_dir) / "checkpoints" / name
        if p.is_file():
            return p
    return None


def runs_by_seed(node: Any, nodes: list[Any]) -> dict[int, Any]:
    """The node and its finished-ok seed re-runs, by seed."""
    runs = [node] + [c for c in nodes if c.parent_id == node.id and c.kind == "rerun" and c.status == "ok"]
    out: dict[int, Any] = {}
    for r in runs:
        if r.status == "ok":
            out.setdefault(int(r.seed), r)
    return out


def next_seed(node: Any, nodes: list[Any]) -> int:
    """The seed of the next seed pair: one past every seed the node has tried, failed ones too
    (a crashed seed of `--seeds N` is not tried again by the pair that would replace it)."""
    tried = [int(node.seed)] + [int(c.seed) for c in nodes if c.parent_id == node.id
                                and c.kind == "rerun" and c.status != "interrupted"]
    return max(tried) + 1


def _inconclusive(rec: VerdictRecord, why: str) -> VerdictRecord:
    rec.verdict, rec.next = "inconclusive", None
    if rec.ci95:
        rec.test += (f"; stopped: {why}; inconclusive: rules out differences outside "
                     f"[{rec.ci95[0]:+.0f}, {rec.ci95[1]:+.0f}] Elo")
    return rec
