"""Our rules engine against KataGo (GTP, rules tromp-taylor) on the same random move attempts.

At every turn a move is attempted on both: a random point (often occupied), an empty point, an
immediate ko retake when the last move captured one stone, a point inside the opponent's
single-point eye (suicide), or now and then a pass. Both must accept or refuse every attempt
alike; each game ends with two passes and both must give the same `final_score` (after two
passes KataGo scores Tromp-Taylor area, with no dead-stone guessing).

What KataGo's GTP `play` enforces was checked by hand with the positions in
`test_katago_play_refuses_positional_superko_beyond_simple_ko` (see its docstring), so the
random comparison holds KataGo to the whole rule set, positional superko included.
"""
from __future__ import annotations

import collections
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from go_core import engines
from go_core.board import BLACK, WHITE, Board, IllegalMoveError
from go_core.coords import gtp_to_move, move_to_gtp
from go_core.gtp_client import GTPClient, GTPError

SIZES = (5, 7, 9, 19)
KOMI = 7.5


@pytest.fixture(scope="module")
def katago():
    """One KataGo GTP process (1 visit: only `play`, `final_score` and `clear_board` are used)."""
    try:
        argv = engines.katago_command(visits=1)
    except engines.EngineNotFound as e:
        pytest.skip(f"KataGo cannot be located: {e}")
    # The first start on a machine tunes OpenCL kernels (about a minute; cached in ~/.katago).
    client = GTPClient(argv, timeout_s=60, start_timeout_s=900, name="katago")
    try:
        client.send("name")
        yield client
    finally:
        client.close()


# ----------------------------------------------------------------------------- helpers
def _neighbours(m: int, size: int) -> list[int]:
    r, c = divmod(m, size)
    out = []
    if r > 0:
        out.append(m - size)
    if r < size - 1:
        out.append(m + size)
    if c > 0:
        out.append(m - 1)
    if c < size - 1:
        out.append(m + 1)
    return out


def _chain_liberties(stones: np.ndarray, start: int, size: int) -> set[int]:
    colour, seen, todo, libs = stones[start], {start}, [start], set()
    while todo:
        p = todo.pop()
        for q in _neighbours(p, size):
            if stones[q] == 0:
                libs.add(q)
            elif stones[q] == colour and q not in seen:
                seen.add(q)
                todo.append(q)
    return libs


def classify_refusal(board: Board, m: int, ko_point: int | None) -> str:
    """Why our engine refuses `m`: occupied, ko (simple retake), suicide (single stone), superko."""
    try:
        board.copy().play(m)
    except IllegalMoveError as e:
        reason = e.reason
    else:
        return "legal"
    if reason != "superko":
        return reason
    stones, size, opp = board.stones, board.size, 3 - board.to_play
    captures = any(stones[q] == opp and _chain_liberties(stones, q, size) == {m}
                   for q in _neighbours(m, size))
    if captures and m == ko_point:
        return "ko"
    if not captures and all(stones[q] == opp for q in _neighbours(m, size)):
        return "suicide"
    return "superko"


@dataclass
class Tally:
    """What one comparison run saw."""

    games: int = 0
    attempts: int = 0
    accepted: int = 0
    refused: collections.Counter = field(default_factory=collections.Counter)
    suicides_played: int = 0
    scores_compared: int = 0
    disagreements: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, other: "Tally") -> None:
        self.games += other.games
        self.attempts += other.attempts
        self.accepted += other.accepted
        self.refused.update(other.refused)
        self.suicides_played += other.suicides_played
        self.scores_compared += other.scores_compared
        self.disagreements += other.disagreements
        self.seconds += other.seconds


def _katago_play(katago: GTPClient, colour: int, m: int, size: int) -> bool:
    try:
        katago.send(f"play {'bw'[colour - 1]} {move_to_gtp(m, size)}")
        return True
    except GTPError as e:
        assert "illegal move" in e.message, e.message
        return False


def compare_games(katago: GTPClient, size: int, n_games: int, seed: int,
                  max_moves: int | None = None) -> Tally:
    """Play `n_games` random games on both engines; see the module docstring."""
    rng = np.random.default_rng(seed)
    n_points, pass_move = size * size, size * size
    max_moves = max_moves or 3 * n_points
    tally = Tally()
    t0 = time.perf_counter()
    katago.send(f"boardsize {size}")
    katago.send(f"komi {KOMI}")
    for game in range(n_games):
        katago.send("clear_board")
        board = Board(size, KOMI)
        ko_point = None
        diverged = False
        failed_tries = 0
        while board.move_number < max_moves and not board.is_over:
            stones, me = board.stones, board.to_play
            empty = np.flatnonzero(stones == 0)
            r = rng.random()
            if (r < 0.02 and board.passes == 0) or failed_tries >= 50:
                m = pass_move
            elif ko_point is not None and r < 0.5:
                m = ko_point
            elif r < 0.3 or empty.size == 0:
                m = int(rng.integers(n_points))                # anywhere, often occupied
            elif r < 0.4:
                eyes = [p for p in empty if all(stones[q] == 3 - me for q in _neighbours(p, size))]
                m = int(rng.choice(eyes)) if eyes else int(rng.choice(empty))
            else:
                m = int(rng.choice(empty))
            ours = board.is_legal(m)
            theirs = _katago_play(katago, me, m, size)
            tally.attempts += 1
            if ours != theirs:
                tally.disagreements.append(
                    f"{size}x{size} game {game} move {board.move_number + 1}: "
                    f"{'BW'[me - 1]} {move_to_gtp(m, size)} ours={'legal' if ours else 'illegal'} "
                    f"katago={'legal' if theirs else 'illegal'} ({classify_refusal(board, m, ko_point)})\n"
                    f"{board.to_ascii()}")
                diverged = True
                break
            if not ours:
                tally.refused[classify_refusal(board, m, ko_point)] += 1
                failed_tries += 1
                continue
            tally.accepted += 1
            failed_tries = 0
            before = stones
            board.play(m)
            captured = np.flatnonzero((before == 3 - me) & (board.stones == 0))
            ko_point = int(captured[0]) if captured.size == 1 else None
            if m != pass_move and board.stones[m] == 0:
                tally.suicides_played += 1  # a legal multi-stone suicide (Tromp-Taylor)
        tally.games += 1
        if diverged:
            continue
        while not board.is_over:  # end with two passes: KataGo then scores by Tromp-Taylor
            colour = board.to_play
            board.play(pass_move)
            assert _katago_play(katago, colour, pass_move, size)
        theirs, ours = katago.send("final_score"), board.result()
        tally.scores_compared += 1
        if theirs != ours:
            tally.disagreements.append(f"{size}x{size} game {game}: final_score katago={theirs} "
                                       f"ours={ours}\n{board.to_ascii()}")
    tally.seconds = time.perf_counter() - t0
    return tally


def run_comparison(katago: GTPClient, games_per_size: int, seed: int) -> Tally:
    total = Tally()
    for i, size in enumerate(SIZES):
        total.add(compare_games(katago, size, games_per_size, seed=seed + i))
    report = {"games": total.games, "attempts": total.attempts, "accepted": total.accepted,
              "refused": dict(total.refused), "suicides_played": total.suicides_played,
              "scores_compared": total.scores_compared,
              "disagreements": len(total.disagreements), "seconds": round(total.seconds, 1)}
    print("katago agreement:", json.dumps(report))
    return total


def _assert_agreement(total: Tally, games: int) -> None:
    assert not total.disagreements, "\n\n".join(total.disagreements[:5])
    assert total.games == games and total.scores_compared == games
    # the comparison only means something if every kind of illegal move was attempted
    for reason in ("occupied", "ko", "suicide"):
        assert total.refused[reason] > 0, f"no {reason} refusal was attempted: {dict(total.refused)}"


# ----------------------------------------------------------------------------- tests
@pytest.mark.katago
def test_written_config_gives_tromp_taylor_rules(katago):
    rules = json.loads(katago.send("kata-get-rules"))
    assert rules["ko"] == "POSITIONAL" and rules["scoring"] == "AREA"
    assert rules["suicide"] is True and rules["tax"] == "NONE" and rules["hasButton"] is False


@pytest.mark.katago
def test_katago_play_refuses_positional_superko_beyond_simple_ko(katago):
    """KataGo's GTP `play` refuses a move that recreates an earlier position even when it is
    not a ko retake: here a two-stone suicide that brings back the position of three plies ago.
    Our engine refuses it too; a multi-stone suicide that repeats nothing is legal in both."""
    katago.send("boardsize 5")
    katago.send("clear_board")
    board = Board(5, KOMI)
    # white wall A2 B2 C1 around A1/B1; black elsewhere; black A1, white passes, black B1 would
    # remove both black stones and repeat the position after white's C1.
    for colour, v in [("b", "E5"), ("w", "A2"), ("b", "E4"), ("w", "B2"), ("b", "E3"),
                      ("w", "C1"), ("b", "A1"), ("w", "pass")]:
        katago.send(f"play {colour} {v}")
        board.play(gtp_to_move(v, 5))
    b1 = gtp_to_move("B1", 5)
    assert classify_refusal(board, b1, None) == "superko"
    assert not board.is_legal(b1)
    assert _katago_play(katago, BLACK, b1, 5) is False
    # once black D2 and white E1 are on the board, the same two-stone suicide makes a new
    # position: legal in Tromp-Taylor (suicide allowed), in both engines
    for colour, v in [("b", "D2"), ("w", "E1")]:
        katago.send(f"play {colour} {v}")
        board.play(gtp_to_move(v, 5))
    assert board.is_legal(b1) and _katago_play(katago, BLACK, b1, 5) is True
    board.play(b1)
    assert board.stones[gtp_to_move("A1", 5)] == 0 and board.stones[b1] == 0  # suicided


@pytest.mark.katago
def test_agreement_with_katago_small(katago):
    """20 games (5 per size 5, 7, 9, 19): every attempted move and every final score agree."""
    total = run_comparison(katago, games_per_size=5, seed=20261124)
    _assert_agreement(total, 20)


@pytest.mark.katago
@pytest.mark.slow
def test_agreement_with_katago_200_games(katago):
    """The full comparison: 200 games, 50 per size."""
    games_per_size = int(os.environ.get("TENGEN_AGREEMENT_GAMES_PER_SIZE", "50"))
    total = run_comparison(katago, games_per_size=games_per_size, seed=777)
    _assert_agreement(total, games_per_size * len(SIZES))
    assert total.refused["superko"] > 0, f"no long-cycle superko was met: {dict(total.refused)}"
