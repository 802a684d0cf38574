"""Single-point eyes: the playout convention that makes random games end."""
from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=32)
def neighbour_table(size: int) -> np.ndarray:
    """(size*size, 4) neighbour move numbers of each point; off-board neighbours are -1."""
    table = np.full((size * size, 4), -1, dtype=np.int64)
    for m in range(size * size):
        r, c = divmod(m, size)
        for k, (dr, dc) in enumerate(((-1, 0), (1, 0), (0, -1), (0, 1))):
            rr, cc = r + dr, c + dc
            if 0 <= rr < size and 0 <= cc < size:
                table[m, k] = rr * size + cc
    return table


def own_eye_mask(stones: np.ndarray, colour: int, size: int) -> np.ndarray:
    """(size*size,) bool: empty points all of whose on-board neighbours are `colour`'s stones.

    This is the playout convention's "single-point eye" (no diagonal test): a random player that
    never fills one eventually passes, so random games end.
    """
    nb = neighbour_table(size)
    padded = np.append(np.asarray(stones, dtype=np.int64), colour)  # index -1 -> `colour`
    return (np.asarray(stones) == 0) & np.all(padded[nb] == colour, axis=1)
