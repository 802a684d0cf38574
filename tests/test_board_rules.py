"""Tromp-Taylor rules on hand-drawn positions ('X' black, 'O' white, '.' empty).

Each case runs on the numba ``Board`` and on the plain-Python ``ReferenceBoard``.
"""
import numpy as np
import pytest

from go_core.game.board import BLACK, EMPTY, WHITE, Board, IllegalMoveError, pass_move
from go_core.game.coords import gtp_to_move
from go_core.game.reference_board import ReferenceBoard

IMPLS = [Board, ReferenceBoard]


def load(cls, text, to_play=BLACK, komi=0.0):
    return cls.from_ascii(text, komi=komi, to_play=to_play)


def play(board, *vertices):
    for v in vertices:
        board.play(gtp_to_move(v, board.size))


def at(board, vertex):
    return int(board.stones[gtp_to_move(vertex, board.size)])


@pytest.mark.parametrize("cls", IMPLS)
def test_capture_removes_stone_and_scores(cls):
    b = load(cls, """
        .....
        ..X..
        .XO..
        ..X..
        .....
    """)
    play(b, "D3")
    assert at(b, "C3") == EMPTY
    assert b.to_ascii() == load(cls, """
        .....
        ..X..
        .X.X.
        ..X..
        .....
    """).to_ascii()
    assert b.score() == 25.0  # every empty region reaches only black


def test_from_ascii_refuses_chain_without_liberty():
    with pytest.raises(ValueError, match="without a liberty"):
        Board.from_ascii("OX.\nX..\n...")


@pytest.mark.parametrize("cls", IMPLS)
def test_snapback(cls):
    b = load(cls, """
        ..OX
        OOOX
        XXXX
        ....
    """)
    play(b, "B4")        # black throws in: white's five stones are left with one liberty, A4
    play(b, "A4")        # white captures the single black stone ...
    assert at(b, "B4") == EMPTY and at(b, "A4") == WHITE
    play(b, "B4")        # ... and black takes back five
    assert b.to_ascii() == "\n".join([".X.X", "...X", "XXXX", "...."])


@pytest.mark.parametrize("cls", IMPLS)
def test_simple_ko_retake_refused_until_a_move_elsewhere(cls):
    b = load(cls, """
        .XO..
        XO.O.
        .XO..
        .....
        .....
    """)
    play(b, "C4")                        # black takes the ko
    assert at(b, "B4") == EMPTY
    assert not b.is_legal(gtp_to_move("B4", 5))
    assert not b.legal_mask()[gtp_to_move("B4", 5)]
    with pytest.raises(IllegalMoveError) as e:
        play(b, "B4")
    assert e.value.reason == "superko"
    play(b, "E1", "D1")                  # a ko threat and its answer change the position
    assert b.is_legal(gtp_to_move("B4", 5))
    play(b, "B4")
    assert at(b, "C4") == EMPTY


TRIPLE_KO = """
    .XO......
    XO.O.....
    .XO......
    .XO......
    X.XO.....
    .XO......
    .XO......
    XO.O.....
    .XO......
"""


@pytest.mark.parametrize("cls", IMPLS)
def test_triple_ko_cycle_refused_by_positional_superko(cls):
    """Three kos: six captures in turn would bring back the starting position. The sixth is
    no immediate ko retake (a simple ko rule allows it) but positional superko refuses it."""
    b = load(cls, TRIPLE_KO)
    start = b.to_ascii()
    play(b, "C8", "B5", "C2", "B8", "C5")   # five captures, each legal
    assert b.to_ascii() != start
    last = gtp_to_move("B2", 9)             # white's capture in the third ko
    assert not b.is_legal(last)
    assert not b.legal_mask()[last]
    with pytest.raises(IllegalMoveError) as e:
        b.play(last)
    assert e.value.reason == "superko"
    # from the same position in a game without that history, the capture is fine
    c = load(cls, b.to_ascii(), to_play=WHITE)
    assert c.is_legal(last)
    c.play(last)
    assert c.to_ascii() == start


@pytest.mark.parametrize("cls", IMPLS)
def test_multi_stone_suicide_removes_the_group(cls):
    b = load(cls, """
        XX.O.
        OOO..
        .....
        .....
        .....
    """)
    m = gtp_to_move("C5", 5)
    assert b.is_legal(m)
    b.play(m)
    assert b.to_ascii().splitlines()[0] == "...O."
    assert int(np.sum(b.stones == BLACK)) == 0
    assert b.to_play == WHITE


@pytest.mark.parametrize("cls", IMPLS)
def test_single_stone_suicide_refused_by_superko(cls):
    b = load(cls, """
        .O.
        O..
        ...
    """)
    m = gtp_to_move("A3", 3)
    assert not b.is_legal(m)
    assert not b.legal_mask()[m]
    with pytest.raises(IllegalMoveError) as e:
        b.play(m)
    assert e.value.reason == "superko"


SEKI = """
    .O.O.
    XOXO.
    XXXO.
    OOOO.
    .....
"""


@pytest.mark.parametrize("cls", IMPLS)
def test_seki_and_dame_points_count_for_nobody(cls):
    b = load(cls, SEKI, komi=0.5)
    # A5 and C5 are the seki's shared liberties: they reach both colours
    assert b.area() == (5, 18)
    assert b.score() == 5 - 18 - 0.5
    assert b.result() == "W+13.5"
    # black filling a shared liberty is legal (not suicide) but white then captures six
    play(b, "A5", "C5")
    assert int(np.sum(b.stones == BLACK)) == 0
    assert at(b, "C5") == WHITE


@pytest.mark.parametrize("cls", IMPLS)
def test_occupied_off_board_and_game_over(cls):
    b = cls(5, komi=7.0)
    play(b, "C3")
    for m, reason in [(gtp_to_move("C3", 5), "occupied"), (-7, "off board"), (26, "off board")]:
        assert not b.is_legal(m)
        with pytest.raises(IllegalMoveError) as e:
            b.play(m)
        assert e.value.reason == reason
    b.play(pass_move(5))
    assert b.passes == 1 and not b.is_over
    b.play(pass_move(5))
    assert b.is_over and b.passes == 2
    assert not b.legal_mask().any()
    with pytest.raises(IllegalMoveError) as e:
        b.play(pass_move(5))
    assert e.value.reason == "game over"
    assert b.score() == 25 - 7.0 and b.result() == "B+18" and b.winner() == BLACK
    assert b.history == [gtp_to_move("C3", 5), 25, 25]


@pytest.mark.parametrize("cls", IMPLS)
def test_pass_then_move_resets_pass_count(cls):
    b = cls(3)
    b.play(9)
    play(b, "B2")
    assert b.passes == 0 and not b.is_over and b.move_number == 2


@pytest.mark.parametrize("cls", IMPLS)
def test_resignation_result(cls):
    b = cls(9, komi=7.0)
    play(b, "E5")
    b.resign()                       # white to move resigns
    assert b.is_over and b.resigned == WHITE
    assert b.winner() == BLACK and b.result() == "B+R"
    c = cls(9)
    c.resign(BLACK)
    assert c.result() == "W+R" and c.winner() == WHITE
    with pytest.raises(IllegalMoveError):
        c.play(40)


def test_draw_result_and_empty_board_score():
    b = Board(5, komi=0.0)
    assert b.score() == 0.0 and b.result() == "0" and b.winner() == EMPTY


def test_copy_is_independent():
    b = Board(9)
    play(b, "E5", "E6")
    c = b.copy()
    play(c, "D5")
    assert b.move_number == 2 and c.move_number == 3
    assert at(b, "D5") == EMPTY and at(c, "D5") == BLACK
    assert b.history == c.history[:2]


def test_long_game_grows_the_superko_table():
    """Games longer than the initial capacity keep every position for superko: a 5x5 game of
    random non-pass moves (own eyes filled, so groups keep dying) against the reference."""
    from go_core.game import board_kernels as K
    rng = np.random.default_rng(3)
    b, ref = Board(5, komi=0.0), ReferenceBoard(5, komi=0.0)
    cap0 = int(b.state[K.H_CAP])
    for _ in range(300):
        mask = b.legal_mask()
        np.testing.assert_array_equal(mask, ref.legal_mask())
        points = np.flatnonzero(mask[:-1])
        m = int(rng.choice(points)) if points.size else 25
        b.play(m)
        ref.play(m)
        assert b.to_ascii() == ref.to_ascii()
        if b.is_over:
            break
    assert b.move_number > cap0 // 2 and int(b.state[K.H_CAP]) > cap0


def test_random_playout_reaches_the_end_without_filling_own_eyes():
    b = Board(9, komi=7.0)
    final = b.random_playout(np.random.default_rng(1))
    assert final.is_over and b.move_number == 0
    ref = ReferenceBoard(9, komi=7.0)
    for m in final.history:          # every move legal under the reference, none fills an own eye
        if m < 81:
            assert not ref.is_own_eye(m, ref.to_play)
        else:                        # a pass only when no other acceptable move existed
            assert not any(ref.is_legal(p) and not ref.is_own_eye(p, ref.to_play)
                           for p in range(81))
        ref.play(m)
    assert ref.to_ascii() == final.to_ascii() and ref.score() == final.score()


def test_random_playout_is_reproducible_from_a_seed():
    b = Board(7)
    assert b.random_playout(5).history == b.random_playout(5).history
    assert b.random_playout(5).history != b.random_playout(6).history


def test_kernels_are_callable_from_other_numba_code():
    """Other numba code (e.g. a rollout evaluator) can call the kernels on state arrays."""
    from numba import njit

    from go_core.game import board_kernels as K

    @njit
    def first_legal_then_score(st, komi):
        n2 = st[K.H_SIZE] * st[K.H_SIZE]
        for m in range(n2):
            if K.is_legal(st, m):
                K.play(st, m)
                break
        return K.score(st, komi)

    b = Board(5, komi=0.5)
    st = b.state.copy()
    assert first_legal_then_score(st, 0.5) == 24.5


def test_ascii_round_trip_and_last_move():
    b = Board.from_ascii("""
        X.O
        .X.
        O..
    """, to_play=WHITE)
    assert b.to_ascii() == "X.O\n.X.\nO.." and b.to_play == WHITE and b.last_move is None
    play(b, "C1")
    assert b.last_move == gtp_to_move("C1", 3)
    b.play(9)
    assert b.last_move == 9
