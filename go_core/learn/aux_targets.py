"""KataGo's auxiliary training targets from a game's end position: who owns each point, and by how
much the game was won.

Why: the value target is one bit per game; ownership gives the net a label for every point
(which groups live, whose territory a region is), and the score margin says by how much, so the
trunk learns life and death and counting from far more signal per game (Wu, "Accelerating
Self-Play Learning in Go", 2019).

- `final_ownership(stones, size)`: Tromp-Taylor ownership of each point, +1 black, -1 white, 0 dame
  (a stone is owned by its colour; an empty region by the colour that alone borders it).
- `sample_targets(final_board, to_play)`: per sample, ownership and score margin (komi included)
  seen from the player to move: +1 = that player's point, score > 0 = that player won by so much.
"""
from __future__ import annotations

import numpy as np

from go_core.game.board import BLACK, WHITE


def final_ownership(stones: np.ndarray, size: int) -> np.ndarray:
    """(size*size,) int8: +1 black's area, -1 white's, 0 neither (Tromp-Taylor)."""
    st = np.asarray(stones).reshape(size * size)
    own = np.zeros(size * size, dtype=np.int8)
    own[st == BLACK] = 1
    own[st == WHITE] = -1
    seen = np.zeros(size * size, dtype=bool)
    for start in np.flatnonzero(st == 0):
        if seen[start]:
            continue
        region, borders, stack = [], set(), [start]
        seen[start] = True
        while stack:
            p = stack.pop()
            region.append(p)
            r, c = divmod(int(p), size)
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= rr < size and 0 <= cc < size:
                    q = rr * size + cc
                    if st[q] == 0:
                        if not seen[q]:
                            seen[q] = True
                            stack.append(q)
                    else:
                        borders.add(int(st[q]))
        if borders == {BLACK}:
            own[region] = 1
        elif borders == {WHITE}:
            own[region] = -1
    return own


def sample_targets(final, to_play: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ownership (n, S*S) int8, score (n,) float32) for samples whose players to move are
    `to_play`, from the finished board `final` (its Tromp-Taylor score, komi included)."""
    sign = np.where(np.asarray(to_play) == BLACK, 1, -1).astype(np.int8)
    own = final_ownership(final.stones, final.size)
    return own[None, :] * sign[:, None], (float(final.score()) * sign).astype(np.float32)
