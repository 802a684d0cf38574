"""Move numbering and the GTP / SGF coordinate texts.

A move is one int: a point is ``m = row * size + col`` with row 0 the TOP row and col 0 column
'A'; ``m == size * size`` is a pass (``pass_move(size)``) and ``RESIGN == -1`` a resignation.
GTP names columns with the letters A..Z skipping 'I' and counts rows from the bottom
(``gtp_row = size - row``), so on 9x9 the top-left point is ``A9`` and ``m = 0``.
SGF names a point by two letters, column then row, both counted from the top-left ('aa');
a pass is the empty value ``[]`` (and ``[tt]`` on boards up to 19x19, an FF[3] habit).
"""
from __future__ import annotations

EMPTY, BLACK, WHITE = 0, 1, 2   # a point's content and a player's colour, everywhere in the project
RESIGN = -1
GTP_COLUMNS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"  # no 'I', as GTP says
SGF_LETTERS = "abcdefghijklmnopqrstuvwxyz"
MAX_SIZE = 25  # the largest board GTP coordinates can name


def pass_move(size: int) -> int:
    """The move number of a pass on a ``size`` x ``size`` board."""
    return size * size


def move_to_gtp(m: int, size: int) -> str:
    """``m`` as GTP text: ``"D4"``, ``"pass"`` or ``"resign"``."""
    if m == RESIGN:
        return "resign"
    if m == size * size:
        return "pass"
    if not 0 <= m < size * size:
        raise ValueError(f"invalid move number {m} for a {size}x{size} board "
                         f"(points are 0..{size * size - 1}, pass is {size * size})")
    row, col = divmod(m, size)
    return f"{GTP_COLUMNS[col]}{size - row}"


def gtp_to_move(text: str, size: int) -> int:
    """Parse GTP vertex text (case-insensitive, ``"pass"``/``"resign"`` allowed) to a move number.

    Raises ``ValueError("invalid coordinate ...")`` for text that names no point of this board.
    """
    t = text.strip().upper()
    if t == "PASS":
        return size * size
    if t == "RESIGN":
        return RESIGN
    if len(t) < 2 or t[0] not in GTP_COLUMNS or not t[1:].isdigit():
        raise ValueError(f"invalid coordinate {text!r}: expected a letter A-Z (no I) and a row "
                         f"number, e.g. 'D4', or 'pass'")
    col = GTP_COLUMNS.index(t[0])
    gtp_row = int(t[1:])
    if col >= size or not 1 <= gtp_row <= size:
        raise ValueError(f"invalid coordinate {text!r}: off a {size}x{size} board "
                         f"(columns A-{GTP_COLUMNS[size - 1]}, rows 1-{size})")
    return (size - gtp_row) * size + col


def move_to_sgf(m: int, size: int) -> str:
    """``m`` as an SGF point value (``"dd"``); a pass is ``""``."""
    if m == size * size:
        return ""
    if not 0 <= m < size * size:
        raise ValueError(f"invalid move number {m} for a {size}x{size} board in SGF")
    row, col = divmod(m, size)
    return SGF_LETTERS[col] + SGF_LETTERS[row]


def sgf_to_move(text: str, size: int) -> int:
    """Parse an SGF point value; ``""`` (and ``"tt"`` on boards up to 19x19) is a pass."""
    t = text.strip()
    if t == "" or (t == "tt" and size <= 19):
        return size * size
    if len(t) != 2 or t[0] not in SGF_LETTERS or t[1] not in SGF_LETTERS:
        raise ValueError(f"invalid coordinate {text!r}: an SGF point is two letters a-z, e.g. 'dd'")
    col, row = SGF_LETTERS.index(t[0]), SGF_LETTERS.index(t[1])
    if col >= size or row >= size:
        raise ValueError(f"invalid coordinate {text!r}: off a {size}x{size} board")
    return row * size + col
