"""The GTP server, in-process (`GTPEngine.handle`) and as a subprocess over stdin/stdout."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from go_core.game import sgf
from go_core.game.board import Board
from go_core.game.coords import gtp_to_move, move_to_gtp
from go_core.arena.gtp_client import GTPClient, GTPError
from go_core.arena.gtp_server import GTPEngine, main
from go_core.arena.players import RandomPlayer, make_player

ROOT = Path(__file__).resolve().parents[1]


def engine(size=9, komi=7.0, seed=0) -> GTPEngine:
    return GTPEngine(make_player("random", seed=seed), size=size, komi=komi)


def test_protocol_basics_and_numbered_commands():
    e = engine()
    assert e.handle("protocol_version") == "= 2\n\n"
    assert e.handle("12 name") == "=12 Tengen\n\n"
    assert e.handle("7 play b D4") == "=7\n\n"
    assert e.handle("8 play w D4") == "?8 illegal move\n\n"
    assert e.handle("   ") is None and e.handle("# just a comment") is None
    assert e.handle("known_command genmove") == "= true\n\n"
    assert e.handle("known_command kata-analyze") == "= false\n\n"
    commands = e.handle("list_commands")[2:].split()
    for c in ("protocol_version name version known_command list_commands quit boardsize clear_board "
              "komi play genmove undo showboard final_score loadsgf printsgf").split():
        assert c in commands


def test_standard_error_answers_and_the_engine_keeps_serving():
    e = engine()
    assert e.handle("play b D4") == "=\n\n"
    assert e.handle("play w D4") == "? illegal move\n\n"
    assert e.handle("play w Z1") == "? invalid coordinate\n\n"
    assert e.handle("play w J10") == "? invalid coordinate\n\n"  # off a 9x9 board
    assert e.handle("play w I5") == "? invalid coordinate\n\n"   # GTP has no column I
    assert e.handle("boardsize 42") == "? unacceptable size\n\n"
    assert e.handle("boardsize 1") == "? unacceptable size\n\n"
    assert e.handle("frobnicate 3") == "? unknown command\n\n"
    assert e.handle("play purple D5").startswith("? syntax error")
    assert e.handle("komi lots").startswith("? syntax error")
    # after all that, the game goes on where it was
    assert e.board.move_number == 1 and e.board.to_play == 2
    assert e.handle("play w E5") == "=\n\n"


def test_play_genmove_undo_and_final_score_follow_the_rules():
    e = engine(size=5, komi=0.5)
    # a ko on 5x5: black captures at C3, white may not retake at once
    for line in ["play b B3", "play w C3", "play b C2", "play w D2",
                 "play b C4", "play w D4", "play b A1", "play w E3", "play b D3"]:
        assert e.handle(line) == "=\n\n", line
    assert e.board.stones[gtp_to_move("C3", 5)] == 0  # captured
    assert e.handle("play w C3") == "? illegal move\n\n"  # the ko retake
    assert e.handle("undo") == "=\n\n"  # take back D3: white's stone is back
    assert e.board.stones[gtp_to_move("C3", 5)] == 2 and e.board.to_play == 1
    # out-of-turn play is allowed by GTP
    assert e.handle("play w E1") == "=\n\n"
    assert e.board.to_play == 1
    e.handle("play b pass")
    e.handle("play w pass")
    assert e.board.is_over
    assert e.handle("final_score") == f"= {e.board.result()}\n\n"
    # a finished game: genmove answers pass and changes nothing, play is refused
    n = len(e.moves)
    assert e.handle("genmove b") == "= pass\n\n"
    assert len(e.moves) == n
    assert e.handle("play b A5") == "? illegal move\n\n"


def test_final_score_is_tromp_taylor_area_with_komi():
    e = engine(size=5, komi=2.5)
    for line in ["play b C1", "play w D1", "play b C2", "play w D2", "play b C3", "play w D3",
                 "play b C4", "play w D4", "play b C5", "play w D5", "play b pass", "play w pass"]:
        assert e.handle(line) == "=\n\n", line
    # black owns columns A-C (15), white D-E (10): B+5 - 2.5
    assert e.handle("final_score") == "= B+2.5\n\n"


def test_genmove_plays_legal_moves_until_the_game_ends():
    e = engine(size=7, seed=3)
    colour = "b"
    for _ in range(400):
        answer = e.handle(f"genmove {colour}")
        assert answer.startswith("= ")
        if e.board.is_over:
            break
        colour = "w" if colour == "b" else "b"
    assert e.board.is_over  # random players pass when only eye-filling moves are left
    assert e.handle("genmove w") == "= pass\n\n"
    result = e.handle("final_score")[2:].strip()
    assert result == e.board.result() and result[0] in "BW0"


def test_boardsize_clears_and_showboard_draws_the_board():
    e = engine(size=9)
    e.handle("play b A9")
    assert e.handle("boardsize 13") == "=\n\n"
    assert e.board.size == 13 and e.board.move_number == 0
    e.handle("play b A13")
    text = e.handle("showboard")
    assert text.startswith("= \n") and text.endswith("\n\n") and "\n\n" not in text[:-2]
    assert "13 X . ." in text and "A B C D E F G H J K L M N" in text
    assert e.handle("clear_board") == "=\n\n" and e.board.move_number == 0 and e.board.size == 13


def test_printsgf_and_loadsgf_round_trip(tmp_path):
    e = engine(size=9, komi=6.5, seed=5)
    for i in range(30):
        e.handle(f"genmove {'bw'[i % 2]}")
    stones = e.board.stones.copy()
    text = e.handle("printsgf")[2:].strip()
    rec = sgf.parse_sgf(text)
    assert rec.size == 9 and rec.komi == 6.5 and len(rec.moves) == 30
    path = tmp_path / "game.sgf"
    assert e.handle(f"printsgf {path}") == "=\n\n"
    f = engine(size=19)
    assert f.handle(f"loadsgf {path}") == "= black\n\n"
    assert f.board.size == 9 and (f.board.stones == stones).all() and f.komi == 6.5
    assert f.handle(f"loadsgf {path} 11") == "= black\n\n"  # the position before move 11
    assert f.board.move_number == 10
    assert f.handle(f"loadsgf {tmp_path / 'missing.sgf'}").startswith("? cannot load file")
    (tmp_path / "bad.sgf").write_text("(;SZ[9];B[zz])")
    assert f.handle(f"loadsgf {tmp_path / 'bad.sgf'}").startswith("? cannot load file")
    assert f.board.move_number == 10  # a failed load leaves the game alone


def test_main_serves_a_session_in_process(monkeypatch, capsys):
    import io
    monkeypatch.setattr(sys, "stdin", io.StringIO("boardsize 5\nplay b C3\n3 genmove w\nfoo\nquit\nname\n"))
    assert main(["--player", "random", "--size", "9", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    answers = [a for a in out.split("\n\n") if a]
    assert answers[:2] == ["=", "="] and answers[2].startswith("=3 ") and answers[3] == "? unknown command"
    assert answers[4] == "=" and len(answers) == 5  # nothing answered after quit


def test_net_player_usage_errors(capsys):
    assert main(["--player", "mcts"]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert main(["--player", "policy", "--checkpoint", "x.pt", "--visits", "8"]) == 2
    assert "--visits applies to --player mcts" in capsys.readouterr().err
    assert main(["--size", "30"]) == 2


def _subprocess_session(argv: list[str]) -> str:
    script = "boardsize 7\nkomi 5.5\nplay b D4\n5 genmove w\nplay w D4\nplay b Q9\nbogus\nshowboard\nquit\n"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _check_session(out: str) -> None:
    answers = out.split("\n\n")
    assert answers[0] == "=" and answers[1] == "=" and answers[2] == "="
    assert answers[3].startswith("=5 ") and answers[3] != "=5 D4"
    assert answers[4] == "? illegal move"
    assert answers[5] == "? invalid coordinate"
    assert answers[6] == "? unknown command"
    assert answers[7].startswith("= \n")
    row4 = [line for line in answers[7].splitlines() if line.startswith(" 4 ")][0]
    assert row4.split()[4] == "X"  # D4
    assert answers[8] == "="


def test_python_m_gtp_server_over_stdin_stdout():
    _check_session(_subprocess_session([sys.executable, "-m", "go_core.arena.gtp_server", "--player", "random"]))


def test_research_gtp_console_script():
    research = shutil.which("research", path=str(Path(sys.executable).parent)) or shutil.which("research")
    if research is None:
        pytest.skip("the `research` console script is not installed (pip install -e .)")
    _check_session(_subprocess_session([research, "gtp", "--player", "random", "--seed", "2"]))


def test_our_client_drives_our_server_through_a_whole_game():
    argv = [sys.executable, "-m", "go_core.arena.gtp_server", "--player", "random", "--seed", "4"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    board = Board(9, 7.0)
    local = RandomPlayer(seed=9)
    with GTPClient(argv, env=env, cwd=str(ROOT), timeout_s=60, start_timeout_s=300) as c:
        c.send("boardsize 9")
        c.send("komi 7")
        while not board.is_over:
            if board.to_play == 1:
                m = local.genmove(board)
                board.play(m)
                c.send(f"play b {move_to_gtp(m, 9)}")
            else:
                board.play(gtp_to_move(c.send("genmove w"), 9))
        assert c.send("final_score") == board.result()
        with pytest.raises(GTPError, match="illegal move"):
            c.send("play b A1")


def test_random_player_never_fills_its_own_eye_and_passes_when_nothing_else_is_left():
    eyes_only = Board.from_ascii("""
        X.X.X
        XXXXX
        XXXXX
        XX.XX
        XXXXX""", to_play=1)
    player = RandomPlayer(seed=0)
    assert player.genmove(eyes_only) == 25  # pass: every empty point is black's own eye
    one_choice = Board.from_ascii("""
        X.X..
        XXXXX
        XXXXX
        XX.XX
        XXXXX""", to_play=1)
    moves = {player.genmove(one_choice) for _ in range(30)}
    assert moves <= {3, 4} and moves  # never the eyes at B5 / C2
    white = Board.from_ascii("""
        X.X..
        XXXXX
        XXXXX
        XX.XX
        XXXXX""", to_play=2)
    assert {player.genmove(white) for _ in range(30)} <= set(np.flatnonzero(white.legal_mask()[:25]).tolist()) | {25}


def test_loadsgf_of_an_illegal_record_leaves_the_game_alone(tmp_path):
    e = engine(size=9, komi=7.0)
    e.handle("play b E5")
    (tmp_path / "illegal.sgf").write_text("(;SZ[13]KM[0.5];B[cc];W[cc])")
    answer = e.handle(f"loadsgf {tmp_path / 'illegal.sgf'}")
    assert answer.startswith("? cannot load file") and "move 2" in answer and "occupied" in answer
    assert e.size == 9 and e.komi == 7.0 and e.board.move_number == 1
