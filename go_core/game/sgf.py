"""SGF (FF[4]) game records, read and written with sgfmill.

A `GameRecord` is the plain data of one game: board size, komi, rules, players, result, date,
setup stones, the moves as `(colour, move)` with our move numbering (`row*size + col`, row 0 at
the top, pass = `size*size`), and comments. `parse_sgf`/`read_sgf` read one (the main line of the
first game in the file), `to_sgf`/`write_sgf` write one, and `record_to_board`/`record_from_board`
convert to and from a `Board` by replaying the moves through our rules engine.

sgfmill parses FF[1]-FF[4] well but its errors carry no position; a malformed file here raises
`SGFError` naming the byte offset (line, column) of a syntax error, or the move number, node and
property of a bad value.
"""
from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass, field

from sgfmill import sgf, sgf_grammar

from go_core.game.coords import BLACK, MAX_SIZE, WHITE   # coords needs no numba compile

_COLOUR_OF = {"b": BLACK, "w": WHITE}
_LETTER_OF = {BLACK: "b", WHITE: "w"}
# Root properties GameRecord holds in named fields (everything else lands in `extra`).
_KNOWN_ROOT = {"FF", "GM", "CA", "SZ", "KM", "RU", "PB", "PW", "RE", "DT", "C", "AB", "AW", "AE",
               "PL", "B", "W", "AP"}


class SGFError(ValueError):
    """A malformed or unsupported SGF file; the message says where and what."""


@dataclass
class GameRecord:
    """One game, as an SGF file holds it."""

    size: int = 19
    """Board size (SZ)."""
    komi: float = 7.0
    """Komi (KM); white's compensation, added to white's area score."""
    rules: str = "tromp-taylor"
    """Rules (RU), free text; empty when the file names none."""
    black: str = ""
    """Black player's name (PB)."""
    white: str = ""
    """White player's name (PW)."""
    result: str = ""
    """Result (RE): 'B+3.5', 'W+R', '0' (draw), or '' when unknown."""
    date: str = ""
    """Date (DT), 'YYYY-MM-DD'."""
    moves: list[tuple[int, int]] = field(default_factory=list)
    """The main line: (colour, move) with colour BLACK=1/WHITE=2 and move = row*size+col, pass = size*size."""
    comments: list[str] = field(default_factory=list)
    """Per-move comments (C[] on the move's node), '' where none; same length as `moves`."""
    root_comment: str = ""
    """The comment on the root node."""
    setup_black: list[int] = field(default_factory=list)
    """Black stones placed before the first move (AB), e.g. handicap."""
    setup_white: list[int] = field(default_factory=list)
    """White stones placed before the first move (AW)."""
    first_player: int = 0
    """Who moves first when the file says so (PL); 0 = not stated."""
    extra: dict[str, str] = field(default_factory=dict)
    """Other root properties (GN, EV, PC, ...) as text, kept so a round trip loses nothing common."""

    def __post_init__(self):
        if len(self.comments) < len(self.moves):
            self.comments = list(self.comments) + [""] * (len(self.moves) - len(self.comments))
        elif len(self.comments) > len(self.moves):
            raise ValueError(f"GameRecord has {len(self.comments)} comments for {len(self.moves)} moves")

    @property
    def pass_move(self) -> int:
        return self.size * self.size

    def winner(self) -> int:
        """BLACK, WHITE or 0 (draw or unknown) from the RE text."""
        r = self.result.strip().upper()
        return BLACK if r.startswith("B+") else WHITE if r.startswith("W+") else 0


# ----------------------------------------------------------------------------- coordinates
def _to_move(point, size: int) -> int:
    """sgfmill (row from the bottom, col) or None -> our move index."""
    if point is None:
        return size * size
    r, c = point
    return (size - 1 - r) * size + c


def _from_move(m: int, size: int):
    """Our move index -> sgfmill (row from the bottom, col), None for a pass."""
    if m == size * size:
        return None
    if not 0 <= m < size * size:
        raise ValueError(f"move {m} is off a {size}x{size} board")
    row, col = divmod(m, size)
    return size - 1 - row, col


# ----------------------------------------------------------------------------- reading
def _where(bb: bytes, offset: int) -> str:
    line = bb.count(b"\n", 0, offset) + 1
    col = offset - (bb.rfind(b"\n", 0, offset) + 1) + 1
    snippet = bb[offset:offset + 20].decode("utf-8", "replace").replace("\n", "\\n")
    return f"byte offset {offset} (line {line}, column {col}, at {snippet!r})"


def _locate_syntax_error(bb: bytes, message: str) -> str:
    """Re-run sgfmill's tokeniser, keeping positions, to say where its parser gave up."""
    start = sgf_grammar._find_start_re.search(bb)
    if not start:
        return "no SGF data found (a game starts with '(;')"
    tokens: list[tuple[str, bytes, int]] = []
    i, depth = start.start(), 0
    while True:
        m = sgf_grammar._tokenise_re.match(bb, i)
        if not m:
            break
        group = m.lastgroup
        tokens.append((group, m.group(m.lastindex), m.start(m.lastindex) - (1 if group == "V" else 0)))
        i = m.end()
        if group == "D" and tokens[-1][1] == b"(":
            depth += 1
        elif group == "D" and tokens[-1][1] == b")":
            depth -= 1
            if depth == 0:
                break
    # Walk the grammar as sgfmill does and report the first token it rejects.
    in_sequence = False
    have_node = False
    seq_len = 0
    for n, (kind, tok, pos) in enumerate(tokens):
        if kind == "V" and (n == 0 or tokens[n - 1][0] not in ("I", "V")):
            return f"property value outside a property at {_where(bb, pos)}"
        if kind == "V" and not have_node:
            return f"property value outside a node at {_where(bb, pos)}"
        if kind == "D" and tok == b";":
            if not in_sequence:
                return f"node ';' outside a game tree at {_where(bb, pos)}"
            have_node = True
            seq_len += 1
        elif kind == "D":
            if in_sequence and seq_len == 0:
                return f"empty sequence (a '(' must be followed by ';') at {_where(bb, pos)}"
            in_sequence = tok == b"("
            seq_len = 0
            have_node = False
        elif kind == "I":
            if not have_node:
                return f"property {tok.decode('ascii')} outside a node at {_where(bb, pos)}"
            if n + 1 >= len(tokens) or tokens[n + 1][0] != "V":
                after = pos + len(tok)
                while after < len(bb) and bb[after:after + 1].isspace():
                    after += 1
                if bb[after:after + 1] == b"[":
                    return (f"the value of property {tok.decode('ascii')} at {_where(bb, after)} "
                            "is never closed by ']'")
                return f"property {tok.decode('ascii')} has no value [..] at {_where(bb, pos)}"
    rest = bb[i:].strip()
    if depth != 0 and rest:
        return f"cannot parse SGF at {_where(bb, i)} (an unclosed '[' or a stray character?)"
    if depth != 0:
        return f"unexpected end of SGF data at byte offset {len(bb)}: {depth} unclosed '('"
    return message


def _text(node, ident: str) -> str:
    try:
        value = node.get(ident)
    except KeyError:
        return ""
    except ValueError as e:
        raise SGFError(f"bad {ident} value {node.get_raw(ident)!r}: {e}") from None
    return value if isinstance(value, str) else str(value)


def parse_sgf(data: bytes | str, source: str = "<sgf>") -> GameRecord:
    """Read the main line of the first game in `data`; raises SGFError naming where and what."""
    bb = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        game = sgf.Sgf_game.from_bytes(bb)
    except ValueError as e:
        msg = str(e)
        if msg.startswith("size out of range") or msg.startswith("bad SZ"):
            raise SGFError(f"{source}: bad SZ (board size) property: {msg}") from None
        if msg.startswith("unknown encoding") or "codec" in msg:
            raise SGFError(f"{source}: bad CA (charset) property: {msg}") from None
        raise SGFError(f"{source}: {_locate_syntax_error(bb, msg)}") from None
    size = game.get_size()
    if not 2 <= size <= MAX_SIZE:
        raise SGFError(f"{source}: SZ[{size}]: board sizes 2..{MAX_SIZE} are supported")
    root = game.get_root()
    try:
        komi = float(game.get_komi())
    except ValueError:
        raise SGFError(f"{source}: bad KM (komi) value {root.get_raw('KM')!r}: not a number") from None
    try:
        rec = GameRecord(
            size=size, komi=komi, rules=_text(root, "RU"), black=_text(root, "PB"),
            white=_text(root, "PW"), result=_text(root, "RE"), date=_text(root, "DT"),
            root_comment=_text(root, "C"))
    except SGFError as e:
        raise SGFError(f"{source}: root node: {e}") from None
    if root.has_setup_stones():
        try:
            black, white, empty = root.get_setup_stones()
        except ValueError:
            raise SGFError(f"{source}: root node: bad AB/AW/AE point in "
                           f"{ {k: root.get_raw_list(k) for k in ('AB', 'AW', 'AE') if root.has_property(k)} }") from None
        rec.setup_black = sorted(_to_move(p, size) for p in black)
        rec.setup_white = sorted(_to_move(p, size) for p in white)
    if root.has_property("PL"):
        pl = root.get_raw("PL").decode("ascii", "replace").strip().lower()[:1]
        if pl not in _COLOUR_OF:
            raise SGFError(f"{source}: root node: bad PL value {root.get_raw('PL')!r} (expected B or W)")
        rec.first_player = _COLOUR_OF[pl]
    for ident in root.properties():
        if ident not in _KNOWN_ROOT:
            try:
                rec.extra[ident] = " ".join(v.decode(game.presenter.encoding, "replace")
                                            for v in root.get_raw_list(ident))
            except LookupError:
                pass
    for node_index, node in enumerate(game.get_main_sequence()):
        if node_index > 0 and node.has_setup_stones():
            raise SGFError(f"{source}: node {node_index} (after move {len(rec.moves)}): setup stones "
                           "(AB/AW/AE) in the middle of a game are not supported")
        colour, raw = node.get_raw_move()
        if colour is None:
            if node_index > 0 and node.has_property("C"):  # a comment on a move-less node
                rec.comments[-1:] = [_join(rec.comments[-1], _text(node, "C"))] if rec.comments else []
            continue
        move_number = len(rec.moves) + 1
        try:
            _, point = node.get_move()
        except ValueError:
            prop = colour.upper()
            raise SGFError(f"{source}: move {move_number} (node {node_index}): bad {prop} value "
                           f"{raw!r}: not a point on a {size}x{size} board") from None
        rec.moves.append((_COLOUR_OF[colour], _to_move(point, size)))
        rec.comments.append(_text(node, "C") if node_index > 0 else "")
    return rec


def _join(a: str, b: str) -> str:
    return f"{a}\n{b}" if a and b else a or b


def read_sgf(path: str | os.PathLike) -> GameRecord:
    """Read an SGF file (see `parse_sgf`)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SGFError(f"cannot read SGF file {path}: {e.strerror}") from None
    return parse_sgf(data, source=str(path))


# ----------------------------------------------------------------------------- writing
def to_sgf(rec: GameRecord) -> str:
    """The record as FF[4] SGF text (UTF-8, one game, the moves as its main line)."""
    if len(rec.comments) != len(rec.moves):
        raise ValueError(f"GameRecord has {len(rec.comments)} comments for {len(rec.moves)} moves")
    game = sgf.Sgf_game(rec.size)
    root = game.get_root()
    root.set("KM", float(rec.komi))
    root.set_raw("AP", b"Tengen:0.1")
    for ident, value in (("RU", rec.rules), ("PB", rec.black), ("PW", rec.white),
                         ("RE", rec.result), ("DT", rec.date), ("C", rec.root_comment)):
        if value:
            root.set(ident, value)
    for ident, value in rec.extra.items():
        if re.fullmatch(r"[A-Z]{1,8}", ident) and ident not in _KNOWN_ROOT:
            root.set(ident, value)
    if rec.setup_black or rec.setup_white:
        root.set_setup_stones([_from_move(m, rec.size) for m in rec.setup_black],
                              [_from_move(m, rec.size) for m in rec.setup_white])
    if rec.first_player:
        root.set("PL", _LETTER_OF[rec.first_player])
    for (colour, m), comment in zip(rec.moves, rec.comments):
        node = game.extend_main_sequence()
        node.set_move(_LETTER_OF[colour], _from_move(m, rec.size))
        if comment:
            node.set("C", comment)
    return game.serialise().decode("utf-8")


def write_sgf(path: str | os.PathLike, rec: GameRecord) -> None:
    """Write the record to `path` (atomically: a temp file, then a rename)."""
    text = to_sgf(rec)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- boards
def setup_board(size: int, komi: float, setup_black=(), setup_white=(), to_play: int = BLACK):
    """A Board with the setup stones (if any) as its first position and `to_play` to move."""
    import numpy as np
    from go_core.game.board import Board

    board = Board(size, komi)
    if setup_black or setup_white:
        colours = np.zeros(size * size, dtype=np.int64)
        colours[list(setup_black)] = BLACK
        colours[list(setup_white)] = WHITE
        try:
            board.set_position(colours, to_play)
        except ValueError as e:
            raise SGFError(f"setup stones (AB/AW): {e}") from None
    board.to_play = to_play
    return board


def record_to_board(rec: GameRecord, n_moves: int | None = None):
    """Replay the record's first `n_moves` moves (all by default) through our engine.

    Raises SGFError naming the move when one is illegal under our rules. A move by the side not
    to move (two black moves in a row, as some records have) is played by that side: positional
    superko does not depend on who moves. A resignation in RE is applied when every move is
    replayed.
    """
    from go_core.game.board import IllegalMoveError

    moves = rec.moves if n_moves is None else rec.moves[:max(0, n_moves)]
    first = rec.first_player or (moves[0][0] if moves else BLACK)
    board = setup_board(rec.size, rec.komi, rec.setup_black, rec.setup_white, to_play=first)
    for i, (colour, m) in enumerate(moves):
        if colour != board.to_play and not board.is_over:
            board.to_play = colour
        try:
            board.play(m)
        except IllegalMoveError as e:
            raise SGFError(f"move {i + 1}: {'BW'[colour - 1]}[{_move_name(m, rec.size)}] is illegal: {e}") from None
    if n_moves is None and not board.is_over and rec.result.upper().endswith("+R") and rec.winner():
        board.resign(3 - rec.winner())
    return board


def _move_name(m: int, size: int) -> str:
    if m == size * size:
        return "pass"
    row, col = divmod(m, size)
    return "ABCDEFGHJKLMNOPQRSTUVWXYZ"[col] + str(size - row)


def record_from_board(board, black: str = "", white: str = "", date: str | None = None,
                      comments: list[str] | None = None, result: str | None = None,
                      first_player: int = BLACK, rules: str = "tromp-taylor",
                      root_comment: str = "") -> GameRecord:
    """A GameRecord of `board`'s game (its history from an empty board, colours alternating).

    The result is the board's own (`Board.result()`, resign-aware) once the game is over,
    else empty, unless `result` is given.
    """
    colours = [first_player if i % 2 == 0 else 3 - first_player for i in range(len(board.history))]
    if result is None:
        result = board.result() if (board.is_over or board.resigned) else ""
    return GameRecord(
        size=board.size, komi=float(board.komi), rules=rules, black=black, white=white,
        result=result, date=date if date is not None else datetime.date.today().isoformat(),
        moves=[(c, int(m)) for c, m in zip(colours, board.history)],
        comments=list(comments) if comments else [], root_comment=root_comment)
