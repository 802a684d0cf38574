"""Head-to-head matches between two player processes: many games at once, colour-swapped pairs.

    result = play_head_to_head(BatchPlayerSpec(argv_a, cwd_a, env_a, "child"),
                               BatchPlayerSpec(argv_b, cwd_b, env_b, "parent"),
                               pairs=200, seed=node_seed, sgf_dir=run_dir / "games" / "h2h",
                               should_stop=lambda done: my_sequential_test(done))
    result.score_a, result.pentanomial, result.games_per_min, result.failures

Each pair is one opening played twice, A black in one game and white in the other, so what the
opening (or moving first) gives one colour cancels within the pair. The openings come from the
book that ships with the project (`go_core.arena.opening_book`, KataGo-judged close to even);
`seed` picks which openings, in which order, under which board symmetry, and which game of the
pair A starts as black, so two nodes rated with different seeds see different games. For a
board size without a book, seeded random openings are used and `opening_source` says so.

Both players are processes speaking the batched move protocol (`batch_protocol`): every step,
each is sent the positions of all games where it is to move (both at once, so they think in
parallel), and answers one move per game. Our engine (`go_core.game.board`, Tromp-Taylor)
applies every move and scores. A game ends by two passes, a resignation, the move cap
(`max_moves`, default 3*size*size: then it is scored as it stands), or a failure of the player
to move (crash, hang, malformed answer, illegal move: that player loses the game, and the reason
is recorded; the match goes on, with the process restarted). Every game is saved as SGF.

The eye rule (`eye_fill_passes`, on by default): a move that fills the mover's own single-point
eye is played as a pass, for both sides alike -- the convention of random playouts, and of the
ladder's reference players. Nets trained for minutes never learn to pass: without the rule two raw
policies play on to the move cap, and the game is decided by which side destroys its own groups
last, not by the position it built. Measured (issue 12): a tiny-budget net against its own starting
checkpoint, 20 pairs from the book, scored +35 Elo [-73, +150] with 27 of 40 games at the move cap,
and +564 [+402, +3600] with the rule (all 40 ended by passes, mean 119 moves) -- in line with
KataGo's scoring of the same kind of match (+512 [+360, +663]). A node cannot use the rule
against its opponent: it only ever changes the mover's own move, and the SGF says when it did.

This module knows nothing about nodes or sandboxes: the caller builds the `BatchPlayerSpec`s.
`should_stop(pairs_done)` is called after every step in which pairs finished, with all finished
pairs in the order they finished; when it returns True no new pair starts and the unfinished
ones are abandoned (counted in `abandoned_pairs`), so a sequential test stops where it decided.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from go_core.arena.batch_protocol import BatchPlayerClient, PlayerFailed, BatchPlayerSpec
from go_core.arena.opening_book import load_openings, random_openings
from go_core.arena.stats import Z95
from go_core.game.board import BLACK, EMPTY, WHITE, Board
from go_core.game.coords import RESIGN, move_to_gtp
from go_core.game.eyes import own_eye_mask
from go_core.game.symmetry import N_SYMMETRIES, transform_move

__all__ = ["BatchPlayerSpec", "GameResult", "PairResult", "HeadToHeadResult", "play_head_to_head",
           "choose_openings"]

DEFAULT_PAIRS_AT_ONCE = 64      # pairs in flight: 128 games per batch (one forward pass per side)


@dataclass
class GameResult:
    game_id: str                  # "p<pair>g<0|1>", also the SGF file's stem
    a_colour: str                 # "b" or "w": A's colour in this game
    score_a: float                # 1 A won, 0.5 draw, 0 A lost
    result: str                   # SGF RE: "B+3", "W+R", "B+F" (white forfeited by failing)
    moves: int                    # moves played, opening included
    end: str                      # "passes", "resign", "max_moves" or "failure"
    failure: str | None = None    # why the loser failed ("failure" games)
    failed: str | None = None     # "A" or "B": who failed
    sgf: str | None = None        # the SGF file's path
    eye_passes: int = 0           # moves the eye rule played as passes (eye_fill_passes)


@dataclass
class PairResult:
    index: int                    # the pair's number in launch order
    opening: list[str]            # GTP vertices, black first
    games: list[GameResult]       # the two games (A black in one, white in the other)

    @property
    def score_a(self) -> float:
        """A's points in the pair, 0..2 in steps of 0.5 (the pentanomial outcome)."""
        return sum(g.score_a for g in self.games)


@dataclass
class HeadToHeadResult:
    a: str                        # A's name
    b: str                        # B's name
    size: int
    komi: float
    seed: int
    opening_source: str           # the book used, or why seeded random openings were
    pairs: list[PairResult] = field(default_factory=list)  # finished pairs, in finish order
    failures: list[dict] = field(default_factory=list)     # {game, player, name, reason}
    wall_s: float = 0.0           # from both players ready to the last game
    startup_s: float = 0.0        # starting both processes (hello answered)
    stopped_early: bool = False   # should_stop returned True
    abandoned_pairs: int = 0      # pairs started but not finished when it stopped

    @property
    def games(self) -> int:
        return 2 * len(self.pairs)

    @property
    def score_a(self) -> float:
        """A's total points (1 per win, 0.5 per draw)."""
        return sum(p.score_a for p in self.pairs)

    @property
    def wins_draws_losses(self) -> tuple[int, int, int]:
        s = [g.score_a for p in self.pairs for g in p.games]
        return s.count(1.0), s.count(0.5), s.count(0.0)

    @property
    def pentanomial(self) -> list[int]:
        """Pairs with A scoring 0, 0.5, 1, 1.5, 2 points."""
        counts = [0] * 5
        for p in self.pairs:
            counts[int(round(2 * p.score_a))] += 1
        return counts

    @property
    def score_rate(self) -> float:
        """A's mean points per game (0.5 = even)."""
        return self.score_a / self.games if self.games else float("nan")

    @property
    def score_rate_ci95(self) -> tuple[float, float]:
        """Normal 95% interval of the score rate from the pair scores' spread (pairs are the
        independent units: the two games of a pair share an opening)."""
        n = len(self.pairs)
        if n < 2:
            return (0.0, 1.0)
        x = np.array([p.score_a / 2 for p in self.pairs])
        half = Z95 * x.std(ddof=1) / math.sqrt(n)
        return (max(0.0, x.mean() - half), min(1.0, x.mean() + half))

    @property
    def games_per_min(self) -> float:
        return 60.0 * self.games / self.wall_s if self.wall_s > 0 else float("nan")

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(games=self.games, score_a=self.score_a, score_rate=self.score_rate,
                 score_rate_ci95=list(self.score_rate_ci95),
                 wins_draws_losses=list(self.wins_draws_losses), pentanomial=self.pentanomial,
                 games_per_min=self.games_per_min)
        for p, pd in zip(self.pairs, d["pairs"]):
            pd["score_a"] = p.score_a
        return d


def choose_openings(size: int, pairs: int, seed: int) -> tuple[list[list[int]], str]:
    """`pairs` openings for a match and where they come from; `seed` picks which, in which
    order and under which symmetry (the book is used without repeats until it runs out)."""
    book = load_openings(size)
    rng = np.random.default_rng([seed, 0x4832])
    if not book:
        return (random_openings(size, pairs, int(rng.integers(2 ** 31))),
                f"random: no opening book ships for {size}x{size}; seeded random openings "
                f"(2-6 moves off the first line), not judged balanced")
    chosen = []
    while len(chosen) < pairs:
        for i in rng.permutation(len(book))[:pairs - len(chosen)]:
            k = int(rng.integers(N_SYMMETRIES))
            chosen.append([transform_move(m, k, size) for m in book[i]])
    return chosen, f"book {size}x{size} ({len(book)} KataGo-balanced openings, random symmetry)"


class _PairGame:
    __slots__ = ("gid", "pair", "a_black", "board", "result", "eye_passes")

    def __init__(self, gid: str, pair: int, a_black: bool, board: Board):
        self.gid, self.pair, self.a_black, self.board = gid, pair, a_black, board
        self.result: GameResult | None = None
        self.eye_passes = 0           # moves the eye rule turned into passes

    def to_move(self) -> str:
        return "A" if (self.board.to_play == BLACK) == self.a_black else "B"


def fills_own_eye(board: Board, move: int) -> bool:
    """Whether `move` fills a single-point eye of the player to move (`go_core.game.eyes`)."""
    size = board.size
    if not 0 <= move < size * size:
        return False
    return bool(own_eye_mask(board.stones, board.to_play, size)[move])


def play_head_to_head(a: BatchPlayerSpec, b: BatchPlayerSpec, pairs: int, *, size: int = 9,
                      komi: float = 7.0, seed: int = 0,
                      pairs_at_once: int = DEFAULT_PAIRS_AT_ONCE, max_moves: int | None = None,
                      sgf_dir: str | Path | None = None,
                      should_stop: Callable[[list[PairResult]], bool] | None = None,
                      temperature: float = 0.0, timeout_s: float = 120.0,
                      start_timeout_s: float = 120.0, max_restarts: int = 3,
                      openings: list[list[int]] | None = None,
                      eye_fill_passes: bool = True,
                      log: Callable[[str], None] | None = None) -> HeadToHeadResult:
    """Play up to `pairs` colour-swapped game pairs between A and B (see the module docstring).

    pairs_at_once -- pairs in flight (each player gets up to that many positions per request)
    max_moves     -- move cap per game, opening included (default 3*size*size)
    sgf_dir       -- where every game is saved as <game_id>.sgf (None: not saved)
    temperature   -- sent to both players (0: their best move; > 0 samples)
    timeout_s     -- per moves request; start_timeout_s -- for a player's start and hello
    openings      -- override the book (lists of move numbers), e.g. for tests
    eye_fill_passes -- a move filling the mover's own single-point eye is played as a pass (the
                     referee's rule for both sides; see the module docstring). False: Tromp-Taylor
                     as it is, for tests and for measuring what the rule changes
    """
    if pairs < 1:
        raise ValueError(f"pairs must be >= 1, got {pairs}")
    max_moves = 3 * size * size if max_moves is None else int(max_moves)
    if openings is None:
        openings, source = choose_openings(size, pairs, seed)
    else:
        openings, source = [list(o) for o in openings], "given by the caller"
        openings = (openings * (pairs // max(1, len(openings)) + 1))[:pairs]
    colour_rng = np.random.default_rng([seed, 0xC0102])
    out_dir = Path(sgf_dir) if sgf_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    res = HeadToHeadResult(a.name, b.name, size, float(komi), seed, source)
    specs = {"A": a, "B": b}

    t0 = time.monotonic()
    clients: dict[str, BatchPlayerClient] = {}
    dead: dict[str, str] = {}   # role -> why it no longer plays (its games are lost)
    for role, spec in specs.items():
        try:
            clients[role] = BatchPlayerClient(spec, timeout_s, start_timeout_s, temperature,
                                              max_restarts)
        except PlayerFailed as e:
            dead[role] = str(e)
    res.startup_s = time.monotonic() - t0
    t0 = time.monotonic()

    active: dict[str, _PairGame] = {}
    open_pairs: dict[int, list[_PairGame]] = {}
    next_pair = 0
    stop = False

    def launch() -> None:
        nonlocal next_pair
        while not stop and next_pair < pairs and len(open_pairs) < pairs_at_once:
            p = next_pair
            next_pair += 1
            opening = openings[p]
            a_black_first = bool(colour_rng.random() < 0.5)
            games = []
            for g in range(2):
                board = Board(size, komi)
                for m in opening:
                    board.play(m)   # IllegalMoveError: a bad opening is the caller's bug
                game = _PairGame(f"p{p}g{g}", p, a_black_first == (g == 0), board)
                games.append(game)
                active[game.gid] = game
            open_pairs[p] = games

    def finish(game: _PairGame, end: str, failed: str | None = None, reason: str | None = None) -> None:
        board = game.board
        a_colour = BLACK if game.a_black else WHITE
        if failed is not None:
            winner = a_colour if failed == "B" else 3 - a_colour
            result = f"{'BW'[winner - 1]}+F"
            res.failures.append({"game": game.gid, "player": failed, "name": specs[failed].name,
                                 "reason": reason})
        else:
            winner = board.winner()
            result = board.result()
        score = 0.5 if winner == EMPTY else float(winner == a_colour)
        path = None
        if out_dir is not None:
            path = str(out_dir / f"{game.gid}.sgf")
            _write_game(path, game, specs, result, end, reason, len(openings[game.pair]))
        game.result = GameResult(game.gid, "b" if game.a_black else "w", score, result,
                                 board.move_number, end, reason, failed, path, game.eye_passes)
        del active[game.gid]
        for c in clients.values():
            c.forget([game.gid])

    try:
        launch()
        while active:
            asks: dict[str, dict[str, Board]] = {"A": {}, "B": {}}
            for game in list(active.values()):
                role = game.to_move()
                if role in dead:
                    finish(game, "failure", role, dead[role])
                else:
                    asks[role][game.gid] = game.board
            roles = [r for r in ("A", "B") if asks[r]]
            for role in roles:      # both players think at the same time
                clients[role].submit(asks[role])
            for role in roles:
                try:
                    moves, failures = clients[role].collect()
                except PlayerFailed as e:
                    dead[role] = str(e)
                    moves, failures = {}, {gid: str(e) for gid in asks[role]}
                for gid, reason in failures.items():
                    finish(active[gid], "failure", role, reason)
                for gid, m in moves.items():
                    game = active[gid]
                    if m == RESIGN:
                        game.board.resign()
                        finish(game, "resign")
                        continue
                    if eye_fill_passes and fills_own_eye(game.board, m):
                        m = size * size
                        game.eye_passes += 1
                    game.board.play(m)
                    if game.board.is_over:
                        finish(game, "passes")
                    elif game.board.move_number >= max_moves:
                        finish(game, "max_moves")
            done_now = [p for p, games in open_pairs.items() if all(g.result for g in games)]
            for p in done_now:
                games = open_pairs.pop(p)
                res.pairs.append(PairResult(p, [move_to_gtp(m, size) for m in openings[p]],
                                            [g.result for g in games]))
            if done_now:
                if log:
                    log(f"{len(res.pairs)} pairs done, A scores {res.score_a:g}/{res.games}")
                if should_stop is not None and should_stop(list(res.pairs)):
                    stop = res.stopped_early = True
                    res.abandoned_pairs = len(open_pairs)
                    break
            launch()
    finally:
        res.wall_s = time.monotonic() - t0
        for c in clients.values():
            c.close()
    return res


def _write_game(path: str, game: _PairGame, specs: dict, result: str, end: str,
                reason: str | None, opening_moves: int) -> None:
    from go_core.game.sgf import record_from_board, write_sgf
    black, white = ("A", "B") if game.a_black else ("B", "A")
    comment = (f"head-to-head {game.gid}: A={specs['A'].name}, B={specs['B'].name}; "
               f"the first {opening_moves} moves are the opening; ended by {end}")
    if game.eye_passes:
        comment += (f"; {game.eye_passes} move(s) filling the mover's own eye were played as "
                    f"passes (the referee's eye rule)")
    if reason:
        comment += f"; failure: {reason}"
    rec = record_from_board(game.board, black=specs[black].name, white=specs[white].name,
                            result=result, root_comment=comment)
    write_sgf(path, rec)
