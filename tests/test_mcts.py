"""MCTS: tactics with a uniform prior, visit bookkeeping, batching, tree reuse, terminal scoring."""
import numpy as np
import pytest
import torch

from go_core.game.board import BLACK, WHITE, Board
from go_core.game.coords import gtp_to_move, move_to_gtp
from go_core.learn.evaluators import NetEvaluator, RolloutEvaluator, UniformEvaluator, masked_softmax
from go_core.learn.mcts import BatchedMCTS, search
from go_core.learn.mcts_config import MCTSConfig
from go_core.learn.puct_kernels import _puct_child
from go_core.learn.search_tree import Tree, select_child_reference, terminal_value
from go_core.learn.selfplay import SelfPlayConfig, plan_search, temperature_for_move
from go_core.learn.net import NetConfig, PolicyValueNet

# Black to play: the white chain C5-C6-D6 has one liberty, C4; only capturing it wins (komi 13.5).
CAPTURE_7x7 = """
    XXXXOO.
    XXOOXOO
    .XOXXXO
    OX..X.O
    .OXXOO.
    OOOXOO.
    .OXXO.O
"""
# White to play: the black chain B4..F4 has one liberty, F3; white captures it.
CAPTURE_WALL_7x7 = """
    .......
    .......
    .OOOOO.
    OXXXXXO
    .OOOO..
    .......
    .......
"""


class LinearEvaluator:
    """A deterministic stand-in for a net (fast on a loaded machine): prior and value are fixed
    random linear functions of the stones, seen from the player to move."""

    def __init__(self, seed=0, size=9):
        rng = np.random.default_rng(seed)
        n = size * size
        self.wp = rng.normal(size=(2 * n, n + 1))
        self.wv = rng.normal(size=2 * n) / np.sqrt(n)

    def evaluate(self, boards):
        x = np.stack([np.concatenate([b.stones == b.to_play, b.stones == 3 - b.to_play])
                      for b in boards]).astype(np.float64)
        legal = np.stack([b.legal_mask() for b in boards])
        return masked_softmax(x @ self.wp, legal), np.tanh(x @ self.wv).astype(np.float32)
# White to play: the white chain E4-D3-E3-D2-E2-D1 has one liberty, D4; playing there saves it
# (and the game, at komi -8.5); every other move lets black capture.
SAVE_7x7 = """
    O.O.XX.
    ...O.XO
    ....X.O
    .OO.OXO
    .OXOOX.
    XXXOOXX
    X.XOXXX
"""


def tiny_net_evaluator(seed=0, size=9):
    return LinearEvaluator(seed, size)


def test_net_evaluator_priors_and_values():
    torch.manual_seed(0)
    net = PolicyValueNet(NetConfig(blocks=1, channels=8, gpool_every=0, gpool_channels=4,
                                   policy_channels=4, value_channels=4, value_hidden=8)).eval()
    b = Board.from_ascii(CAPTURE_7x7, komi=13.5, to_play=BLACK)
    priors, values = NetEvaluator(net, "cpu", max_batch=1).evaluate([b, Board(7), b])
    legal = b.legal_mask()
    assert priors.shape == (3, 50) and values.shape == (3,)
    assert np.all((priors[0] > 0) == legal) and abs(priors[0].sum() - 1) < 1e-5
    np.testing.assert_allclose(priors[0], priors[2], rtol=1e-5)
    assert np.all(np.abs(values) <= 1)


def test_net_evaluator_follows_a_net_that_is_being_trained():
    from go_core.learn.features import encode
    torch.manual_seed(0)
    net = PolicyValueNet(NetConfig(blocks=1, channels=8, gpool_every=0, gpool_channels=4,
                                   policy_channels=4, value_channels=4, value_hidden=8))
    ev = NetEvaluator(net, "cpu")  # fused copy by default
    boards = [Board(7)]
    before, _ = ev.evaluate(boards)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    logits, values = net(encode(boards * 4))
    (logits.logsumexp(1).sum() + values.sum()).backward()
    opt.step()
    after, v_after = ev.evaluate(boards)
    assert net.training  # the evaluator left the training loop's mode alone
    assert np.abs(after - before).max() > 1e-3  # it saw the new weights
    net.eval()
    with torch.no_grad():
        logits, values = net(encode(boards))
    np.testing.assert_allclose(after[0], masked_softmax(logits.numpy(), boards[0].legal_mask()[None])[0],
                               atol=1e-5)
    np.testing.assert_allclose(v_after, values.numpy(), atol=1e-5)


def best(board, evaluator, sims, cfg=None, seed=0):
    tree = search(board, evaluator, sims, cfg or MCTSConfig(), rng=np.random.default_rng(seed))
    return move_to_gtp(tree.best_move(), board.size), tree


@pytest.mark.parametrize("seed", [0, 1])
def test_uniform_prior_search_finds_the_only_capture(seed):
    board = Board.from_ascii(CAPTURE_7x7, komi=13.5, to_play=BLACK)
    move, tree = best(board, RolloutEvaluator(rollouts=4, seed=seed), 300)
    assert move == "C4", tree.child_stats()[:4]
    board = Board.from_ascii(CAPTURE_WALL_7x7, komi=0.5, to_play=WHITE)
    move, tree = best(board, RolloutEvaluator(rollouts=4, seed=seed), 300)
    assert move == "F3", tree.child_stats()[:4]


@pytest.mark.parametrize("seed", [0, 1])
def test_uniform_prior_search_finds_the_only_saving_move(seed):
    board = Board.from_ascii(SAVE_7x7, komi=-8.5, to_play=WHITE)
    move, tree = best(board, RolloutEvaluator(rollouts=4, seed=seed), 400)
    assert move == "D4", tree.child_stats()[:4]


def test_visit_counts_sum_to_simulations_and_target_is_normalized():
    board = Board(9)
    for sims, leaves in ((1, 8), (2, 1), (57, 8), (200, 16)):
        cfg = MCTSConfig(leaves_per_game=leaves)
        tree = search(board, tiny_net_evaluator(), sims, cfg)
        counts = tree.visit_counts()
        assert tree.root_visits == sims
        assert counts.sum() == sims - 1  # the root's own evaluation is the first simulation
        if sims > 1:
            target = tree.policy_target()
            assert target.shape == (82,) and target.dtype == np.float32
            assert abs(target.sum() - 1) < 1e-6 and np.all(target >= 0)
            np.testing.assert_allclose(target, counts / counts.sum(), rtol=1e-6)
        assert np.all(tree.VL == 0)  # virtual losses all undone


def test_numba_selection_matches_the_reference():
    board = Board(7)
    cfg = MCTSConfig(fpu_reduction=0.3, fpu_reduction_root=0.1)
    tree = search(board, tiny_net_evaluator(3, size=7), 150, cfg)
    checked = 0
    for node in range(tree.next_free):
        if tree.state[node] == 2:  # expanded
            root = node == tree.root
            fr = cfg.fpu_reduction_root if root else cfg.fpu_reduction
            got = _puct_child(node, tree.cstart, tree.nch, tree.N, tree.W, tree.P, tree.VL,
                              cfg.c_puct, cfg.c_puct_base, fr, cfg.virtual_loss)
            assert got == select_child_reference(tree, node, cfg, root=root)
            checked += 1
    assert checked > 20


def test_batched_search_over_many_games_equals_single_searches():
    boards = [Board(9)]
    for moves in (["E5", "C3"], ["D4"], ["E5", "pass", "G7"]):
        b = Board(9)
        for m in moves:
            b.play(gtp_to_move(m, 9))
        boards.append(b)
    cfg = MCTSConfig(leaves_per_game=1)  # one leaf per round: batching must not change anything
    ev = tiny_net_evaluator(1)
    singles = [search(b, ev, 60, cfg).visit_counts() for b in boards]
    trees = [Tree(b, cfg) for b in boards]
    searcher = BatchedMCTS(ev, cfg)
    searcher.search_many(trees, 60)
    for t, single in zip(trees, singles):
        np.testing.assert_array_equal(t.visit_counts(), single)
    assert searcher.rounds <= 60  # one evaluator call per round for all games (none when all leaves are terminal)
    # several leaves per game under virtual loss: the same budget, fewer evaluator calls
    cfg8 = MCTSConfig(leaves_per_game=8)
    trees = [Tree(b, cfg8) for b in boards]
    searcher = BatchedMCTS(ev, cfg8)
    searcher.search_many(trees, [60, 30, 20, 10])
    assert [t.visit_counts().sum() for t in trees] == [59, 29, 19, 9]
    assert searcher.rounds < 15


def test_small_searches_keep_enough_rounds():
    """Virtual loss spreads a round's leaves over the root's children: a 16-visit search must not
    be gathered in 2 rounds of 8 (a one-ply sample); leaves per round are capped at sims/min_rounds."""
    ev = UniformEvaluator()
    for sims, min_rounds, expect in ((16, 8, 1 + 15 // 2 + 1), (16, 1, 1 + 2), (64, 8, 1 + 63 // 8 + 1)):
        cfg = MCTSConfig(leaves_per_game=8, min_rounds=min_rounds)
        searcher = BatchedMCTS(ev, cfg)
        tree = Tree(Board(9), cfg)
        searcher.search_many([tree], sims)
        assert tree.visit_counts().sum() == sims - 1
        assert searcher.rounds == expect, (sims, min_rounds, searcher.rounds)


def test_batched_search_with_virtual_loss_still_finds_the_capture():
    cfg = MCTSConfig(leaves_per_game=8)
    boards = [Board.from_ascii(CAPTURE_7x7, komi=13.5, to_play=BLACK) for _ in range(3)]
    trees = [Tree(b, cfg) for b in boards]
    BatchedMCTS(RolloutEvaluator(rollouts=4, seed=5), cfg).search_many(trees, 300)
    assert [move_to_gtp(t.best_move(), 7) for t in trees] == ["C4"] * 3


def test_tree_reuse_keeps_the_subtree_visits():
    cfg = MCTSConfig()
    ev = tiny_net_evaluator(2)
    tree = search(Board(9), ev, 200, cfg)
    move = tree.best_move()
    kid = next(c for c in tree.children() if tree.move[c] == move)
    n_kid, w_kid = int(tree.N[kid]), float(tree.W[kid])
    grandchildren = {int(tree.move[c]): int(tree.N[c])
                     for c in range(tree.cstart[kid], tree.cstart[kid] + tree.nch[kid])}
    tree.advance(move)
    assert tree.root_visits == n_kid and tree.board.history == [move]
    assert abs(-tree.root_value() - w_kid / n_kid) < 1e-9  # the same stats, seen from the mover
    assert {m: n for m, n in enumerate(tree.visit_counts()) if n} == \
        {m: n for m, n in grandchildren.items() if n}
    BatchedMCTS(ev, cfg).search(tree, 50)
    assert tree.root_visits == n_kid + 50
    # a move the tree never searched: a fresh tree on the right position
    unvisited = next(int(tree.move[c]) for c in tree.children() if tree.N[c] == 0)
    tree.advance(unvisited)
    assert tree.root_visits == 0 and tree.board.history == [move, unvisited]
    # reuse switched off: always fresh
    t2 = search(Board(9), ev, 50, MCTSConfig())
    t2.advance(t2.best_move(), keep_subtree=False)
    assert t2.root_visits == 0


def test_terminal_positions_are_scored_by_the_rules_not_the_evaluator():
    # Black owns the left part, white the right; white has just passed.
    position = """
        .X.O.
        XX.OO
        .X.O.
        XX.OO
        .X.O.
    """
    for komi, black_wins in ((-0.5, True), (0.5, False)):
        board = Board.from_ascii(position, komi=komi, to_play=WHITE)
        board.play(25)  # white passes; a black pass now ends the game
        tree = search(board, UniformEvaluator(), 100)
        pass_kid = next(c for c in tree.children() if tree.move[c] == 25)
        assert tree.state[pass_kid] == 3  # terminal
        ended = board.copy()
        ended.play(25)
        # the value is for the player to move after the game ended: white
        assert tree.tval[pass_kid] == terminal_value(ended) == (-1.0 if black_wins else 1.0)
        q_pass = tree.W[pass_kid] / tree.N[pass_kid]  # for black, who passed
        assert q_pass == (1.0 if black_wins else -1.0)
        if black_wins:  # the evaluator says 0 everywhere; only the rules make pass best
            assert tree.best_move() == 25
    done = Board(5)
    done.play(25)
    done.play(25)
    with pytest.raises(ValueError, match="finished game"):
        search(done, UniformEvaluator(), 10)


def test_root_noise_playout_caps_and_temperature():
    rng = np.random.default_rng(0)
    cfg = MCTSConfig()
    sp = SelfPlayConfig(full_search_prob=0.25, visits=64, cheap_visits=16)
    searcher = BatchedMCTS(UniformEvaluator(), cfg, rng)
    plans = [plan_search(sp, cfg, rng) for _ in range(400)]
    full = [p for p in plans if p.full]
    assert 60 < len(full) < 140
    assert all(p.simulations == 64 and p.noise for p in full)
    assert all(p.simulations == 16 and not p.noise for p in plans if not p.full)

    tree = Tree(Board(9), cfg)
    searcher.search(tree, 32, noise=True)
    kids = tree.children()
    noisy = tree.P[kids.start:kids.stop].copy()
    assert abs(noisy.sum() - 1) < 1e-5 and not np.allclose(noisy, 1 / 82)
    tree.clear_noise()
    np.testing.assert_allclose(tree.P[kids.start:kids.stop], 1 / 82, rtol=1e-5)

    assert temperature_for_move(0, sp) == sp.temperature
    assert temperature_for_move(sp.temperature_moves, sp) == sp.temperature_final
    counts = tree.visit_counts()
    assert tree.pick_move(0.0) == tree.best_move() and counts[tree.best_move()] == counts.max()
    picks = [tree.pick_move(1.0, rng) for _ in range(300)]
    assert all(counts[m] > 0 for m in picks) and len(set(picks)) > 3
