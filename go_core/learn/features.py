"""Input features: Go positions -> the net's input planes.

`encode(boards)` turns a list of positions (anything with the `Board` attributes `size`,
`stones`, `to_play`, `history`, `komi`) into a float32 tensor of shape `(B, NUM_PLANES, S, S)`,
always from the point of view of the player to move, so one net plays both colours.

Planes (`PLANES` names them in order):

| # | name            | value                                                                  |
|---|-----------------|------------------------------------------------------------------------|
| 0 | own             | 1 where the player to move has a stone                                 |
| 1 | opp             | 1 where the opponent has a stone                                       |
| 2 | on_board        | 1 on every point of the board, 0 on padding (the net's mask)           |
| 3 | last_move       | 1 on the point of the last move (nothing if it was a pass)             |
| 4 | prev_move       | 1 on the point of the move before that                                 |
| 5 | last_was_pass   | 1 everywhere on the board if the last move was a pass (two end a game) |
| 6 | black_to_play   | 1 everywhere on the board if black is to move                          |
| 7 | own_lib1        | own stones in groups with exactly 1 liberty (in atari)                 |
| 8 | own_lib2        | own stones in groups with exactly 2 liberties                          |
| 9 | own_lib3        | own stones in groups with 3 or more liberties                          |
| 10| opp_lib1        | opponent stones in groups with exactly 1 liberty                       |
| 11| opp_lib2        | opponent stones in groups with exactly 2 liberties                     |
| 12| opp_lib3        | opponent stones in groups with 3 or more liberties                     |
| 13| komi            | komi / 15 from the mover's side (+ for white, - for black) on the board |

Several board sizes: `encode(boards, size=S)` places each board of size s <= S in the top-left
corner of an S x S grid; `on_board` marks the real points and the net masks everything else
(convolutions, global pooling, policy logits), so a 9x9 position padded to 19x19 gives the same
outputs as the unpadded one. `policy_index(size, padded_size)` maps board moves to the padded
policy vector (pass is last in both).

The inner loop (stones -> planes, liberties by flood fill) is numba; `encode_reference` is the
plain-Python version the tests compare against.
"""
from __future__ import annotations

from typing import Sequence

import numba
import numpy as np
import torch

from go_core.game.coords import BLACK, WHITE

PLANES = (
    "own", "opp", "on_board", "last_move", "prev_move", "last_was_pass", "black_to_play",
    "own_lib1", "own_lib2", "own_lib3", "opp_lib1", "opp_lib2", "opp_lib3", "komi",
)
NUM_PLANES = len(PLANES)


@numba.njit(cache=True, nogil=True)
def _encode_kernel(stones, sizes, to_play, last, prev, komi, out):
    """Fill out[b] (zeros on entry) for each position b; stones[b, :sizes[b]**2] is the board."""
    B = stones.shape[0]
    S = out.shape[2]
    maxn = stones.shape[1]
    group = np.empty(maxn, np.int64)
    stack = np.empty(maxn, np.int64)
    seen = np.zeros(maxn, np.int64)   # stamp per point: group visited
    lib_seen = np.zeros(maxn, np.int64)  # stamp per point: liberty counted
    stamp = 0
    for b in range(B):
        n = sizes[b]
        me = to_play[b]
        for p in range(n * n):
            r = p // n
            c = p - r * n
            out[b, 2, r, c] = 1.0
            if me == 1:
                out[b, 6, r, c] = 1.0
            out[b, 13, r, c] = komi[b] / 15.0 if me == 2 else -komi[b] / 15.0
            if last[b] == n * n:
                out[b, 5, r, c] = 1.0
        if 0 <= last[b] < n * n:
            out[b, 3, last[b] // n, last[b] % n] = 1.0
        if 0 <= prev[b] < n * n:
            out[b, 4, prev[b] // n, prev[b] % n] = 1.0
        # stones and liberties: flood fill each group once
        stamp += 1
        for p in range(n * n):
            col = stones[b, p]
            if col == 0 or seen[p] == stamp:
                continue
            # collect the group
            gsize = 0
            sp = 0
            stack[sp] = p
            sp += 1
            seen[p] = stamp
            libs = 0
            stamp_l = stamp * 1000003 + p  # unique per group
            while sp > 0:
                sp -= 1
                q = stack[sp]
                group[gsize] = q
                gsize += 1
                r = q // n
                c = q - r * n
                for k in range(4):
                    if k == 0:
                        if r == 0:
                            continue
                        nb = q - n
                    elif k == 1:
                        if r == n - 1:
                            continue
                        nb = q + n
                    elif k == 2:
                        if c == 0:
                            continue
                        nb = q - 1
                    else:
                        if c == n - 1:
                            continue
                        nb = q + 1
                    v = stones[b, nb]
                    if v == 0:
                        if lib_seen[nb] != stamp_l:
                            lib_seen[nb] = stamp_l
                            libs += 1
                    elif v == col and seen[nb] != stamp:
                        seen[nb] = stamp
                        stack[sp] = nb
                        sp += 1
            own = col == me
            base = 7 if own else 10
            plane = base + (0 if libs <= 1 else (1 if libs == 2 else 2))
            stone_plane = 0 if own else 1
            for i in range(gsize):
                q = group[i]
                r = q // n
                c = q - r * n
                out[b, stone_plane, r, c] = 1.0
                out[b, plane, r, c] = 1.0


def _gather(boards: Sequence, size: int | None):
    sizes = np.array([bd.size for bd in boards], dtype=np.int64)
    S = int(sizes.max()) if size is None else int(size)
    if sizes.max() > S:
        raise ValueError(f"a {int(sizes.max())}x{int(sizes.max())} board does not fit in size={S}; "
                         "pass size >= the largest board")
    B = len(boards)
    stones = np.zeros((B, S * S), dtype=np.int8)
    to_play = np.empty(B, dtype=np.int64)
    last = np.full(B, -1, dtype=np.int64)
    prev = np.full(B, -1, dtype=np.int64)
    komi = np.empty(B, dtype=np.float64)
    for i, bd in enumerate(boards):
        n = bd.size
        stones[i, : n * n] = bd.stones
        to_play[i] = bd.to_play
        h = bd.history
        if len(h) >= 1:
            last[i] = h[-1]
        if len(h) >= 2:
            prev[i] = h[-2]
        komi[i] = bd.komi
    return stones, sizes, to_play, last, prev, komi, S


def encode_numpy(boards: Sequence, size: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Like `encode` but returns a numpy float32 array (B, NUM_PLANES, S, S)."""
    if len(boards) == 0:
        raise ValueError("encode() needs at least one board")
    stones, sizes, to_play, last, prev, komi, S = _gather(boards, size)
    shape = (len(boards), NUM_PLANES, S, S)
    if out is None or out.shape != shape:
        out = np.zeros(shape, dtype=np.float32)
    else:
        out.fill(0.0)
    _encode_kernel(stones, sizes, to_play, last, prev, komi, out)
    return out


def encode(boards: Sequence, size: int | None = None) -> torch.Tensor:
    """Encode positions as a float32 tensor (B, NUM_PLANES, S, S); S = `size` or the largest board."""
    return torch.from_numpy(encode_numpy(boards, size))


def policy_index(size: int, padded_size: int) -> np.ndarray:
    """Index into a padded policy vector (padded_size**2 + 1) of each move 0..size**2 (pass last)."""
    moves = np.arange(size * size)
    idx = (moves // size) * padded_size + moves % size
    return np.concatenate([idx, [padded_size * padded_size]]).astype(np.int64)


def encode_reference(board, size: int | None = None) -> np.ndarray:
    """Plain-Python encoding of one board (NUM_PLANES, S, S); the tests check `encode` against it."""
    n = board.size
    S = n if size is None else size
    x = np.zeros((NUM_PLANES, S, S), dtype=np.float32)
    me = board.to_play
    grid = [[int(board.stones[r * n + c]) for c in range(n)] for r in range(n)]

    def group_and_libs(r0, c0):
        col = grid[r0][c0]
        todo, group, libs = [(r0, c0)], {(r0, c0)}, set()
        while todo:
            r, c = todo.pop()
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= rr < n and 0 <= cc < n:
                    if grid[rr][cc] == 0:
                        libs.add((rr, cc))
                    elif grid[rr][cc] == col and (rr, cc) not in group:
                        group.add((rr, cc))
                        todo.append((rr, cc))
        return len(libs)

    for r in range(n):
        for c in range(n):
            x[2, r, c] = 1
            x[6, r, c] = float(me == BLACK)
            x[13, r, c] = (board.komi if me == WHITE else -board.komi) / 15.0
            if board.history and board.history[-1] == n * n:
                x[5, r, c] = 1
            v = grid[r][c]
            if v:
                own = v == me
                x[0 if own else 1, r, c] = 1
                libs = group_and_libs(r, c)
                x[(7 if own else 10) + max(1, min(libs, 3)) - 1, r, c] = 1
    for plane, back in ((3, 1), (4, 2)):
        if len(board.history) >= back and board.history[-back] < n * n and board.history[-back] >= 0:
            m = board.history[-back]
            x[plane, m // n, m % n] = 1
    return x
