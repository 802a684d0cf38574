"""A player's seat in a game: its GTP engine (started lazily, restarted after a failure), and the
commands the game loop sends through it. Every failure of an engine -- a crash, a hang past the
move limit, a legal move it refuses and a position it cannot load instead -- becomes an
`EngineFailure` of that seat's colour: that side loses the game, the reason recorded
(go_core/arena/match.py runs the games).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from go_core.arena.gtp_client import EngineCrashed, EngineTimeout, GTPClient, GTPError
from go_core.game.board import BLACK, WHITE, Board
from go_core.game.coords import move_to_gtp

if TYPE_CHECKING:
    from go_core.arena.match import MatchConfig, PlayerSpec

# Reasons an engine's failure ended a game (MatchGame.reason; the engine is named in its detail).
CRASHED = "engine crashed"
TIMED_OUT = "engine timed out"
ENGINE_ERROR = "engine error"          # the engine answered `? ...` to genmove
REFUSED = "engine refused legal move"  # followed by the move, e.g. "engine refused legal move D4"
ILLEGAL = "illegal move"               # followed by the move, e.g. "illegal move D4"
UNPARSEABLE = "unparseable move"


class EngineFailure(Exception):
    """A game-ending failure of one engine: that engine's side loses."""

    def __init__(self, colour: int, reason: str, detail: str):
        super().__init__(reason)
        self.colour, self.reason, self.detail = colour, reason, detail


class Seat:
    """One player's engine inside a worker: started lazily, restarted after a failure."""

    def __init__(self, spec: PlayerSpec, cfg: MatchConfig):
        self.spec, self.cfg = spec, cfg
        self.client: GTPClient | None = None
        self.resyncs = 0   # positions loaded after a refused legal move (see mirror)

    def ensure(self) -> GTPClient:
        if self.client is None or not self.client.alive:
            if self.client is not None:
                self.client.close(timeout_s=1)
            self.client = GTPClient(self.spec.argv, env=self.spec.env, timeout_s=self.cfg.move_time_s,
                                    start_timeout_s=self.cfg.start_timeout_s, name=self.spec.name)
        return self.client

    def drop(self) -> None:
        if self.client is not None:
            self.client.close(timeout_s=1)
            self.client = None


def colour_letter(colour: int) -> str:
    return "b" if colour == BLACK else "w"


def send(seat: Seat, colour: int, command: str) -> str:
    """Send a command; a crash or hang becomes a game-ending failure of that seat's side."""
    try:
        return seat.ensure().send(command)
    except EngineCrashed as e:
        seat.drop()
        raise EngineFailure(colour, CRASHED, f"{seat.spec.name} ({colour_letter(colour)}): {e}") from None
    except EngineTimeout as e:
        seat.drop()
        raise EngineFailure(colour, TIMED_OUT, f"{seat.spec.name} ({colour_letter(colour)}): {e}") from None


def play_into(seat: Seat, colour: int, m: int, size: int, board: Board, mover_colour: int) -> None:
    """A move chosen for `colour` by the runner (opening / random move): apply it and tell its engine."""
    board.play(m)
    mirror(seat, colour, mover_colour, m, board)


def mirror(seat: Seat, seat_colour: int, mover_colour: int, m: int, board: Board) -> None:
    """Tell `seat` (playing `seat_colour`) that `mover_colour` played m (already on `board`).

    An engine that refuses a move legal under Tromp-Taylor (GNU Go knows no suicide) is resynced:
    it loads the position after the move as SGF setup stones. Only if that fails too does it lose.
    """
    size = board.size
    vertex = move_to_gtp(m, size)
    command = f"play {colour_letter(mover_colour)} {vertex}"
    try:
        send(seat, seat_colour, command)
        return
    except GTPError as e:
        refusal = e.message
    try:
        load_position(seat, seat_colour, board)
        seat.resyncs += 1
    except GTPError as e:
        raise EngineFailure(seat_colour, f"{REFUSED} {vertex}",
                       f"{seat.spec.name} refused '{command}' ({refusal}), legal under Tromp-Taylor, "
                       f"and could not load the position instead: {e.message}") from None


def load_position(seat: Seat, colour: int, board: Board) -> None:
    """Set the engine's board to `board`'s stones and side to move with `loadsgf` (setup stones)."""
    import tempfile

    from go_core.game import sgf as sgf_io

    size = board.size
    stones = np.asarray(board.stones)
    record = sgf_io.GameRecord(size=size, komi=float(board.komi),
                               setup_black=[int(p) for p in np.flatnonzero(stones == BLACK)],
                               setup_white=[int(p) for p in np.flatnonzero(stones == WHITE)],
                               first_player=int(board.to_play))
    fd, path = tempfile.mkstemp(suffix=".sgf", prefix="tengen-position-")
    os.close(fd)
    try:
        sgf_io.write_sgf(path, record)
        send(seat, colour, f"loadsgf {path}")
        send(seat, colour, f"komi {board.komi}")
    finally:
        os.unlink(path)
