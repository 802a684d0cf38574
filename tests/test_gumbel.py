"""Gumbel root search: finds a win in a handful of simulations, Sequential Halving's schedule, the
improved policy target, the interior rule against its numpy twin, batching and tree reuse."""
import numpy as np
import pytest

from go_core.game.board import BLACK, Board
from go_core.game.coords import move_to_gtp
from go_core.learn.evaluators import masked_softmax
from go_core.learn.gumbel import (considered_visit_sequence, completed_q_reference, improved_policy,
                                  interior_child_reference, _interior_child)
from go_core.learn.mcts import BatchedMCTS, search
from go_core.learn.mcts_config import MCTSConfig
from go_core.learn.puct_kernels import EXPANDED
from go_core.learn.search_tree import Tree

# Black to play, komi 0.5; black is behind by 1.5 as the board stands. Only E5, capturing the white
# stone D5, wins; C4, D2, A1 and pass all lose (the position is settled: the score as it stands is
# the result).
ONLY_CAPTURE_5x5 = """
    XXXO.
    XX.XO
    XOOOO
    OOO.X
    .OXXX
"""


class ExactEvaluator:
    """Exact values on settled positions: the Tromp-Taylor result as the board stands, for the player
    to move. Prior: uniform over legal moves, or `misleading` mass on pass (the prior argues
    against the winning move, so only the values can find it)."""

    def __init__(self, misleading: float = 0.0):
        self.misleading = misleading

    def evaluate(self, boards):
        legal = np.stack([b.legal_mask() for b in boards])
        logits = np.zeros(legal.shape)
        if self.misleading:
            logits[:, -1] = np.log(self.misleading / (1 - self.misleading) * (legal.sum(1) - 1))
        values = np.array([0.0 if b.score() == 0 else 1.0 if (b.score() > 0) == (b.to_play == BLACK) else -1.0
                           for b in boards], dtype=np.float32)
        return masked_softmax(logits, legal), values


@pytest.mark.parametrize("sims", [5, 6, 8])
@pytest.mark.parametrize("misleading, noise", [(0.0, True), (0.85, False)])
def test_gumbel_finds_the_only_winning_move_in_a_few_simulations(sims, misleading, noise):
    """4 root moves, so 5 simulations (the root's own evaluation + one per move) see them all.
    With Gumbel noise the move is a sample from the improved policy, so against a misleading prior
    it may (rightly, rarely) play the prior's move; without noise it must find the win."""
    board = Board.from_ascii(ONLY_CAPTURE_5x5, komi=0.5, to_play=BLACK)
    assert board.score() < 0
    cfg = MCTSConfig(root="gumbel", gumbel_m=16)
    for seed in range(4):
        tree = search(board, ExactEvaluator(misleading), sims, cfg, noise=noise, rng=np.random.default_rng(seed))
        assert move_to_gtp(tree.best_move(), 5) == "E5", tree.child_stats()
        target = tree.policy_target()
        assert move_to_gtp(int(np.argmax(target)), 5) == "E5", target


def test_sequential_halving_schedule():
    # 32 root simulations over 16 moves: 16 visited once, the best 8 twice, the best 4 four times
    counts = np.bincount(considered_visit_sequence(16, 32).astype(int))
    assert list(counts) == [16, 8, 4, 4]
    tree = search(Board(9), _linear(), 33, MCTSConfig(root="gumbel", gumbel_m=16), noise=True,
                  rng=np.random.default_rng(0))
    visits = np.sort(tree.visit_counts()[tree.visit_counts() > 0])
    assert list(visits) == [1] * 8 + [2] * 4 + [4] * 4
    assert tree.visit_counts()[tree.best_move()] == 4
    # fewer legal moves than m: each is considered
    assert list(np.bincount(considered_visit_sequence(3, 7).astype(int))) == [3, 2, 2]


def test_improved_policy_target_sums_to_one_over_legal_moves():
    board = Board.from_ascii(ONLY_CAPTURE_5x5, komi=0.5, to_play=BLACK)
    for b, ev in ((board, ExactEvaluator()), (Board(9), _linear())):
        tree = search(b, ev, 16, MCTSConfig(root="gumbel"), noise=True, rng=np.random.default_rng(1))
        target = tree.policy_target()
        legal = b.legal_mask()
        assert target.dtype == np.float32 and abs(target.sum() - 1) < 1e-6
        assert np.all(target[~legal] == 0) and np.all(target[legal] > 0)
        np.testing.assert_allclose(target, improved_policy(tree))
    # it is not the visit distribution: on 9x9 most legal moves are unvisited and keep probability
    assert np.sum((tree.visit_counts() == 0) & legal) > 60


def test_interior_rule_matches_the_reference():
    tree = search(Board(9), _linear(), 300, MCTSConfig(root="gumbel", gumbel_m=4), rng=np.random.default_rng(2))
    buf = np.empty(400)
    checked = 0
    for node in range(tree.next_free):
        if tree.state[node] == EXPANDED and tree.N[node] > 3 and node != tree.root:
            got = _interior_child(node, tree.cstart, tree.nch, tree.N, tree.W, tree.P, tree.VL, tree.V,
                                  50.0, 0.1, buf)
            assert got == interior_child_reference(tree, node, 50.0, 0.1)
            checked += 1
    assert checked >= 5
    sig = completed_q_reference(tree, tree.root, 50.0, 0.1)
    assert sig.min() == 0 and sig.max() == pytest.approx((50 + tree.visit_counts().max()) * 0.1)


def test_batched_gumbel_search_many_games_with_reuse():
    cfg = MCTSConfig(root="gumbel", leaves_per_game=8, min_rounds=2)
    searcher = BatchedMCTS(_linear(), cfg, rng=np.random.default_rng(3))
    trees = [Tree(Board(9), cfg) for _ in range(5)]
    searcher.search_many(trees, [16, 32, 8, 2, 16], True)
    for t, s in zip(trees, [16, 32, 8, 2, 16]):
        assert t.visit_counts().sum() == s - 1 and np.all(t.VL == 0)
    before = trees[1].root_visits
    t = trees[1]
    move = t.best_move()
    t.advance(move)
    kept = t.root_visits
    searcher.search_many([t], 16, True)
    assert t.root_visits == kept + 16 and t.root_visits >= 1 and before > kept
    assert abs(t.policy_target().sum() - 1) < 1e-6
    with pytest.raises(ValueError, match="puct or gumbel"):
        BatchedMCTS(_linear(), MCTSConfig(root="gumble"))


def _linear():
    from tests.test_mcts import LinearEvaluator
    return LinearEvaluator()


@pytest.mark.slow
def test_gumbel_vs_puct_benchmark_prints_pentanomial_counts_and_elo(capsys):
    """The benchmark's real entry point on a tiny budget: two batch_player processes per visit count."""
    import json
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import gumbel_vs_puct
    assert gumbel_vs_puct.main(["--visits", "4", "--pairs", "2", "--pairs-at-once", "2", "--max-moves", "16"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    r = out["by_visits"]["4"]
    assert sum(r["pentanomial"]) == r["pairs"] == 2 and r["failures"] == 0
    assert r["elo_ci95"][0] <= r["elo"] <= r["elo_ci95"][1]


@pytest.mark.slow
@pytest.mark.parametrize("extra", [
    ["mcts.root=gumbel", "mcts.gumbel_m=4", "model.ownership_head=true", "model.score_head=true"],
    ["mcts.forced_playouts=true", "selfplay.full_search_prob=1.0"],
])
def test_micro_training_job_runs_with_the_new_options(tmp_path, extra):
    """The real entry point with Gumbel search and the auxiliary heads on (and forced playouts)."""
    import torch
    from experiments.rundir import read_summary
    from tests.test_train_job import job
    run = tmp_path / "run"
    p = job(run, *extra)
    assert p.returncode == 0, p.stdout + p.stderr
    assert read_summary(run)["status"] == "ok"
    ck = torch.load(run / "checkpoints/latest.pt", weights_only=False)
    heads = "model.ownership_head=true" in extra
    # a head that is off is left out of the checkpoint (older code still reads it): absent = off
    assert ck["model_config"].get("ownership_head", False) is heads
    assert ck["model_config"].get("score_head", False) is heads
    assert ("o_conv.weight" in ck["state_dict"]) is heads
    data = ck["replay"]["data"]
    assert data["ownership"].shape[1] == 25 and data["has_aux"].dtype == bool
