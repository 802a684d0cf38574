"""Numba kernels of the Tromp-Taylor rules engine, on one flat int64 array per board.

Other numba code may call these directly (they are ``@njit`` functions of plain arrays);
``go_core.game.board.Board`` is a thin Python wrapper around them.

State layout (one ``np.int64`` array ``st`` per board). The board is padded by one ring of
``BORDER`` points: with ``W = size + 2`` the point ``m = row * size + col`` lives at the padded
index ``p = (row + 1) * W + col + 1``, so the four neighbours of ``p`` are ``p - W, p - 1,
p + 1, p + W`` with no bounds checks. ``P = W * W``.

    st[0:HEADER]           header, the H_* slots below
    st[OFF_COLOR + p]      EMPTY / BLACK / WHITE / BORDER at padded point p
    st[OFF_HEAD + p]       the chain's head (representative) for a stone at p
    st[OFF_NEXT + p]       the next stone of p's chain (a circular linked list)
    st[OFF_GSIZE + g]      stones in the chain whose head is g
    st[OFF_PLIB + g]       pseudo-liberties of chain g: (stone, empty neighbour) pairs;
                           a chain is captured exactly when this is 0
    st[OFF_LSUM + g]       sum of the empty neighbours' indices over those pairs
    st[OFF_LSQ + g]        sum of their squares; the chain has exactly one liberty (atari)
                           iff PLIB > 0 and LSUM**2 == PLIB * LSQ (all pairs name one point)
    st[OFF_ELIST + i]      the empty points (padded), i < st[H_NEMPTY], in no order
    st[OFF_EPOS + p]       where empty point p sits in ELIST
    st[off_moves + k]      the k-th move played as a padded point (PASS_SLOT = 0 for a pass),
                           k < H_MOVE_NUMBER; ``history_moves`` gives them as move numbers
    st[off_table + j]      open-addressing hash set (linear probing) of the Zobrist hashes of
                           every position of the game so far (positional superko); 0 = free slot

with ``OFF_X = HEADER + i * P`` for the i-th per-point array in the order above,
``off_moves = HEADER + N_POINT_ARRAYS * P`` and
``off_table = off_moves + cap``, where ``cap = st[H_CAP]`` is a power of two. The table must
stay at most half full: callers grow the state (``grow_state``) before
``move_number + 2 > cap // 2`` (``Board`` does). A plain placement (no capture, no
suicide) that makes more stones than any earlier position had cannot repeat one, so superko
needs no table look-up then (``H_MAXSTONES``).

Kernels (all take the state first): ``is_legal(st, m)``, ``move_status(st, m)`` (OK or why
not), ``play(st, m)`` (checked), ``apply_move(st, m)`` / ``place(st, p)`` / ``play_pass(st)``
(unchecked), ``legal_mask(st, out)``, ``legal_point(st, p, colour)``, ``is_own_eye(st, p,
colour)``, ``area_counts(st)``, ``score(st, komi)``, ``stones(st, out)``,
``history_moves(st, out)``, ``set_position(st, colours, to_play)``, ``resign(st, colour)``,
``random_playout(st, seed, max_moves)``, ``playout_benchmark(st0, n, seed, max_moves, komi)``.
Python helpers: ``new_state``,
``grow_state``, ``state_length``, ``default_cap``.

Zobrist hashes cover stones only (positional superko; the player to move is not part of a
position). A single-stone suicide recreates the position before it and is therefore refused
by superko; a multi-stone suicide removes the group (Tromp-Taylor) and is legal unless the
resulting position repeated.
"""
from __future__ import annotations

import numpy as np
from numba import njit as _numba_njit

# Array indices in the kernels go through _U (unsigned): numba then skips the negative-index
# wrap-around arithmetic on every access (about a quarter faster playouts). Every index here
# is non-negative by construction.
_U = np.uint64


def njit(*args, **kw):
    """numba.njit with the on-disk cache and numpy's error model (no zero-division branches)."""
    kw.setdefault("cache", True)
    kw.setdefault("error_model", "numpy")
    return _numba_njit(*args, **kw)

from go_core.game.coords import BLACK, EMPTY, MAX_SIZE, WHITE  # noqa: E402,F401 (constants the kernels compile in)

BORDER = 3                      # the padding ring around the board in the kernels' arrays

# header slots
H_SIZE = 0          # board size N
H_TO_PLAY = 1       # BLACK or WHITE
H_PASSES = 2        # consecutive passes
H_MOVE_NUMBER = 3   # moves played, passes included
H_RESIGNED = 4      # 0, or the colour that resigned
H_OVER = 5          # 1 once two consecutive passes or a resignation happened
H_HASH = 6          # Zobrist hash of the current position
H_NHIST = 7         # positions stored in the superko table
H_CAP = 8           # capacity of the moves list and of the table (a power of two)
H_NEMPTY = 9        # empty points (length of ELIST)
H_LAST = 10         # last move as a padded point, PASS_SLOT for a pass, -1 before the first
H_MAXSTONES = 11    # most stones on the board in any position of the game so far
HEADER = 16
PASS_SLOT = 0       # a pass in the moves list (padded point 0 is a border corner, never a move)

N_POINT_ARRAYS = 9
OFF_COLOR = HEADER  # P does not depend on a slot: the other offsets are computed per size


# Play status codes returned by the kernels.
OK, ILLEGAL_OCCUPIED, ILLEGAL_SUPERKO, ILLEGAL_OVER, ILLEGAL_OFF_BOARD = 0, 1, 2, 3, 4
STATUS_REASONS = {ILLEGAL_OCCUPIED: "occupied", ILLEGAL_SUPERKO: "superko",
                  ILLEGAL_OVER: "game over", ILLEGAL_OFF_BOARD: "off board"}

_PMAX = (MAX_SIZE + 2) ** 2
_zrng = np.random.default_rng(0x7E46E1)
PMAX = _PMAX
# ZOBRIST[_U(colour * PMAX + p)]: the hash term of a ``colour`` stone on padded point p
ZOBRIST = np.zeros(4 * _PMAX, dtype=np.int64)
ZOBRIST[_PMAX:3 * _PMAX] = _zrng.integers(-(2 ** 63), 2 ** 63 - 1, size=2 * _PMAX, dtype=np.int64)
_ZERO_KEY = np.int64(0x1F3D5B79A2C4E6F1)  # stands in for hash 0 (the empty board) in the table


def padded_size(size: int) -> int:
    """P, the number of padded points of a ``size`` board."""
    return (size + 2) * (size + 2)


def state_length(size: int, cap: int) -> int:
    """Length of the state array of a ``size`` board whose move list and table hold ``cap``."""
    return HEADER + N_POINT_ARRAYS * padded_size(size) + 2 * cap


def default_cap(size: int, moves: int = 0) -> int:
    """Smallest power-of-two capacity keeping the table at most half full for ``moves`` moves,
    and at least room for size * size moves (states grow when a game runs longer)."""
    need = 2 * max(moves + 2, size * size)
    cap = 64
    while cap < need:
        cap *= 2
    return cap


@njit(inline="always")
def _offsets(st):
    N = st[H_SIZE]
    W = N + 2
    P = W * W
    return N, W, P


@njit(inline="always")
def _table_insert(st, off_table, mask, key):
    """Add ``key``; return the slot it took, or -1 if it was there already."""
    if key == 0:
        key = _ZERO_KEY
    i = key & mask
    while True:
        v = st[_U(off_table + i)]
        if v == key:
            return -1
        if v == 0:
            st[_U(off_table + i)] = key
            st[H_NHIST] += 1
            return i
        i = (i + 1) & mask


@njit(inline="always")
def _table_contains(st, off_table, mask, key):
    if key == 0:
        key = _ZERO_KEY
    i = key & mask
    while True:
        v = st[_U(off_table + i)]
        if v == key:
            return True
        if v == 0:
            return False
        i = (i + 1) & mask


@njit
def init_state(st, size, cap):
    """Fill ``st`` (length ``state_length(size, cap)``) with the empty board, black to play."""
    st[:] = 0
    W = size + 2
    P = W * W
    st[H_SIZE] = size
    st[H_TO_PLAY] = BLACK
    st[H_CAP] = cap
    st[H_LAST] = -1
    oc = HEADER
    oel = HEADER + 7 * P
    oep = HEADER + 8 * P
    n = 0
    for p in range(P):
        r = p // W
        c = p % W
        if r == 0 or c == 0 or r == W - 1 or c == W - 1:
            st[_U(oc + p)] = BORDER
            st[_U(oep + p)] = -1
        else:
            st[_U(oc + p)] = EMPTY
            st[_U(oel + n)] = p
            st[_U(oep + p)] = n
            n += 1
    st[H_NEMPTY] = n
    st[H_HASH] = 0
    off_table = HEADER + N_POINT_ARRAYS * P + cap
    _table_insert(st, off_table, cap - 1, np.int64(0))


def new_state(size: int, cap: int | None = None) -> np.ndarray:
    """A fresh state array: the empty ``size`` board, black to play."""
    if not 2 <= size <= MAX_SIZE:
        raise ValueError(f"unacceptable board size {size}: this engine plays 2x2 to "
                         f"{MAX_SIZE}x{MAX_SIZE}")
    cap = default_cap(size) if cap is None else cap
    st = np.empty(state_length(size, cap), dtype=np.int64)
    init_state(st, size, cap)
    return st


@njit(inline="always")
def to_padded(m, N):
    """Padded index of board point ``m`` (0 <= m < N*N)."""
    return (m // N + 1) * (N + 2) + (m % N) + 1


@njit(inline="always")
def to_move(p, N):
    """Board point ``m`` of padded index ``p``."""
    W = N + 2
    return (p // W - 1) * N + (p % W - 1)


@njit
def _chain_hash(st, g, colour, P):
    on = HEADER + 2 * P
    x = np.int64(0)
    s = g
    while True:
        x ^= ZOBRIST[_U(colour * _PMAX + s)]
        s = st[_U(on + s)]
        if s == g:
            break
    return x


@njit(inline="always")
def legal_point(st, p, c):
    """Would placing colour ``c`` on the empty padded point ``p`` be legal (positional superko)?

    Does not look at H_OVER or whether ``p`` is empty; ``is_legal`` does.
    """
    N, W, P = _offsets(st)
    oc = HEADER
    o = 3 - c
    # fast path: an empty neighbour and no enemy one, so no capture and no suicide
    b = oc + p
    c1 = st[_U(b - W)]
    c2 = st[_U(b - 1)]
    c3 = st[_U(b + 1)]
    c4 = st[_U(b + W)]
    if (c1 != o and c2 != o and c3 != o and c4 != o
            and (c1 == EMPTY or c2 == EMPTY or c3 == EMPTY or c4 == EMPTY)):
        if N * N - st[H_NEMPTY] + 1 > st[H_MAXSTONES]:
            return True
        cap = st[H_CAP]
        return not _table_contains(st, HEADER + N_POINT_ARRAYS * P + cap, cap - 1,
                                   st[H_HASH] ^ ZOBRIST[_U(c * _PMAX + p)])
    oh = HEADER + P
    opl = HEADER + 4 * P
    ols = HEADER + 5 * P
    olq = HEADER + 6 * P
    has_lib = False
    captured = False
    own_safe = False
    cap_h = np.int64(0)
    sui_h = np.int64(0)
    s0 = -1
    s1 = -1
    s2 = -1
    nown = 0
    for d in (-W, -1, 1, W):
        q = p + d
        cq = st[_U(oc + q)]
        if cq == EMPTY:
            has_lib = True
        elif cq != BORDER:
            g = st[_U(oh + q)]
            if g == s0 or g == s1 or g == s2:
                continue
            if s0 == -1:
                s0 = g
            elif s1 == -1:
                s1 = g
            else:
                s2 = g
            pl = st[_U(opl + g)]
            ls = st[_U(ols + g)]
            atari = ls * ls == pl * st[_U(olq + g)]  # p is a liberty, so pl > 0
            if cq == o:
                if atari:
                    captured = True
                    cap_h ^= _chain_hash(st, g, o, P)
            else:
                nown += 1
                if atari:
                    sui_h ^= _chain_hash(st, g, c, P)
                else:
                    own_safe = True
    h = st[H_HASH]
    if captured:
        newh = h ^ ZOBRIST[_U(c * _PMAX + p)] ^ cap_h
    elif has_lib or own_safe:
        # a plain placement: a position with more stones than any before cannot repeat
        if N * N - st[H_NEMPTY] + 1 > st[H_MAXSTONES]:
            return True
        newh = h ^ ZOBRIST[_U(c * _PMAX + p)]
    else:
        if nown == 0:
            return False  # single-stone suicide: the position stays as it is, a repeat
        newh = h ^ sui_h
    cap = st[H_CAP]
    off_table = HEADER + N_POINT_ARRAYS * P + cap
    return not _table_contains(st, off_table, cap - 1, newh)


@njit
def is_legal(st, m):
    """Is move ``m`` (a point, or ``N*N`` for pass) legal for the player to move?"""
    return move_status(st, m) == OK


@njit
def move_status(st, m):
    """OK or the ILLEGAL_* code saying why move ``m`` may not be played now."""
    N = st[H_SIZE]
    if st[H_OVER] != 0:
        return ILLEGAL_OVER
    if m == N * N:
        return OK
    if m < 0 or m > N * N:
        return ILLEGAL_OFF_BOARD
    p = to_padded(m, N)
    if st[_U(HEADER + p)] != EMPTY:
        return ILLEGAL_OCCUPIED
    if not legal_point(st, p, st[H_TO_PLAY]):
        return ILLEGAL_SUPERKO
    return OK


@njit
def _remove_chain(st, g, colour, P, W):
    """Take chain g off the board; give its points back as liberties; return its hash."""
    oc = HEADER
    oh = HEADER + P
    on = HEADER + 2 * P
    opl = HEADER + 4 * P
    ols = HEADER + 5 * P
    olq = HEADER + 6 * P
    oel = HEADER + 7 * P
    oep = HEADER + 8 * P
    x = np.int64(0)
    ne = st[H_NEMPTY]
    s = g
    while True:
        x ^= ZOBRIST[_U(colour * _PMAX + s)]
        st[_U(oc + s)] = EMPTY
        st[_U(oel + ne)] = s
        st[_U(oep + s)] = ne
        ne += 1
        s = st[_U(on + s)]
        if s == g:
            break
    st[H_NEMPTY] = ne
    s = g
    while True:
        for d in (-W, -1, 1, W):
            t = s + d
            ct = st[_U(oc + t)]
            if ct == BLACK or ct == WHITE:
                gt = st[_U(oh + t)]
                st[_U(opl + gt)] += 1
                st[_U(ols + gt)] += s
                st[_U(olq + gt)] += s * s
        s = st[_U(on + s)]
        if s == g:
            break
    return x


@njit
def apply_move(st, m):
    """Play move ``m`` (a point or a pass) for the player to move, WITHOUT a legality check."""
    N = st[H_SIZE]
    if m == N * N:
        play_pass(st)
    else:
        place(st, to_padded(m, N))


@njit
def play_pass(st):
    """The player to move passes; two passes in a row end the game."""
    P = (st[H_SIZE] + 2) * (st[H_SIZE] + 2)
    st[HEADER + N_POINT_ARRAYS * P + st[H_MOVE_NUMBER]] = PASS_SLOT
    st[H_MOVE_NUMBER] += 1
    st[H_LAST] = PASS_SLOT
    st[H_TO_PLAY] = 3 - st[H_TO_PLAY]
    st[H_PASSES] += 1
    if st[H_PASSES] >= 2:
        st[H_OVER] = 1


@njit(inline="always")
def place(st, p):
    """The player to move puts a stone on the empty padded point ``p``, WITHOUT a legality
    check: captures, then removes its own chain if it has no liberty (suicide). Returns the
    superko-table slot the new position took (-1 if it was there already)."""
    N, W, P = _offsets(st)
    cap = st[H_CAP]
    off_moves = HEADER + N_POINT_ARRAYS * P
    st[off_moves + st[H_MOVE_NUMBER]] = p
    st[H_MOVE_NUMBER] += 1
    st[H_LAST] = p
    c = st[H_TO_PLAY]
    o = 3 - c
    st[H_TO_PLAY] = o
    st[H_PASSES] = 0
    oc = HEADER
    oh = HEADER + P
    on = HEADER + 2 * P
    osz = HEADER + 3 * P
    opl = HEADER + 4 * P
    ols = HEADER + 5 * P
    olq = HEADER + 6 * P
    oel = HEADER + 7 * P
    oep = HEADER + 8 * P
    # take p off the empty list
    ne = st[H_NEMPTY] - 1
    i = st[_U(oep + p)]
    last = st[_U(oel + ne)]
    st[_U(oel + i)] = last
    st[_U(oep + last)] = i
    st[_U(oep + p)] = -1
    st[H_NEMPTY] = ne
    # place the stone as its own chain, then visit the neighbours once: liberties of the new
    # stone, one pair less for each neighbouring chain, merges with friendly chains (the larger
    # absorbs the smaller), and enemy chains whose last liberty this was
    st[_U(oc + p)] = c
    st[_U(oh + p)] = p
    st[_U(on + p)] = p
    st[_U(osz + p)] = 1
    st[_U(opl + p)] = 0
    st[_U(ols + p)] = 0
    st[_U(olq + p)] = 0
    pl = 0
    ls = 0
    lq = 0
    gp = p
    cap0 = -1
    cap1 = -1
    cap2 = -1
    cap3 = -1
    for d in (-W, -1, 1, W):
        q = p + d
        cq = st[_U(oc + q)]
        if cq == EMPTY:
            pl += 1
            ls += q
            lq += q * q
        elif cq == o:
            g = st[_U(oh + q)]
            v = st[_U(opl + g)] - 1
            st[_U(opl + g)] = v
            st[_U(ols + g)] -= p
            st[_U(olq + g)] -= p * p
            if v == 0:
                if cap0 == -1:
                    cap0 = g
                elif cap1 == -1:
                    cap1 = g
                elif cap2 == -1:
                    cap2 = g
                else:
                    cap3 = g
        elif cq == c:
            a = st[_U(oh + q)]
            st[_U(opl + a)] -= 1
            st[_U(ols + a)] -= p
            st[_U(olq + a)] -= p * p
            if a != gp:
                b = gp
                if st[_U(osz + a)] < st[_U(osz + b)]:
                    a, b = b, a
                # chain b joins chain a
                s = b
                while True:
                    st[_U(oh + s)] = a
                    s = st[_U(on + s)]
                    if s == b:
                        break
                tmp = st[_U(on + a)]
                st[_U(on + a)] = st[_U(on + b)]
                st[_U(on + b)] = tmp
                st[_U(osz + a)] += st[_U(osz + b)]
                st[_U(opl + a)] += st[_U(opl + b)]
                st[_U(ols + a)] += st[_U(ols + b)]
                st[_U(olq + a)] += st[_U(olq + b)]
                gp = a
    st[_U(opl + gp)] += pl
    st[_U(ols + gp)] += ls
    st[_U(olq + gp)] += lq
    h = st[H_HASH] ^ ZOBRIST[_U(c * _PMAX + p)]
    if cap0 != -1:
        h ^= _remove_chain(st, cap0, o, P, W)
        if cap1 != -1:
            h ^= _remove_chain(st, cap1, o, P, W)
            if cap2 != -1:
                h ^= _remove_chain(st, cap2, o, P, W)
                if cap3 != -1:
                    h ^= _remove_chain(st, cap3, o, P, W)
    elif st[_U(opl + gp)] == 0:
        # suicide (legal in Tromp-Taylor): the chain is removed
        h ^= _remove_chain(st, gp, c, P, W)
    st[H_HASH] = h
    nst = N * N - st[H_NEMPTY]
    if nst > st[H_MAXSTONES]:
        st[H_MAXSTONES] = nst
    off_table = off_moves + cap
    return _table_insert(st, off_table, cap - 1, h)


@njit
def play(st, m):
    """Check then play move ``m``; return OK or an ILLEGAL_* code (the state is then unchanged)."""
    s = move_status(st, m)
    if s == OK:
        apply_move(st, m)
    return s


@njit
def history_moves(st, out):
    """Fill ``out`` (length H_MOVE_NUMBER) with the moves played, as move numbers."""
    N, W, P = _offsets(st)
    off_moves = HEADER + N_POINT_ARRAYS * P
    for k in range(st[H_MOVE_NUMBER]):
        p = st[_U(off_moves + k)]
        out[_U(k)] = N * N if p == PASS_SLOT else to_move(p, N)


@njit
def resign(st, colour):
    """``colour`` resigns: the game is over."""
    st[H_RESIGNED] = colour
    st[H_OVER] = 1


@njit
def legal_mask(st, out):
    """Fill the bool array ``out`` (N*N + 1) with the legal moves; pass is legal until the end."""
    N, W, P = _offsets(st)
    out[:] = False
    if st[H_OVER] != 0:
        return
    out[_U(N * N)] = True
    c = st[H_TO_PLAY]
    oel = HEADER + 7 * P
    for i in range(st[H_NEMPTY]):
        p = st[_U(oel + i)]
        if legal_point(st, p, c):
            out[_U(to_move(p, N))] = True


@njit(inline="always")
def is_own_eye(st, p, c):
    """Is the empty padded point ``p`` a single-point eye of ``c``: every on-board orthogonal
    neighbour a stone of ``c``? (The random player's "do not fill your own eye" rule.)"""
    W = st[H_SIZE] + 2
    b = HEADER + p
    o = 3 - c
    c1 = st[_U(b - W)]
    c2 = st[_U(b - 1)]
    c3 = st[_U(b + 1)]
    c4 = st[_U(b + W)]
    # own stone or border <=> neither empty nor the opponent's
    return (c1 != EMPTY and c1 != o and c2 != EMPTY and c2 != o
            and c3 != EMPTY and c3 != o and c4 != EMPTY and c4 != o)


@njit
def area_counts(st):
    """Tromp-Taylor area (black, white): stones plus empty regions reaching only that colour."""
    N, W, P = _offsets(st)
    oc = HEADER
    seen = np.zeros(P, dtype=np.uint8)
    stack = np.empty(P, dtype=np.int64)
    b = 0
    w = 0
    for r in range(1, N + 1):
        for col in range(1, N + 1):
            p = r * W + col
            cp = st[_U(oc + p)]
            if cp == BLACK:
                b += 1
            elif cp == WHITE:
                w += 1
            elif seen[_U(p)] == 0:
                seen[_U(p)] = 1
                n = 0
                stack[_U(0)] = p
                top = 1
                reach_b = False
                reach_w = False
                while top > 0:
                    top -= 1
                    s = stack[_U(top)]
                    n += 1
                    for d in (-W, -1, 1, W):
                        t = s + d
                        ct = st[_U(oc + t)]
                        if ct == EMPTY:
                            if seen[_U(t)] == 0:
                                seen[_U(t)] = 1
                                stack[_U(top)] = t
                                top += 1
                        elif ct == BLACK:
                            reach_b = True
                        elif ct == WHITE:
                            reach_w = True
                if reach_b and not reach_w:
                    b += n
                elif reach_w and not reach_b:
                    w += n
    return b, w


@njit
def score(st, komi):
    """Tromp-Taylor score: black area - white area - komi."""
    b, w = area_counts(st)
    return b - w - komi


@njit
def stones(st, out):
    """Copy the colours of the N*N board points (row-major, row 0 on top) into ``out``."""
    N, W, P = _offsets(st)
    k = 0
    for r in range(1, N + 1):
        base = HEADER + r * W
        for col in range(1, N + 1):
            out[_U(k)] = st[_U(base + col)]
            k += 1


@njit
def set_position(st, colours, to_play):
    """Reset ``st`` (already sized) to the position ``colours`` (N*N of EMPTY/BLACK/WHITE), the
    game's only position so far, ``to_play`` to move. Return the number of points in chains
    without a liberty (such a position cannot arise in play; callers refuse it)."""
    N, W, P = _offsets(st)
    cap = st[H_CAP]
    init_state(st, N, cap)
    oc = HEADER
    oh = HEADER + P
    on = HEADER + 2 * P
    osz = HEADER + 3 * P
    opl = HEADER + 4 * P
    ols = HEADER + 5 * P
    olq = HEADER + 6 * P
    oel = HEADER + 7 * P
    oep = HEADER + 8 * P
    h = np.int64(0)
    for m in range(N * N):
        p = to_padded(m, N)
        st[_U(oc + p)] = colours[_U(m)]
        if colours[_U(m)] != EMPTY:
            h ^= ZOBRIST[colours[_U(m)] * _PMAX + p]
    # empty list
    ne = 0
    for m in range(N * N):
        p = to_padded(m, N)
        if st[_U(oc + p)] == EMPTY:
            st[_U(oel + ne)] = p
            st[_U(oep + p)] = ne
            ne += 1
        else:
            st[_U(oep + p)] = -1
    st[H_NEMPTY] = ne
    # chains by flood fill
    done = np.zeros(P, dtype=np.uint8)
    stack = np.empty(P, dtype=np.int64)
    dead = 0
    for m in range(N * N):
        p = to_padded(m, N)
        c = st[_U(oc + p)]
        if c == EMPTY or done[p]:
            continue
        done[p] = 1
        stack[_U(0)] = p
        top = 1
        prev = p
        n = 0
        pl = 0
        ls = 0
        lq = 0
        while top > 0:
            top -= 1
            s = stack[_U(top)]
            st[_U(oh + s)] = p
            if n > 0:
                st[_U(on + prev)] = s
            prev = s
            n += 1
            for d in (-W, -1, 1, W):
                t = s + d
                ct = st[_U(oc + t)]
                if ct == EMPTY:
                    pl += 1
                    ls += t
                    lq += t * t
                elif ct == c and done[t] == 0:
                    done[t] = 1
                    stack[_U(top)] = t
                    top += 1
        st[_U(on + prev)] = p
        st[_U(osz + p)] = n
        st[_U(opl + p)] = pl
        st[_U(ols + p)] = ls
        st[_U(olq + p)] = lq
        if pl == 0:
            dead += n
    st[H_TO_PLAY] = to_play
    st[H_HASH] = h
    st[H_MAXSTONES] = N * N - ne
    off_table = HEADER + N_POINT_ARRAYS * P + cap
    st[off_table:off_table + cap] = 0
    st[H_NHIST] = 0
    _table_insert(st, off_table, cap - 1, h)
    return dead


@njit
def copy_grown(st, new):
    """Copy ``st`` into the larger state ``new`` (its H_CAP already set), rehashing the table."""
    N, W, P = _offsets(st)
    cap = st[H_CAP]
    ncap = new[H_CAP]
    fixed = HEADER + N_POINT_ARRAYS * P
    new[:fixed] = st[:fixed]
    new[H_CAP] = ncap
    new[fixed:] = 0
    nm = st[H_MOVE_NUMBER]
    new[fixed:fixed + nm] = st[fixed:fixed + nm]
    new[H_NHIST] = 0
    old_table = fixed + cap
    new_table = fixed + ncap
    for j in range(cap):
        v = st[_U(old_table + j)]
        if v != 0:
            # insert the stored key as is (it is already the mapped key of its hash)
            i = v & (ncap - 1)
            while new[_U(new_table + i)] != 0:
                i = (i + 1) & (ncap - 1)
            new[_U(new_table + i)] = v
            new[H_NHIST] += 1


def grow_state(st: np.ndarray, moves: int = 0) -> np.ndarray:
    """A copy of ``st`` with room for at least ``moves`` more moves (table half full at most)."""
    size = int(st[H_SIZE])
    cap = default_cap(size, int(st[H_MOVE_NUMBER]) + moves)
    if cap <= st[H_CAP]:
        cap = int(st[H_CAP]) * 2
    new = np.empty(state_length(size, cap), dtype=np.int64)
    new[H_CAP] = cap
    copy_grown(st, new)
    return new


@njit(inline="always")
def _xorshift(x):
    x ^= x << 13
    x ^= (x >> 7) & 0x01FFFFFFFFFFFFFF
    x ^= x << 17
    return x


@njit
def random_playout(st, seed, max_moves):
    """Play uniformly random moves on ``st`` (in place) until the game ends or ``max_moves`` more
    moves were played; return the number of moves played.

    Each move is uniform over the legal points that do not fill the mover's own single-point
    eye (``is_own_eye``); with none, the player passes. Two passes in a row end the game.
    The caller must give the state room for ``max_moves`` more moves (``grow_state``).
    """
    played, _ = _playout(st, seed, max_moves, np.empty(0, dtype=np.int64))
    return played


@njit(inline="always")
def _playout(st, seed, max_moves, log):
    """``random_playout``; if ``log`` is not empty, also write there the superko-table slots the
    playout filled. Returns (moves played, slots logged)."""
    N, W, P = _offsets(st)
    oel = HEADER + 7 * P
    oep = HEADER + 8 * P
    x = np.int64(seed)
    if x == 0:
        x = np.int64(0x2545F4914F6CDD1D)
    played = 0
    nlog = 0
    keep_log = log.shape[0] > 0
    while st[H_OVER] == 0 and played < max_moves:
        c = st[H_TO_PLAY]
        k = st[H_NEMPTY]
        chosen = -1
        while k > 0:
            x = _xorshift(x)
            r = (x >> 32) & 0xFFFFFFFF
            i = (r * k) >> 32
            p = st[_U(oel + i)]
            if not is_own_eye(st, p, c) and legal_point(st, p, c):
                chosen = p
                break
            # move the rejected point out of the candidate range [0, k)
            k -= 1
            q = st[_U(oel + k)]
            st[_U(oel + i)] = q
            st[_U(oep + q)] = i
            st[_U(oel + k)] = p
            st[_U(oep + p)] = k
        if chosen >= 0:
            slot = place(st, chosen)
            if keep_log and slot >= 0:
                log[_U(nlog)] = slot
                nlog += 1
        else:
            play_pass(st)
        played += 1
    return played, nlog


@njit
def playout_benchmark(st0, n, seed, max_moves, komi):
    """Run ``n`` random playouts from ``st0`` (not modified); return (total moves, black wins).

    Between playouts the scratch state is restored cheaply: the board part and the moves so
    far are copied back and only the superko-table slots the playout filled are cleared."""
    N, W, P = _offsets(st0)
    st = st0.copy()
    off_table = HEADER + N_POINT_ARRAYS * P + st0[H_CAP]
    fixed = HEADER + N_POINT_ARRAYS * P + st0[H_MOVE_NUMBER]
    log = np.empty(max_moves + 1, dtype=np.int64)
    total = 0
    bwins = 0
    x = np.int64(seed) | 1
    for _ in range(n):
        x = _xorshift(x)
        played, nlog = _playout(st, x, max_moves, log)
        total += played
        if score(st, komi) > 0:
            bwins += 1
        for j in range(nlog):
            st[off_table + log[_U(j)]] = 0
        st[:fixed] = st0[:fixed]
    return total, bwins
