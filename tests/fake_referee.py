"""A stand-in for the referee (autoresearch/referee.py) for loop tests over the fake training job:
the same `ladder` / `head_to_head` / `ratings_dir` interface, answered from a table instead of
games, and every head-to-head call recorded so a test can check which nodes were paired.

Strength comes from the fake job's own summary (its Elo is a function of the overrides plus seeded
noise): the "checkpoint" a test hands the judge is the run's summary.json (see `fake_checkpoints`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from go_core.arena.sprt import estimate

# pentanomial counts (child scored 0, 0.5, 1, 1.5, 2 points per game pair) by the child's seed:
# seed 0 leans to the child, seed 1 to the parent, later seeds even -- a verdict must pool them
COUNTS_BY_SEED = {0: [2, 6, 18, 10, 4], 1: [4, 10, 18, 6, 2]}
EVEN = [2, 8, 20, 8, 2]


class FakeReferee:
    def __init__(self, workspace: Path, seed_of: Callable[[int], int]):
        self.workspace = Path(workspace)
        self.seed_of = seed_of                 # node id -> its training seed (from the tree)
        self.h2h: list[tuple[int, int]] = []   # (child node, parent node) of every call
        self.rated: list[int] = []

    def ratings_dir(self, node_id: int) -> Path:
        return self.workspace / "ratings" / str(node_id)

    def ladder(self, node_id: int, checkpoint: Path, visits: int, start_elo: float | None = None,
               board_size: int = 9, komi: float = 7.0) -> dict:
        self.rated.append(node_id)
        elo = float(json.loads(Path(checkpoint).read_text())["metrics"]["elo"])
        return {"elo": elo, "elo_ci95": [elo - 50.0, elo + 50.0], "games_vs_ref": 40}

    def head_to_head(self, child: tuple[int, Path], parent: tuple[int, Path], seed: int,
                     max_pairs: int, delta: float, alpha: float, beta: float, settle_se: float,
                     board_size: int = 9, komi: float = 7.0) -> dict:
        self.h2h.append((child[0], parent[0]))
        counts = list(COUNTS_BY_SEED.get(self.seed_of(child[0]), EVEN))
        e = estimate(counts)
        return {"pentanomial": counts, "diff_elo": e.elo, "se_elo": e.se, "ci95": list(e.ci95),
                "stopped": "pair cap", "games_per_min": 100.0, "opening_source": "fake",
                "seconds": 0.1}


def fake_checkpoints(monkeypatch) -> None:
    """The judge's checkpoint of a node: its run's summary.json (what FakeReferee reads)."""
    from autoresearch import judge

    def checkpoint_of(node):
        p = Path(node.run_dir) / "summary.json" if node.run_dir else None
        return p if p is not None and p.is_file() else None

    monkeypatch.setattr(judge, "checkpoint_of", checkpoint_of)
