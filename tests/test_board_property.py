"""Random games through the numba engine and the plain-Python reference, compared move by move:
every position, player to move, pass count, end of game, legal set, refusal reason and score.
Also checks the engine's incremental chain bookkeeping against a from-scratch rebuild."""
import random

import numpy as np
import pytest

from go_core.game import board_kernels as K
from go_core.game.board import Board, IllegalMoveError
from go_core.game.reference_board import ReferenceBoard


def check_chains(board: Board) -> None:
    """The incremental chains (pseudo-liberty sums, sizes), empty list and hash equal a rebuild."""
    st = board.state
    fresh = Board(board.size)
    fresh.set_position(board.stones, board.to_play)
    rb = fresh.state
    P = K.padded_size(board.size)
    col = slice(K.HEADER, K.HEADER + P)
    np.testing.assert_array_equal(st[col], rb[col])
    assert st[K.H_HASH] == rb[K.H_HASH] and st[K.H_NEMPTY] == rb[K.H_NEMPTY]
    head = st[K.HEADER + P:K.HEADER + 2 * P]
    rhead = rb[K.HEADER + P:K.HEADER + 2 * P]
    for arr in (3, 4, 5, 6):  # GSIZE, PLIB, LSUM, LSQ, read through each stone's head
        a = st[K.HEADER + arr * P:K.HEADER + (arr + 1) * P]
        r = rb[K.HEADER + arr * P:K.HEADER + (arr + 1) * P]
        stones = np.flatnonzero((st[col] == 1) | (st[col] == 2))
        np.testing.assert_array_equal(a[head[stones]], r[rhead[stones]])
    empties = set(st[K.HEADER + 7 * P:K.HEADER + 7 * P + st[K.H_NEMPTY]].tolist())
    assert empties == set(np.flatnonzero(st[col] == 0).tolist())


def play_both(size: int, seed: int, max_moves: int, mask_every: int = 1) -> int:
    rng = random.Random(seed)
    b, ref = Board(size, komi=6.5), ReferenceBoard(size, komi=6.5)
    n2 = size * size
    superko_refusals = 0  # empty points refused (superko) plus refused attempts
    for t in range(max_moves):
        if t % mask_every == 0 or size <= 9:
            mask = b.legal_mask()
            np.testing.assert_array_equal(mask, ref.legal_mask(), err_msg=f"move {t}\n{ref.to_ascii()}")
            if not b.is_over:
                superko_refusals += int(np.sum((b.stones == 0) & ~mask[:-1]))
        if rng.random() < 0.15:
            m = rng.randrange(-1, n2 + 2)  # any attempt, often illegal (or a resignation)
            if m == -1 and rng.random() < 0.8:
                m = n2
        else:
            cands = [p for p in range(n2) if ref.is_legal(p) and not ref.is_own_eye(p, ref.to_play)]
            m = rng.choice(cands) if cands and rng.random() > 0.03 else n2
        assert b.is_legal(m) == ref.is_legal(m)
        err_b = err_r = None
        try:
            b.play(m)
        except IllegalMoveError as e:
            err_b = e.reason
        try:
            ref.play(m)
        except IllegalMoveError as e:
            err_r = e.reason
        assert err_b == err_r, f"move {m}: engine {err_b}, reference {err_r}\n{ref.to_ascii()}"
        superko_refusals += err_b == "superko"
        np.testing.assert_array_equal(b.stones, ref.stones)
        assert (b.to_play, b.passes, b.is_over, b.move_number, b.resigned) == \
               (ref.to_play, ref.passes, ref.is_over, ref.move_number, ref.resigned)
        assert b.score() == ref.score() and b.result() == ref.result()
        if t % 17 == 0:
            check_chains(b)
        if b.is_over:
            break
    assert b.history == ref.history
    check_chains(b)
    return superko_refusals


@pytest.mark.parametrize("size", [2, 3, 4, 5, 6, 7, 8, 9])
def test_random_games_agree_with_reference(size):
    refusals = sum(play_both(size, seed, max_moves=3 * size * size) for seed in range(3))
    if size <= 3:
        assert refusals > 0  # tiny boards run into superko all the time: the rule was exercised


def test_random_19x19_game_agrees_with_reference():
    play_both(19, seed=7, max_moves=700, mask_every=50)


@pytest.mark.slow
@pytest.mark.parametrize("size", [2, 3, 4, 5, 6, 7, 9, 13, 19])
def test_many_random_games_agree_with_reference(size):
    for seed in range(100, 100 + (40 if size <= 9 else 4)):
        play_both(size, seed, max_moves=3 * size * size, mask_every=1 if size <= 9 else 20)
