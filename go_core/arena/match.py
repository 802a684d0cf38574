"""The match runner: N games between two GTP players, refereed and scored by our own engine.

Engines only *choose* moves. For each move the runner asks the player to move (`genmove`), checks
the answer on our `Board` (Tromp-Taylor: positional superko, suicide legal), and mirrors it to the
other engine (`play`). A game ends on two passes (scored by Tromp-Taylor area with komi), a
resignation, the move cap (scored as the position stands), or a failure. An engine that crashes,
hangs past the per-move limit, or answers an unparseable or illegal move *loses that game* with the
reason recorded — never a silent win or a dropped game — and is restarted for the next game.

Games alternate colours (player A is black in even games). Games 2k and 2k+1 start from the same
`random_opening_moves` random plies with colours swapped, so deterministic engines still give
distinct games and each opening is played from both sides. Games run `workers` at a time: each
worker keeps its own two engine processes alive from game to game, and its referee loop runs in a
thread (it only waits on the engines' pipes). Every game is saved as SGF
with the result (`RE`) and the reason it ended (a comment). A player's engine and every way it
can fail are go_core/arena/seats.py.
"""
from __future__ import annotations

import concurrent.futures as cf
import datetime as _dt
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from go_core.arena.gtp_client import GTPError
from go_core.arena.seats import (ENGINE_ERROR, ILLEGAL, REFUSED, UNPARSEABLE, EngineFailure,
                                 Seat, colour_letter, mirror, play_into, send)
from go_core.arena.stats import WinRate, colour_advantage, win_rate
from go_core.game.board import BLACK, WHITE, Board, IllegalMoveError
from go_core.game.coords import RESIGN, gtp_to_move, move_to_gtp
from go_core.game.eyes import own_eye_mask

# Reasons a game ended by the rules (MatchGame.reason); an engine's failures are in seats.py.
TWO_PASSES = "two passes"
RESIGNATION = "resignation"
MOVE_CAP = "move cap"


@dataclass
class PlayerSpec:
    """How to start one player: a GTP engine subprocess."""
    name: str                          # unique label (used in results, SGF PB/PW and Elo fits)
    argv: list[str]                    # command line of the GTP engine
    env: dict[str, str] | None = None  # environment for the subprocess (None: inherit)
    random_move_prob: float = 0.0      # each move is a uniformly random one with this probability
                                       # (weakened "bridge" rungs between random and real engines)
    reference: bool = False            # one of the referee's engines: when it fails (crash, hang,
                                       # illegal answer) the game is void and replayed, never a win
                                       # for the other side; only a candidate's own failures lose


@dataclass
class MatchConfig:
    """How a match is played."""
    games: int = 10                    # games in the match (colours alternate)
    board_size: int = 9                # board width and height
    komi: float = 7.0                  # points given to white (Tromp-Taylor area scoring)
    move_time_s: float = 30.0          # per-move limit: an engine silent longer loses (engine timed out)
    start_timeout_s: float = 300.0     # limit for an engine's first answer (KataGo tunes OpenCL once, ~50 s)
    max_moves_factor: float = 3.0      # move cap = factor * size^2 plies; then scored as it stands
    random_opening_moves: int = 2      # random plies at the start of each game pair (0: none)
    workers: int = 1                   # games played at once (each with its own engine processes)
    seed: int = 0                      # seeds the openings and random moves
    replays: int = 2                   # times a game voided by a reference engine's failure is replayed

    @property
    def max_moves(self) -> int:
        return max(1, int(round(self.max_moves_factor * self.board_size ** 2)))


@dataclass
class MatchGame:
    """One finished game."""
    index: int                        # game number within the match
    black: str                        # player names
    white: str
    winner: str | None                # name of the winner; None for a draw (jigo)
    result: str                       # SGF RE: "B+3.5", "W+R" (resignation), "B+F" (forfeit), "0"
    reason: str                       # why it ended: two passes, resignation, move cap, engine crashed, ...
    detail: str = ""                  # which engine failed and what it said
    score: float | None = None        # Tromp-Taylor black - white - komi, when scored on the board
    moves: list[str] = field(default_factory=list)  # GTP moves in order
    sgf_path: str | None = None
    seconds: float = 0.0
    resyncs: int = 0                  # times an engine refused a legal move and was given the position
    void: bool = False                # a reference engine failed: the game counts for nobody

    @property
    def black_score(self) -> float:
        """1 if black won, 0 if white won, 0.5 for a draw (what Elo fits consume)."""
        if self.winner is None:
            return 0.5
        return 1.0 if self.winner == self.black else 0.0

    def score_for(self, name: str) -> float:
        if name not in (self.black, self.white):
            raise ValueError(f"{name!r} did not play game {self.index} ({self.black} vs {self.white})")
        s = self.black_score
        return s if name == self.black else 1.0 - s

    @property
    def failure(self) -> bool:
        return not (self.reason in (TWO_PASSES, RESIGNATION) or self.reason.startswith(MOVE_CAP))

    @property
    def failed(self) -> str | None:
        """The name of the player whose failure ended the game (None: it ended by the rules)."""
        if not self.failure or self.winner is None:
            return None
        return self.white if self.winner == self.black else self.black


@dataclass
class MatchResult:
    """All games of a match between players `a` and `b`."""
    a: str
    b: str
    games: list[MatchGame]            # the games that count (void ones are in `voided`)
    seconds: float = 0.0
    voided: list[MatchGame] = field(default_factory=list)  # ended by a reference engine's failure

    def win_rate(self, name: str) -> WinRate:
        return win_rate(g.score_for(name) for g in self.games)

    def colour_advantage(self) -> WinRate:
        """Black's win rate over the match."""
        return colour_advantage(g.black_score for g in self.games)

    def reasons(self) -> dict[str, int]:
        """How many games ended for each kind of reason (moves stripped: "illegal move", "move cap")."""
        out: dict[str, int] = {}
        for g in self.games:
            k = next((p for p in (ILLEGAL, REFUSED, UNPARSEABLE, MOVE_CAP) if g.reason.startswith(p)),
                     g.reason)
            out[k] = out.get(k, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "games": len(self.games), "void": len(self.voided),
                "seconds": round(self.seconds, 2),
                "win_rate_a": self.win_rate(self.a).to_dict(),
                "black_win_rate": self.colour_advantage().to_dict(), "reasons": self.reasons(),
                "records": [asdict(g) for g in self.games]}


def random_legal_move(board: Board, rng: np.random.Generator, allow_pass: bool = True) -> int:
    """A uniformly random legal move that does not fill one's own single-point eye (pass if none)."""
    size = board.size
    mask = np.asarray(board.legal_mask())[: size * size] & ~own_eye_mask(board.stones, board.to_play, size)
    points = np.flatnonzero(mask)
    if len(points) == 0:
        return size * size if allow_pass else RESIGN
    return int(rng.choice(points))


def play_game(index: int, black: Seat, white: Seat, cfg: MatchConfig,
              sgf_dir: Path | None = None) -> MatchGame:
    """Play one game between two seats; never raises for an engine's failure (it loses instead)."""
    t0 = time.monotonic()
    size = cfg.board_size
    board = Board(size, cfg.komi)
    seats = {BLACK: black, WHITE: white}
    names = {BLACK: black.spec.name, WHITE: white.spec.name}
    opening_rng = np.random.default_rng([cfg.seed, index // 2])
    move_rng = np.random.default_rng([cfg.seed, index, 1])
    moves: list[str] = []
    black.resyncs = white.resyncs = 0
    reason, detail, winner_colour, score = "", "", None, None
    try:
        for colour, seat in seats.items():
            for cmd in (f"boardsize {size}", f"komi {cfg.komi}", "clear_board"):
                try:
                    send(seat, colour, cmd)
                except GTPError as e:
                    raise RuntimeError(f"{seat.spec.name} cannot set up a {size}x{size} game with komi "
                                       f"{cfg.komi}: {e}") from None
        while True:
            colour = board.to_play
            seat, other = seats[colour], seats[3 - colour]
            if board.move_number < cfg.random_opening_moves:
                m = random_legal_move(board, opening_rng, allow_pass=True)
                play_into(seat, colour, m, size, board, mover_colour=colour)
            elif seat.spec.random_move_prob > 0 and move_rng.random() < seat.spec.random_move_prob:
                m = random_legal_move(board, move_rng, allow_pass=True)
                play_into(seat, colour, m, size, board, mover_colour=colour)
            else:
                try:
                    text = send(seat, colour, f"genmove {colour_letter(colour)}").strip()
                except GTPError as e:
                    raise EngineFailure(colour, ENGINE_ERROR, f"{seat.spec.name}: genmove answered '? {e.message}'")
                try:
                    m = gtp_to_move(text.split()[0] if text else text, size)
                except ValueError:
                    raise EngineFailure(colour, f"{UNPARSEABLE} {text!r}",
                                   f"{seat.spec.name} answered {text!r} to genmove") from None
                if m == RESIGN:
                    board.resign(colour)
                    moves.append("resign")
                    reason, winner_colour = RESIGNATION, 3 - colour
                    break
                try:
                    board.play(m)
                except IllegalMoveError as e:
                    raise EngineFailure(colour, f"{ILLEGAL} {move_to_gtp(m, size)}",
                                   f"{seat.spec.name} played {text}: {e}") from None
            moves.append(move_to_gtp(m, size))
            mirror(other, 3 - colour, colour, m, board)
            if board.is_over:
                reason = TWO_PASSES
                break
            if board.move_number >= cfg.max_moves:
                reason = f"{MOVE_CAP} {cfg.max_moves}"
                break
        if reason != RESIGNATION:
            score = float(board.score())
            winner_colour = BLACK if score > 0 else WHITE if score < 0 else None
    except EngineFailure as f:
        reason, detail, winner_colour = f.reason, f.detail, 3 - f.colour
    winner = names[winner_colour] if winner_colour else None
    letter = {BLACK: "B", WHITE: "W"}.get(winner_colour)
    if winner_colour is None:
        result = "0"
    elif score is not None:
        result = f"{letter}+{abs(score):g}"
    elif reason == RESIGNATION:
        result = f"{letter}+R"
    else:
        result = f"{letter}+F"  # forfeit: the other side failed
    rec = MatchGame(index=index, black=names[BLACK], white=names[WHITE], winner=winner, result=result,
                     reason=reason, detail=detail, score=score, moves=moves,
                     seconds=time.monotonic() - t0, resyncs=black.resyncs + white.resyncs)
    if sgf_dir is not None:
        rec.sgf_path = str(write_game_sgf(rec, cfg, Path(sgf_dir)))
    return rec


def write_game_sgf(rec: MatchGame, cfg: MatchConfig, sgf_dir: Path) -> Path:
    """Save a game as FF[4] SGF with RE and the end reason (root and last-move comments)."""
    from go_core.game import sgf as sgf_io

    size = cfg.board_size
    comment = f"result {rec.result}; ended by {rec.reason}" + (f"; {rec.detail}" if rec.detail else "")
    moves = [((BLACK, WHITE)[k % 2], gtp_to_move(t, size))
             for k, t in enumerate(rec.moves) if t != "resign"]
    comments = [""] * len(moves)
    if moves:
        comments[-1] = comment
    record = sgf_io.GameRecord(size=size, komi=float(cfg.komi), rules="tromp-taylor", black=rec.black,
                               white=rec.white, result=rec.result, date=_dt.date.today().isoformat(),
                               moves=moves, comments=comments, root_comment=comment,
                               extra={"GN": f"game {rec.index}"})
    sgf_dir.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{rec.black}-vs-{rec.white}")
    path = sgf_dir / f"{safe}-{rec.index:04d}-{os.getpid()}-{int(time.time() * 1000) % 10**8}.sgf"
    sgf_io.write_sgf(path, record)
    return path


def _run_games(indices: list[int], a: PlayerSpec, b: PlayerSpec, cfg: MatchConfig,
               sgf_dir: str | None, on_game: Callable[[MatchGame], None] | None = None) -> list[MatchGame]:
    """A worker: plays the given game indices with one engine per player, kept between games."""
    seat_a, seat_b = Seat(a, cfg), Seat(b, cfg)
    refs = {s.name for s in (a, b) if s.reference}
    out = []
    try:
        for i in indices:
            black, white = (seat_a, seat_b) if i % 2 == 0 else (seat_b, seat_a)
            for attempt in range(cfg.replays + 1):
                rec = play_game(i, black, white, cfg, Path(sgf_dir) if sgf_dir else None)
                if rec.failed not in refs:
                    break
                # the referee's own engine failed: nobody wins; the game is recorded and replayed
                rec.void = True
                rec.detail = (f"void (the reference engine failed; attempt {attempt + 1} of "
                              f"{cfg.replays + 1}): {rec.detail}")
                if attempt < cfg.replays:
                    out.append(rec)
            out.append(rec)
            if on_game and not rec.void:
                on_game(rec)
    finally:
        seat_a.drop()
        seat_b.drop()
    return out


def play_match(a: PlayerSpec, b: PlayerSpec, cfg: MatchConfig, sgf_dir: str | os.PathLike | None = None,
               on_game: Callable[[MatchGame], None] | None = None,
               first_index: int = 0) -> MatchResult:
    """Play `cfg.games` games between a and b (a is black in even games); see the module docstring.

    on_game is called with each finished game as soon as it ends (one call at a time), e.g. to
    save progress. first_index offsets game numbers (and so openings and colours) when a caller
    plays one pairing in several chunks; keep it even so colours keep alternating.
    """
    if a.name == b.name:
        raise ValueError(f"the two players of a match need different names, both are {a.name!r}")
    t0 = time.monotonic()
    indices = list(range(first_index, first_index + cfg.games))
    workers = max(1, min(cfg.workers, len(indices)))
    sgf = str(sgf_dir) if sgf_dir is not None else None
    lock = threading.Lock()

    def report(rec: MatchGame) -> None:
        if on_game:
            with lock:
                on_game(rec)

    games: list[MatchGame] = []
    if workers == 1:
        games = _run_games(indices, a, b, cfg, sgf, report)
    else:
        chunks = [indices[k::workers] for k in range(workers)]
        # Threads are enough: every engine is its own process, and a referee loop only waits on
        # pipes. (Worker processes would re-import the caller's __main__ under spawn, and fork
        # would copy a training job's torch threads.)
        with cf.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_run_games, c, a, b, cfg, sgf, report) for c in chunks]
            for fut in futures:
                games.extend(fut.result())
    games.sort(key=lambda g: g.index)
    return MatchResult(a=a.name, b=b.name, games=[g for g in games if not g.void],
                       seconds=time.monotonic() - t0, voided=[g for g in games if g.void])
