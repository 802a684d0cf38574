"""Simulated verdicts: the whole decision procedure (games in batches, seed pairs, caps) run against
a planted truth, for the error-rate tests and benchmarks/verdicts.py.

The world simulated: the change's true effect is `theta` Elo. Seed pair k's two checkpoints differ
by d_k = theta + e_k, e_k ~ Normal(0, sigma_true) (training noise left after pairing). Each game
pair is one game with the child as black and one as white, independent given d_k, the child's
win probability being the logistic Elo curve at d_k +- colour_elo (black's advantage). No draws
(komi 7 on 9x9 makes them rare). Pairs are played in batches of `batch_pairs` and `decide` is
consulted after every batch, as the loop will.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autoresearch.agent_config import VerdictConfig
from autoresearch.verdict import ADD_SEED_PAIR, MORE_GAMES, SigmaEstimate, VerdictRecord, decide
from go_core.arena.sprt import elo_to_score


def pair_probs(diff_elo: float, colour_elo: float = 0.0) -> np.ndarray:
    """Pentanomial probabilities (0, 0.5, 1, 1.5, 2 points) of a colour-swapped pair, no draws."""
    pb, pw = elo_to_score(diff_elo + colour_elo), elo_to_score(diff_elo - colour_elo)
    return np.array([(1 - pb) * (1 - pw), 0.0, pb * (1 - pw) + (1 - pb) * pw, 0.0, pb * pw])


@dataclass
class SimRun:
    record: VerdictRecord   # the final decision
    pairs: int              # game pairs played in all
    seed_pairs: int         # seed pairs trained


def simulate_one(theta: float, sigma_true: float, rng: np.random.Generator,
                 cfg: VerdictConfig | None = None, sigma_used: float | None = None,
                 batch_pairs: int = 25, colour_elo: float = 0.0) -> SimRun:
    """Run the procedure once to its verdict. sigma_used: the sigma_paired the verdict is told
    (default: the truth, i.e. a tree that has measured it)."""
    cfg = cfg or VerdictConfig()
    sig = SigmaEstimate(sigma_true if sigma_used is None else sigma_used, 0.0, "simulation")
    counts: list[np.ndarray] = []
    diffs: list[float] = []
    while True:
        if not counts or rec.next == ADD_SEED_PAIR:
            counts.append(np.zeros(5, dtype=np.int64))
            diffs.append(theta + rng.normal(0.0, sigma_true) if sigma_true > 0 else theta)
        n = min(batch_pairs, cfg.pairs_per_seed_pair - int(counts[-1].sum()))
        counts[-1] += rng.multinomial(n, pair_probs(diffs[-1], colour_elo))
        rec = decide([c.tolist() for c in counts], cfg, sig)
        if rec.verdict is not None:
            return SimRun(rec, int(sum(c.sum() for c in counts)), len(counts))
        assert rec.next in (MORE_GAMES, ADD_SEED_PAIR), rec.next


def simulate(theta: float, sigma_true: float, runs: int, seed: int = 0,
             cfg: VerdictConfig | None = None, sigma_used: float | None = None,
             batch_pairs: int = 25, colour_elo: float = 0.0) -> dict:
    """`runs` independent runs: how often each verdict came out, and the mean work spent."""
    rng = np.random.default_rng(seed)
    out = {"better": 0, "worse": 0, "inconclusive": 0}
    pairs = seeds = covered = 0
    for _ in range(runs):
        r = simulate_one(theta, sigma_true, rng, cfg, sigma_used, batch_pairs, colour_elo)
        out[r.record.verdict] += 1
        pairs += r.pairs
        seeds += r.seed_pairs
        lo, hi = r.record.ci95
        covered += lo <= theta <= hi
    return {"runs": runs, **out, "mean_pairs": pairs / runs, "mean_seed_pairs": seeds / runs,
            "ci_coverage": covered / runs}
