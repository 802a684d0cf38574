"""Plain-Python Tromp-Taylor board: the slow, obvious version the tests compare the numba
engine (``go_core.game.board``) against. Same API as ``Board``; used only by tests and the
engine benchmark.

Everything is recomputed from scratch: chains and liberties by flood fill, superko by a set
of every position (as a tuple of colours) seen in the game.
"""
from __future__ import annotations

import random

import numpy as np

from go_core.game.board import BLACK, EMPTY, RESIGN, WHITE, IllegalMoveError, format_result, opponent


class ReferenceBoard:
    def __init__(self, size: int = 9, komi: float = 7.0):
        self.size = size
        self.komi = float(komi)
        self._b = [EMPTY] * (size * size)
        self.to_play = BLACK
        self.passes = 0
        self.history: list[int] = []
        self.resigned = 0
        self._over = False
        self._seen = {tuple(self._b)}
        self._nbrs = []
        for m in range(size * size):
            r, c = divmod(m, size)
            nb = []
            if r > 0:
                nb.append(m - size)
            if c > 0:
                nb.append(m - 1)
            if c < size - 1:
                nb.append(m + 1)
            if r < size - 1:
                nb.append(m + size)
            self._nbrs.append(nb)

    @property
    def stones(self) -> np.ndarray:
        return np.array(self._b, dtype=np.int8)

    @property
    def move_number(self) -> int:
        return len(self.history)

    @property
    def is_over(self) -> bool:
        return self._over

    def _chain(self, b, m):
        """The chain through m and whether it has a liberty."""
        colour = b[m]
        chain, stack, has_lib = {m}, [m], False
        while stack:
            s = stack.pop()
            for t in self._nbrs[s]:
                if b[t] == EMPTY:
                    has_lib = True
                elif b[t] == colour and t not in chain:
                    chain.add(t)
                    stack.append(t)
        return chain, has_lib

    def _after(self, m, colour):
        """The position after ``colour`` plays on the empty point ``m`` (as a list)."""
        b = list(self._b)
        b[m] = colour
        for t in self._nbrs[m]:
            if b[t] == opponent(colour):
                chain, has_lib = self._chain(b, t)
                if not has_lib:
                    for s in chain:
                        b[s] = EMPTY
        chain, has_lib = self._chain(b, m)
        if not has_lib:
            for s in chain:
                b[s] = EMPTY
        return b

    def _status(self, m):
        n2 = self.size * self.size
        if self._over:
            return "game over"
        if m == n2:
            return None
        if not 0 <= m < n2:
            return "off board"
        if self._b[m] != EMPTY:
            return "occupied"
        if tuple(self._after(m, self.to_play)) in self._seen:
            return "superko"
        return None

    def is_legal(self, m: int) -> bool:
        if m == RESIGN:
            return not self._over
        return self._status(m) is None

    def legal_mask(self) -> np.ndarray:
        n2 = self.size * self.size
        return np.array([self.is_legal(m) for m in range(n2 + 1)], dtype=bool)

    def play(self, m: int) -> None:
        if m == RESIGN:
            self.resign()
            return
        reason = self._status(m)
        if reason is not None:
            raise IllegalMoveError(m, self.size, self.to_play, reason)
        if m == self.size * self.size:
            self.passes += 1
            if self.passes >= 2:
                self._over = True
        else:
            self._b = self._after(m, self.to_play)
            self._seen.add(tuple(self._b))
            self.passes = 0
        self.history.append(m)
        self.to_play = opponent(self.to_play)

    def resign(self, colour: int | None = None) -> None:
        if self._over:
            raise IllegalMoveError(RESIGN, self.size, self.to_play, "game over")
        self.resigned = self.to_play if colour is None else colour
        self._over = True

    def copy(self) -> "ReferenceBoard":
        b = ReferenceBoard.__new__(ReferenceBoard)
        b.__dict__.update(self.__dict__)
        b._b = list(self._b)
        b.history = list(self.history)
        b._seen = set(self._seen)
        return b

    def area(self) -> tuple[int, int]:
        counts = {BLACK: 0, WHITE: 0}
        seen = set()
        for m, v in enumerate(self._b):
            if v != EMPTY:
                counts[v] += 1
            elif m not in seen:
                region, stack, reach = {m}, [m], set()
                while stack:
                    s = stack.pop()
                    for t in self._nbrs[s]:
                        if self._b[t] == EMPTY:
                            if t not in region:
                                region.add(t)
                                stack.append(t)
                        else:
                            reach.add(self._b[t])
                seen |= region
                if len(reach) == 1:
                    counts[reach.pop()] += len(region)
        return counts[BLACK], counts[WHITE]

    def score(self) -> float:
        b, w = self.area()
        return b - w - self.komi

    def winner(self) -> int:
        if self.resigned:
            return opponent(self.resigned)
        s = self.score()
        return BLACK if s > 0 else WHITE if s < 0 else EMPTY

    def result(self) -> str:
        return format_result(self.score(), self.resigned)

    def is_own_eye(self, m: int, colour: int) -> bool:
        return all(self._b[t] == colour for t in self._nbrs[m])

    def random_playout(self, rng: random.Random | int | None = None,
                       max_moves: int | None = None) -> "ReferenceBoard":
        """A copy played to the end by uniform random legal moves that do not fill the mover's
        own single-point eye (the same rule as ``Board.random_playout``)."""
        if not isinstance(rng, random.Random):
            rng = random.Random(rng)
        max_moves = 3 * self.size * self.size if max_moves is None else max_moves
        b = self.copy()
        n2 = self.size * self.size
        for _ in range(max_moves):
            if b._over:
                break
            candidates = [m for m in range(n2) if b._b[m] == EMPTY]
            chosen = n2
            while candidates:
                i = rng.randrange(len(candidates))
                m = candidates[i]
                if not b.is_own_eye(m, b.to_play) and b.is_legal(m):
                    chosen = m
                    break
                candidates[i] = candidates[-1]
                candidates.pop()
            b.play(chosen)
        return b

    def to_ascii(self) -> str:
        s = self.size
        return "\n".join("".join(".XO"[v] for v in self._b[r * s:(r + 1) * s]) for r in range(s))

    @classmethod
    def from_ascii(cls, text: str, komi: float = 7.0, to_play: int = BLACK) -> "ReferenceBoard":
        rows = ["".join(line.split()) for line in text.strip().splitlines()]
        rows = [r for r in rows if r]
        b = cls(len(rows), komi)
        b._b = [{"X": BLACK, "O": WHITE}.get(ch, EMPTY) for r in rows for ch in r]
        b._seen = {tuple(b._b)}
        b.to_play = to_play
        return b
