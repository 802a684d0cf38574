"""Tromp-Taylor Go: ``Board``, one game on the numba kernels.

Rules (Tromp-Taylor, as KataGo's ``tromp-taylor``): a move captures the opponent's chains left
without liberties, then removes its own chain if that has none (suicide is legal; a
single-stone suicide recreates the previous position and so is refused by superko);
positional superko over the whole game (a move may not recreate any earlier position, whoever
is to move); two consecutive passes or a resignation end the game; the score is area scoring
(a point counts for a colour if it holds that colour's stone or is an empty region reaching
only that colour) minus komi.

Moves are ints (see ``go_core.game.coords``): ``m = row * size + col`` with row 0 on top, pass is
``size * size``, ``RESIGN = -1``. The work happens in the numba kernels of
``go_core.game.board_kernels`` on one int64 state array per game, so ``Board.copy()`` is one numpy
array copy.
"""
from __future__ import annotations

import numpy as np

from go_core.game import board_kernels as K
from go_core.game.coords import BLACK, EMPTY, MAX_SIZE, RESIGN, WHITE, move_to_gtp, pass_move  # noqa: F401

COLOUR_NAMES = {BLACK: "black", WHITE: "white"}

__all__ = ["EMPTY", "BLACK", "WHITE", "RESIGN", "MAX_SIZE", "opponent", "pass_move",
           "IllegalMoveError", "Board", "format_result"]


def opponent(colour: int) -> int:
    """The other colour: BLACK <-> WHITE."""
    return 3 - colour


class IllegalMoveError(ValueError):
    """A move the rules refuse; ``.reason`` is one of occupied / superko / game over / off board."""

    def __init__(self, move: int, size: int, colour: int, reason: str):
        self.move, self.size, self.colour, self.reason = move, size, colour, reason
        where = move_to_gtp(move, size) if -1 <= move <= size * size else f"move {move}"
        super().__init__(f"illegal move {where} for {COLOUR_NAMES.get(colour, colour)}: {reason}")


def format_result(score: float, resigned: int = 0) -> str:
    """SGF/GTP style result: ``"B+3.5"``, ``"W+R"`` (the other colour resigned), ``"0"`` (a draw)."""
    if resigned:
        return "W+R" if resigned == BLACK else "B+R"
    if score == 0:
        return "0"
    return f"{'B' if score > 0 else 'W'}+{abs(score):g}"


def _parse_ascii(text: str) -> tuple[int, np.ndarray]:
    rows = []
    for line in text.strip().splitlines():
        line = "".join(line.split())
        if line:
            rows.append(line)
    size = len(rows)
    if not 2 <= size <= MAX_SIZE or any(len(r) != size for r in rows):
        raise ValueError(f"an ASCII board must be a square of 2..{MAX_SIZE} rows of 'X' (black), "
                         f"'O' (white) and '.' (empty); got rows of lengths {[len(r) for r in rows]}")
    table = {".": EMPTY, "+": EMPTY, "X": BLACK, "x": BLACK, "O": WHITE, "o": WHITE}
    try:
        colours = np.array([table[ch] for r in rows for ch in r], dtype=np.int64)
    except KeyError as e:
        raise ValueError(f"unknown character {e.args[0]!r} in an ASCII board: use X, O and .") from None
    return size, colours


class Board:
    """One game of Go under Tromp-Taylor rules (see the module docstring)."""

    __slots__ = ("size", "komi", "_st")

    def __init__(self, size: int = 9, komi: float = 7.0):
        self.size = int(size)
        self.komi = float(komi)
        self._st = K.new_state(self.size)

    # -- state ---------------------------------------------------------------------------------
    @property
    def stones(self) -> np.ndarray:
        """Colours of the points, np.int8 shape (size*size,), row 0 on top (a fresh copy)."""
        out = np.empty(self.size * self.size, dtype=np.int8)
        K.stones(self._st, out)
        return out

    @property
    def to_play(self) -> int:
        return int(self._st[K.H_TO_PLAY])

    @to_play.setter
    def to_play(self, colour: int) -> None:
        if colour not in (BLACK, WHITE):
            raise ValueError(f"to_play must be BLACK (1) or WHITE (2), not {colour!r}")
        self._st[K.H_TO_PLAY] = colour

    @property
    def passes(self) -> int:
        """Consecutive passes just played."""
        return int(self._st[K.H_PASSES])

    @property
    def move_number(self) -> int:
        """Moves played so far, passes included."""
        return int(self._st[K.H_MOVE_NUMBER])

    @property
    def history(self) -> list[int]:
        """The moves played (passes included; a resignation is not a move)."""
        out = np.empty(int(self._st[K.H_MOVE_NUMBER]), dtype=np.int64)
        K.history_moves(self._st, out)
        return out.tolist()

    @property
    def last_move(self) -> int | None:
        """The last move played (a pass is size*size), None before the first."""
        p = int(self._st[K.H_LAST])
        if p < 0:
            return None
        if p == K.PASS_SLOT:
            return self.size * self.size
        w = self.size + 2
        return (p // w - 1) * self.size + p % w - 1

    @property
    def is_over(self) -> bool:
        return bool(self._st[K.H_OVER])

    @property
    def resigned(self) -> int:
        """0, or the colour that resigned."""
        return int(self._st[K.H_RESIGNED])

    @property
    def hash(self) -> int:
        """Zobrist hash of the position (stones only)."""
        return int(self._st[K.H_HASH])

    @property
    def state(self) -> np.ndarray:
        """The kernel state array (layout in ``go_core.game.board_kernels``); do not resize it."""
        return self._st

    # -- moves ---------------------------------------------------------------------------------
    def is_legal(self, m: int) -> bool:
        if m == RESIGN:
            return not self.is_over
        return bool(K.is_legal(self._st, m))

    def legal_mask(self) -> np.ndarray:
        """Bool array (size*size + 1,): legal points, then pass (legal until the game is over)."""
        out = np.empty(self.size * self.size + 1, dtype=np.bool_)
        K.legal_mask(self._st, out)
        return out

    def legal_moves(self) -> np.ndarray:
        return np.flatnonzero(self.legal_mask())

    def play(self, m: int) -> None:
        """Play move ``m`` for the player to move; raise IllegalMoveError if the rules refuse it."""
        m = int(m)
        if m == RESIGN:
            self.resign()
            return
        status = K.play(self._st, m)
        if status != K.OK:
            raise IllegalMoveError(m, self.size, self.to_play, K.STATUS_REASONS[status])
        if 2 * self._st[K.H_MOVE_NUMBER] + 4 > self._st[K.H_CAP]:
            self._st = K.grow_state(self._st)

    def resign(self, colour: int | None = None) -> None:
        """``colour`` (default: the player to move) resigns; the game is over."""
        if self.is_over:
            raise IllegalMoveError(RESIGN, self.size, self.to_play, "game over")
        colour = self.to_play if colour is None else colour
        if colour not in (BLACK, WHITE):
            raise ValueError(f"resign colour must be BLACK (1) or WHITE (2), not {colour!r}")
        K.resign(self._st, colour)

    def copy(self) -> "Board":
        b = Board.__new__(Board)
        b.size = self.size
        b.komi = self.komi
        b._st = self._st.copy()
        return b

    # -- results -------------------------------------------------------------------------------
    def area(self) -> tuple[int, int]:
        """Tromp-Taylor area points (black, white)."""
        b, w = K.area_counts(self._st)
        return int(b), int(w)

    def score(self) -> float:
        """Tromp-Taylor area score: black minus white minus komi (ignores a resignation)."""
        return float(K.score(self._st, self.komi))

    def winner(self) -> int:
        """BLACK, WHITE or EMPTY (a draw); a resignation decides for the other colour."""
        if self.resigned:
            return opponent(self.resigned)
        s = self.score()
        return BLACK if s > 0 else WHITE if s < 0 else EMPTY

    def result(self) -> str:
        return format_result(self.score(), self.resigned)

    def random_playout(self, rng: np.random.Generator | int | None = None,
                       max_moves: int | None = None) -> "Board":
        """A copy of this board played to the end by uniformly random moves that never fill the
        mover's own single-point eye (pass when no other move is legal); stops after
        ``max_moves`` (default 3*size*size) more moves if the game has not ended by then.
        ``rng``: a numpy Generator or a seed. Read the outcome with ``.score()``/``.winner()``."""
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        max_moves = 3 * self.size * self.size if max_moves is None else int(max_moves)
        b = Board.__new__(Board)
        b.size, b.komi = self.size, self.komi
        b._st = K.grow_state(self._st, max_moves)
        K.random_playout(b._st, int(rng.integers(1, 2 ** 62)), max_moves)
        return b

    # -- text ----------------------------------------------------------------------------------
    def to_ascii(self) -> str:
        """Rows top to bottom, 'X' black, 'O' white, '.' empty (``from_ascii`` reads it back)."""
        s = self.stones.reshape(self.size, self.size)
        return "\n".join("".join(".XO"[v] for v in row) for row in s)

    def __repr__(self) -> str:
        return (f"Board(size={self.size}, komi={self.komi}, to_play="
                f"{COLOUR_NAMES[self.to_play]}, move_number={self.move_number})\n{self.to_ascii()}")

    @classmethod
    def from_ascii(cls, text: str, komi: float = 7.0, to_play: int = BLACK) -> "Board":
        """A board holding the drawn position ('X' black, 'O' white, '.' empty; spaces ignored)
        as the game's only position so far, ``to_play`` to move."""
        size, colours = _parse_ascii(text)
        b = cls(size, komi)
        b.set_position(colours, to_play)
        return b

    def set_position(self, colours, to_play: int = BLACK) -> None:
        """Make ``colours`` (size*size of EMPTY/BLACK/WHITE) the game's only position so far."""
        colours = np.asarray(colours, dtype=np.int64).reshape(-1)
        if colours.shape[0] != self.size * self.size or np.any((colours < 0) | (colours > 2)):
            raise ValueError(f"a position on {self.size}x{self.size} is {self.size * self.size} "
                             f"values of EMPTY (0), BLACK (1), WHITE (2)")
        if to_play not in (BLACK, WHITE):
            raise ValueError(f"to_play must be BLACK (1) or WHITE (2), not {to_play!r}")
        dead = K.set_position(self._st, colours, to_play)
        if dead:
            raise ValueError(f"the position has {dead} stone(s) in chains without a liberty; "
                             f"such chains would have been captured")
