"""SGF: round trips through sgfmill, errors that say where, and files written by GNU Go and KataGo."""
from __future__ import annotations

import numpy as np
import pytest

from go_core.arena import engines
from go_core.game.board import BLACK, WHITE, Board
from go_core.game.coords import gtp_to_move, move_to_gtp
from go_core.arena.gtp_client import GTPClient
from go_core.arena.players import RandomPlayer
from go_core.game.sgf import (GameRecord, SGFError, parse_sgf, read_sgf, record_from_board,
                         record_to_board, to_sgf, write_sgf)


def random_game(size: int, seed: int, max_moves: int | None = None) -> Board:
    board, player = Board(size, 7.5), RandomPlayer(seed=seed)
    while not board.is_over and (max_moves is None or board.move_number < max_moves):
        board.play(player.genmove(board))
    return board


@pytest.mark.parametrize("size,seed", [(5, 1), (9, 2), (13, 3), (19, 4)])
def test_round_trip_of_finished_random_games(size, seed, tmp_path):
    board = random_game(size, seed)
    comments = [f"move {i + 1}" if i % 7 == 0 else "" for i in range(board.move_number)]
    rec = record_from_board(board, black="alice", white="bob [the bot]", comments=comments,
                            root_comment="a test game\nwith two lines", date="2026-11-24")
    assert rec.result == board.result() and rec.moves[-1] == (rec.moves[-1][0], size * size)
    path = tmp_path / "g.sgf"
    write_sgf(path, rec)
    text = path.read_text()
    assert text.startswith("(;FF[4]") and f"SZ[{size}]" in text and "KM[7.5]" in text
    back = read_sgf(path)
    assert back == rec  # every field, moves, passes and comments included
    replay = record_to_board(back)
    assert np.array_equal(replay.stones, board.stones) and replay.history == board.history
    assert replay.is_over and replay.result() == board.result()


def test_passes_mid_game_resignation_and_setup_stones():
    rec = GameRecord(size=9, komi=0.5, rules="Chinese", black="B", white="W", result="W+R",
                     setup_black=sorted([gtp_to_move("C3", 9), gtp_to_move("G7", 9)]), first_player=WHITE,
                     moves=[(WHITE, gtp_to_move("E5", 9)), (BLACK, 81), (WHITE, gtp_to_move("D4", 9))],
                     extra={"GN": "handicap test", "EV": "unit tests"})
    back = parse_sgf(to_sgf(rec))
    assert back == rec
    board = record_to_board(back)
    assert board.stones[gtp_to_move("C3", 9)] == BLACK and board.stones[gtp_to_move("E5", 9)] == WHITE
    assert board.resigned == BLACK and board.result() == "W+R"  # RE[W+R] applied after the moves
    assert record_to_board(back, n_moves=1).move_number == 1


def test_reads_common_variants():
    # lower-case property names (old files), 'tt' pass, a variation (main line is followed),
    # comments on move nodes, no KM (komi 0), two black moves in a row (handicap style)
    text = b"""(;GaMe[1]SZ[5]PB[x]C[root];B[cc]C[centre];W[tt](;B[bb];W[dd]C[end])(;B[aa]))"""
    rec = parse_sgf(text)
    assert rec.size == 5 and rec.komi == 0.0 and rec.root_comment == "root"
    assert [move_to_gtp(m, 5) for _, m in rec.moves] == ["C3", "pass", "B4", "D2"]
    assert rec.comments == ["centre", "", "", "end"]
    rec2 = parse_sgf(b"(;SZ[5];B[aa];B[ee];W[cc])")
    board = record_to_board(rec2)
    assert board.stones[0] == BLACK and board.stones[24] == BLACK and board.stones[12] == WHITE


@pytest.mark.parametrize("data,expected", [
    (b"hello", "no SGF data found"),
    (b"(;SZ[9];B[aa];W[bb", r"value of property W at byte offset 15 \(line 1, column 16.* never closed"),
    (b"(;SZ[9]\n;B[aa]\n;W[bb]", "unexpected end of SGF data at byte offset 21"),
    (b"(;SZ[9];B[aa]W)", "property W has no value"),
    (b"(;SZ[9]()", "empty sequence"),
    (b"(;SZ[9];B[aa];W[jj])", r"move 2 \(node 2\): bad W value b'jj'"),      # off a 9x9 board
    (b"(;SZ[9];B[a])", r"move 1 \(node 1\): bad B value b'a'"),
    (b"(;SZ[x9];B[aa])", "bad SZ"),
    (b"(;SZ[26])", "SZ"),
    (b"(;SZ[9]KM[seven])", "bad KM .*'seven'"),
    (b"(;SZ[9];B[aa];AB[cc];W[dd])", r"node 2 \(after move 1\): setup stones"),
    (b"(;SZ[9]PL[X])", "bad PL"),
])
def test_malformed_files_say_where_and_what(data, expected):
    with pytest.raises(SGFError, match=expected):
        parse_sgf(data, source="x.sgf")


def test_illegal_move_in_record_names_the_move(tmp_path):
    rec = parse_sgf(b"(;SZ[5];B[cc];W[dd];B[cc])")
    with pytest.raises(SGFError, match=r"move 3: B\[C3\] is illegal: .*occupied"):
        record_to_board(rec)
    with pytest.raises(SGFError, match="cannot read SGF file"):
        read_sgf(tmp_path / "nope.sgf")


def test_record_from_unfinished_board_has_no_result():
    board = random_game(9, 7, max_moves=20)
    rec = record_from_board(board)
    assert rec.result == "" and len(rec.moves) == 20
    assert [c for c, _ in rec.moves[:4]] == [BLACK, WHITE, BLACK, WHITE]


def _play_random_moves_over_gtp(client: GTPClient, size: int, n: int, seed: int) -> Board:
    """Play `n` random legal moves on our board and on the engine; return our board."""
    board, player = Board(size, 7.5), RandomPlayer(seed=seed)
    client.send(f"boardsize {size}")
    client.send("clear_board")
    client.send("komi 7.5")
    for _ in range(n):
        m = player.genmove(board)
        colour = "b" if board.to_play == BLACK else "w"
        board.play(m)
        client.send(f"play {colour} {move_to_gtp(m, size)}")
    return board


@pytest.mark.gnugo
def test_reads_sgf_written_by_gnugo(tmp_path):
    try:
        argv = engines.gnugo_command(level=0)
    except engines.EngineNotFound as e:
        pytest.skip(f"GNU Go not installed: {e}")
    with GTPClient(argv, timeout_s=30) as g:
        board = _play_random_moves_over_gtp(g, 9, 40, seed=11)
        path = tmp_path / "gnugo.sgf"
        g.send(f"printsgf {path}")
        inline = g.send("printsgf")
    for rec in (read_sgf(path), parse_sgf(inline)):
        # GNU Go writes the position as setup stones (AB/AW) and who is to play (PL)
        assert rec.size == 9 and rec.komi == 7.5 and rec.rules == "Chinese" and rec.moves == []
        assert rec.first_player == board.to_play
        replay = record_to_board(rec)
        assert np.array_equal(replay.stones, board.stones) and replay.to_play == board.to_play


@pytest.mark.katago
def test_reads_sgf_written_by_katago(tmp_path):
    try:
        argv = engines.katago_command(visits=1)
    except engines.EngineNotFound as e:
        pytest.skip(f"KataGo cannot be located: {e}")
    with GTPClient(argv, timeout_s=60, start_timeout_s=600) as k:
        board = _play_random_moves_over_gtp(k, 9, 60, seed=12)
        k.send("play " + ("b" if board.to_play == BLACK else "w") + " pass")
        board.play(81)
        text = k.send("printsgf")
    rec = parse_sgf(text, source="katago printsgf")
    assert rec.size == 9 and rec.komi == 7.5 and len(rec.moves) == board.move_number
    assert [m for _, m in rec.moves] == board.history
    assert [c for c, _ in rec.moves][:2] == [BLACK, WHITE]
    replay = record_to_board(rec)
    assert np.array_equal(replay.stones, board.stones)


@pytest.mark.gnugo
def test_gnugo_reads_the_sgf_we_write(tmp_path):
    try:
        argv = engines.gnugo_command(level=0)
    except engines.EngineNotFound as e:
        pytest.skip(f"GNU Go not installed: {e}")
    board = random_game(9, 21, max_moves=70)
    path = tmp_path / "ours.sgf"
    write_sgf(path, record_from_board(board, black="a", white="b"))
    with GTPClient(argv, timeout_s=30) as g:
        assert g.send(f"loadsgf {path}") == ("black" if board.to_play == BLACK else "white")
        for colour, name in ((BLACK, "black"), (WHITE, "white")):
            theirs = sorted(gtp_to_move(v, 9) for v in g.send(f"list_stones {name}").split())
            assert theirs == sorted(np.flatnonzero(board.stones == colour).tolist())
