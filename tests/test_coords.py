"""GTP and SGF coordinate texts and move numbers."""
import pytest

from go_core.game.coords import RESIGN, gtp_to_move, move_to_gtp, move_to_sgf, pass_move, sgf_to_move


@pytest.mark.parametrize("size", [2, 5, 9, 13, 19, 25])
def test_round_trips_every_point(size):
    for m in range(size * size + 1):
        assert gtp_to_move(move_to_gtp(m, size), size) == m
        assert sgf_to_move(move_to_sgf(m, size), size) == m


def test_known_vertices():
    assert gtp_to_move("A9", 9) == 0            # top-left
    assert gtp_to_move("J1", 9) == 80           # bottom-right: GTP skips 'I'
    assert gtp_to_move("d4", 9) == 5 * 9 + 3
    assert move_to_gtp(0, 19) == "A19" and move_to_gtp(360, 19) == "T1"
    assert gtp_to_move("PASS", 9) == pass_move(9) == 81 and move_to_gtp(81, 9) == "pass"
    assert gtp_to_move("resign", 9) == RESIGN and move_to_gtp(RESIGN, 9) == "resign"
    assert move_to_sgf(0, 9) == "aa" and move_to_sgf(9 + 3, 9) == "db"
    assert sgf_to_move("tt", 19) == 361 and sgf_to_move("", 9) == 81


@pytest.mark.parametrize("text", ["I5", "K1", "A10", "A0", "", "5D", "D", "zz", "A-1"])
def test_invalid_gtp_coordinates(text):
    with pytest.raises(ValueError, match="invalid coordinate"):
        gtp_to_move(text, 9)


@pytest.mark.parametrize("text", ["ja", "aj", "a", "abc", "A1"])
def test_invalid_sgf_coordinates(text):
    with pytest.raises(ValueError, match="invalid coordinate"):
        sgf_to_move(text, 9)
