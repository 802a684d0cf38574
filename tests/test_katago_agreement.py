"""Our rules engine against KataGo (GTP, rules tromp-taylor) on the same random move attempts.

At every turn a move is attempted on both: a random point (often occupied), an empty point, an
immediate ko retake when the last move captured one stone, a point inside the opponent's
single-point eye (suicide), or now and then a pass. Both must accept or refuse every attempt
alike. Each game then plays on as random players do until two passes end it, and both must
give the same `final_score`.

Why play on: even after two passes KataGo's score is not pure Tromp-Taylor: it removes stones
standing in the opponent's pass-alive territory (Benson's unconditional life), where
Tromp-Taylor, and our engine, count every stone on the board. Once every chain has two eyes
the two scores are the same; `test_katago_scoring_removes_stones_in_pass_alive_territory`
shows the difference on a hand-made board.

KataGo's GTP `play` is more lenient than its rules (seen with 1.18.1, rules tromp-taylor):
it refuses occupied points and single-stone suicide, but accepts ko retakes and other
positional-superko violations. So where we refuse a ko/superko move and KataGo's `play`
accepts it, the move is taken back (`undo`) and KataGo's strict rules are asked instead:
`kata-raw-nn` prints the net's policy masked by the full rules (NAN = illegal). Every
`legal_set_every` moves the whole legal set of the position is compared that way as well.
`test_ko_suicide_and_superko_against_katagos_rules` shows each case on a hand-made board.
"""
from __future__ import annotations

import collections
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from go_core.arena import engines
from go_core.game.board import BLACK, WHITE, Board, IllegalMoveError
from go_core.game.coords import gtp_to_move, move_to_gtp
from go_core.arena.gtp_client import GTPClient, GTPError
from go_core.arena.players import RandomPlayer
from go_core.game.sgf import GameRecord, write_sgf

SIZES = (5, 7, 9, 19)
KOMI = 7.5


@pytest.fixture(scope="module")
def katago():
    """One KataGo GTP process for the module (1 visit: no search is needed for rules questions)."""
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
    moves: int = 0
    attempts: int = 0
    accepted: int = 0
    refused: collections.Counter = field(default_factory=collections.Counter)
    suicides_played: int = 0
    lenient_play: collections.Counter = field(default_factory=collections.Counter)
    strict_checks: int = 0
    legal_sets_compared: int = 0
    scores_compared: int = 0
    disagreements: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, other: "Tally") -> None:
        self.games += other.games
        self.moves += other.moves
        self.attempts += other.attempts
        self.accepted += other.accepted
        self.refused.update(other.refused)
        self.suicides_played += other.suicides_played
        self.lenient_play.update(other.lenient_play)
        self.strict_checks += other.strict_checks
        self.legal_sets_compared += other.legal_sets_compared
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


def katago_strict_legal(katago: GTPClient, size: int) -> np.ndarray:
    """(size*size,) bool: the points KataGo's own rules allow the side to move.

    `kata-raw-nn` masks the net's policy with the full rules (`BoardHistory::isLegal`,
    positional superko included) and prints NAN for every illegal point, row 0 on top.
    """
    lines = katago.send("kata-raw-nn 0").splitlines()
    start = lines.index("policy") + 1
    values = [tok for line in lines[start:start + size] for tok in line.split()]
    assert len(values) == size * size, lines[start:start + size]
    return np.array([v.upper() != "NAN" for v in values])


def compare_games(katago: GTPClient, size: int, n_games: int, seed: int,
                  max_moves: int | None = None, legal_set_every: int = 0) -> Tally:
    """Play `n_games` random games on both engines; see the module docstring.

    A game has two phases. First random move attempts (up to `max_moves` moves, default
    2*size*size), legal and illegal, each tried on both engines. Then both sides play on as
    the random player does (legal moves that do not fill one's own single-point eye, else pass)
    until two passes end the game: every chain then has two eyes, so KataGo's scoring (which
    also removes stones standing in the opponent's pass-alive territory) and pure
    Tromp-Taylor must agree exactly. Wherever we refuse a ko/superko move, and every
    `legal_set_every` moves (0 = never), the whole legal set is compared with KataGo's strict one.
    """
    rng = np.random.default_rng(seed)
    n_points, pass_move = size * size, size * size
    max_moves = max_moves or 2 * n_points
    tally = Tally()
    t0 = time.perf_counter()
    katago.send(f"boardsize {size}")
    katago.send(f"komi {KOMI}")

    def disagree(game: int, board: Board, what: str) -> None:
        tally.disagreements.append(f"{size}x{size} game {game} move {board.move_number + 1} "
                                   f"({'BW'[board.to_play - 1]} to play): {what}\n{board.to_ascii()}")

    def compare_legal_sets(game: int, board: Board, theirs: np.ndarray) -> bool:
        ours = board.legal_mask()[:n_points]
        tally.legal_sets_compared += 1
        if np.array_equal(theirs, ours):
            return True
        disagree(game, board, "legal sets differ: we allow "
                 f"{[move_to_gtp(int(p), size) for p in np.flatnonzero(ours & ~theirs)]}, KataGo allows "
                 f"{[move_to_gtp(int(p), size) for p in np.flatnonzero(theirs & ~ours)]}")
        return False

    for game in range(n_games):
        katago.send("clear_board")
        board = Board(size, KOMI)
        cleanup = RandomPlayer(seed=int(rng.integers(2 ** 31)))
        ko_point = None
        diverged = False
        failed_tries = 0
        while not board.is_over and not diverged:
            stones, me = board.stones, board.to_play
            empty = np.flatnonzero(stones == 0)
            r = rng.random()
            if board.move_number >= max_moves or failed_tries >= 50:
                m = cleanup.genmove(board)                     # the second phase
            elif r < 0.02 and board.passes == 0:
                m = pass_move
            elif ko_point is not None and r < 0.5:
                m = ko_point                                   # the immediate ko retake
            elif r < 0.3 or empty.size == 0:
                m = int(rng.integers(n_points))                # anywhere, often occupied
            elif r < 0.4:                                      # into the opponent's eye
                eyes = [p for p in empty if all(stones[q] == 3 - me for q in _neighbours(p, size))]
                m = int(rng.choice(eyes)) if eyes else int(rng.choice(empty))
            else:
                m = int(rng.choice(empty))
            if m == pass_move and board.passes == 1 and board.move_number < max_moves and failed_tries < 50:
                continue  # no early end: two passes come at the end of the second phase
            ours = board.is_legal(m)
            reason = None if ours else classify_refusal(board, m, ko_point)
            theirs = _katago_play(katago, me, m, size)
            tally.attempts += 1
            if not ours and theirs:
                # KataGo's GTP `play` does not check ko or superko under positional rules
                # (it is tolerant of what a controller reports); take the move back and ask its
                # strict rules instead.
                katago.send("undo")
                if reason not in ("ko", "superko"):
                    disagree(game, board, f"{move_to_gtp(m, size)}: we refuse ({reason}), KataGo plays it")
                    diverged = True
                    continue
                tally.lenient_play[reason] += 1
                strict = katago_strict_legal(katago, size)
                tally.strict_checks += 1
                if strict[m] or not compare_legal_sets(game, board, strict):
                    disagree(game, board, f"{move_to_gtp(m, size)}: we refuse ({reason}), KataGo's rules "
                                          f"{'allow' if strict[m] else 'refuse'} it")
                    diverged = True
                    continue
                theirs = False
            if ours != theirs:
                disagree(game, board, f"{move_to_gtp(m, size)}: ours={'legal' if ours else reason} "
                                      f"katago={'legal' if theirs else 'illegal'}")
                diverged = True
                continue
            if not ours:
                tally.refused[reason] += 1
                failed_tries += 1
                continue
            tally.accepted += 1
            failed_tries = 0
            board.play(m)
            captured = np.flatnonzero((stones == 3 - me) & (board.stones == 0))
            ko_point = int(captured[0]) if captured.size == 1 else None
            if m != pass_move and board.stones[m] == 0:
                tally.suicides_played += 1  # a legal multi-stone suicide (Tromp-Taylor)
            if legal_set_every and board.move_number % legal_set_every == 0 and not board.is_over:
                diverged = not compare_legal_sets(game, board, katago_strict_legal(katago, size))
        tally.games += 1
        tally.moves += board.move_number
        if diverged:
            continue
        theirs, ours = katago.send("final_score"), board.result()
        tally.scores_compared += 1
        if theirs != ours:
            tally.disagreements.append(f"{size}x{size} game {game}: final_score katago={theirs} "
                                       f"ours={ours}\n{board.to_ascii()}")
    tally.seconds = time.perf_counter() - t0
    return tally


def run_comparison(katago: GTPClient, games_per_size: int, seed: int, legal_set_every: int = 0) -> Tally:
    total = Tally()
    for i, size in enumerate(SIZES):
        total.add(compare_games(katago, size, games_per_size, seed=seed + i, legal_set_every=legal_set_every))
    report = {"games": total.games, "moves": total.moves, "attempts": total.attempts, "accepted": total.accepted,
              "refused": dict(total.refused), "suicides_played": total.suicides_played,
              "katago_play_accepted_then_undone": dict(total.lenient_play),
              "strict_checks": total.strict_checks, "legal_sets_compared": total.legal_sets_compared,
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


def _setup(katago: GTPClient, size: int, moves: list[tuple[str, str]]) -> Board:
    katago.send(f"boardsize {size}")
    katago.send("clear_board")
    board = Board(size, KOMI)
    for colour, v in moves:
        katago.send(f"play {colour} {v}")
        board.play(gtp_to_move(v, size))
    return board


def _play_and_undo(katago: GTPClient, colour: int, m: int, size: int) -> bool:
    accepted = _katago_play(katago, colour, m, size)
    if accepted:
        katago.send("undo")
    return accepted


@pytest.mark.katago
def test_ko_suicide_and_superko_against_katagos_rules(katago, capsys):
    """Hand-made positions for each kind of refusal, asked of KataGo two ways: its GTP `play`
    and its strict rules (`kata-raw-nn` policy mask). Seen with KataGo 1.18.1, rules
    tromp-taylor: `play` refuses occupied points and single-stone suicide but accepts ko
    retakes and other positional-superko violations (GTP `play` is tolerant of what a
    controller reports); the strict rules refuse all of them."""
    seen = {}
    # a ko on 5x5: after black D3 captures C3, white may not retake at C3 at once
    board = _setup(katago, 5, [("b", "B3"), ("w", "C3"), ("b", "C2"), ("w", "D2"), ("b", "C4"),
                               ("w", "D4"), ("b", "A1"), ("w", "E3"), ("b", "D3")])
    c3 = gtp_to_move("C3", 5)
    assert classify_refusal(board, c3, ko_point=c3) == "ko"
    assert not katago_strict_legal(katago, 5)[c3]
    seen["ko retake: play accepts"] = _play_and_undo(katago, WHITE, c3, 5)
    # a single-stone suicide: white into black's corner eye
    board = _setup(katago, 5, [("b", "A2"), ("w", "E5"), ("b", "B1"), ("w", "E4"), ("b", "C5")])
    a1 = gtp_to_move("A1", 5)
    assert classify_refusal(board, a1, None) == "suicide"
    assert _play_and_undo(katago, WHITE, a1, 5) is False
    assert not katago_strict_legal(katago, 5)[a1]
    # positional superko that is no ko: white wall A2 B2 C1; black A1, white passes, black B1
    # would remove both black stones and bring back the position after white's C1
    board = _setup(katago, 5, [("b", "E5"), ("w", "A2"), ("b", "E4"), ("w", "B2"), ("b", "E3"),
                               ("w", "C1"), ("b", "A1"), ("w", "pass")])
    b1 = gtp_to_move("B1", 5)
    assert classify_refusal(board, b1, None) == "superko" and not board.is_legal(b1)
    assert not katago_strict_legal(katago, 5)[b1]
    seen["superko (2-stone suicide repeating a position): play accepts"] = _play_and_undo(katago, BLACK, b1, 5)
    # once black D2 and white E1 are on the board, the same two-stone suicide makes a new
    # position: legal in Tromp-Taylor (suicide allowed), in both engines
    for colour, v in [("b", "D2"), ("w", "E1")]:
        katago.send(f"play {colour} {v}")
        board.play(gtp_to_move(v, 5))
    assert board.is_legal(b1) and katago_strict_legal(katago, 5)[b1]
    assert _katago_play(katago, BLACK, b1, 5) is True
    board.play(b1)
    assert board.stones[gtp_to_move("A1", 5)] == 0 and board.stones[b1] == 0  # suicided
    with capsys.disabled():
        print("\nKataGo", katago.send("version"), "behaviour:", json.dumps(seen))


@pytest.mark.katago
def test_katago_scoring_removes_stones_in_pass_alive_territory(katago, tmp_path):
    """Where KataGo's score is not pure Tromp-Taylor: after two passes it still removes stones
    standing in the opponent's pass-alive territory (Benson), here white E1 inside black's
    two-eyed wall; Tromp-Taylor (and our engine) counts every stone on the board as alive.
    This is why the random games end by playing on until every chain has two eyes."""
    ascii_board = """
        ...XX
        O..X.
        XXXXX
        XXXX.
        ...XO"""
    board = Board.from_ascii(ascii_board, komi=KOMI)
    path = tmp_path / "pass_alive.sgf"
    write_sgf(path, GameRecord(size=5, komi=KOMI, first_player=BLACK,
                               setup_black=np.flatnonzero(board.stones == BLACK).tolist(),
                               setup_white=np.flatnonzero(board.stones == WHITE).tolist()))
    katago.send(f"loadsgf {path}")
    katago.send("play b pass")
    katago.send("play w pass")
    board.play(25)
    board.play(25)
    # black: 13 stones + A1 B1 C1 + E4 = 17; white: A4 E1 = 2; E2 and the top-left are dame
    assert board.result() == "B+7.5"
    # KataGo also takes E1 off and gives black E1 and E2: 19 - 1 - 7.5
    assert katago.send("final_score") == "B+10.5"


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
    total = run_comparison(katago, games_per_size=games_per_size, seed=777, legal_set_every=100)
    _assert_agreement(total, games_per_size * len(SIZES))
    assert total.refused["superko"] > 0, f"no long-cycle superko was met: {dict(total.refused)}"
