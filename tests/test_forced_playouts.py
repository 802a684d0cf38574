"""KataGo's forced playouts and policy target pruning (mcts.forced_playouts)."""
import math

import numpy as np

from go_core.game.board import Board
from go_core.learn.mcts import search
from go_core.learn.mcts_config import MCTSConfig
from tests.test_mcts import LinearEvaluator


def _search(forced, noise=True, sims=200, seed=0):
    cfg = MCTSConfig(forced_playouts=forced, forced_k=2.0, leaves_per_game=1, dirichlet_eps=0.25)
    return search(Board(9), LinearEvaluator(seed=3), sims, cfg, noise=noise, rng=np.random.default_rng(seed))


def test_visited_root_children_get_their_forced_playouts():
    tree = _search(True)
    kids = np.arange(tree.children().start, tree.children().stop)
    n, p = tree.N[kids], tree.P[kids].astype(np.float64)
    total = n.sum()
    visited = n > 0
    assert np.all(n[visited] + 1 >= np.sqrt(2.0 * p[visited] * total))
    plain = _search(False)  # the same noise without forcing: some visited children are short of it
    n0, p0 = plain.N[kids], plain.P[kids].astype(np.float64)
    assert not np.all(n0[n0 > 0] + 1 >= np.sqrt(2.0 * p0[n0 > 0] * n0.sum()))
    # without noise (evaluation, cheap searches) nothing is forced and the target is the visits
    quiet = _search(True, noise=False)
    np.testing.assert_allclose(quiet.policy_target(), quiet.visit_counts() / quiet.visit_counts().sum(), rtol=1e-6)


def test_policy_target_pruning_removes_forced_visits_only():
    tree = _search(True)
    raw = tree.visit_counts().astype(float)
    pruned = tree.pruned_visit_counts()
    best = tree.best_move()
    assert pruned[best] == raw[best]                      # the best child keeps all its visits
    assert np.all(pruned <= raw) and pruned.sum() < raw.sum()
    assert not np.any(pruned == 1)                        # children left with one visit are dropped
    target = tree.policy_target()
    np.testing.assert_allclose(target, pruned / pruned.sum(), rtol=1e-6)
    # every pruned child still scores below the best one by PUCT with its reduced count
    cfg = tree.cfg
    kids = np.arange(tree.children().start, tree.children().stop)
    n_root = tree.N[tree.root]
    cp = cfg.c_puct + math.log((1 + n_root + cfg.c_puct_base) / cfg.c_puct_base)
    sq = math.sqrt(n_root - 1)
    b = kids[tree.move[kids] == best][0]
    best_score = tree.W[b] / tree.N[b] + cp * tree.P[b] * sq / (1 + tree.N[b])
    for c in kids:
        m = tree.move[c]
        if m != best and 0 < pruned[m] < raw[m]:
            assert tree.W[c] / tree.N[c] + cp * tree.P[c] * sq / (1 + pruned[m]) < best_score + 1e-9
            assert raw[m] - pruned[m] <= math.sqrt(2.0 * tree.P[c] * raw.sum())
