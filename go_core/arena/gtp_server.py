"""A GTP v2 server: any of our players, playing over stdin/stdout.

    research gtp --player random --size 9 --komi 7
    python -m go_core.arena.gtp_server --player mcts --checkpoint run/checkpoints/best.pt --visits 200

Commands: protocol_version name version known_command list_commands quit boardsize clear_board
komi play genmove undo showboard final_score loadsgf printsgf. Bad input gets the standard error
answers (`? illegal move`, `? unknown command`, `? invalid coordinate`, `? unacceptable size`,
`? syntax error`) and the server keeps serving. Rules are always ours (Tromp-Taylor, positional
superko, suicide legal). `GTPEngine.handle(line)` answers one line in-process; `serve` runs
the loop over any pair of text streams.
"""
from __future__ import annotations

import argparse
import datetime
import sys
from typing import Callable, TextIO

from go_core.arena.players import PLAYER_KINDS, Player, make_player
from go_core.game import sgf
from go_core.game.board import BLACK, WHITE, IllegalMoveError
from go_core.game.coords import GTP_COLUMNS, MAX_SIZE, RESIGN, gtp_to_move, move_to_gtp

PROTOCOL_VERSION = "2"
ENGINE_NAME = "Tengen"
ENGINE_VERSION = "0.1.0"
MIN_SIZE = 2
_COLOURS = {"b": BLACK, "black": BLACK, "w": WHITE, "white": WHITE}


class GTPCommandError(Exception):
    """A command failed; the text is the GTP error message (without `? `)."""


def _clean(line: str) -> str:
    """GTP preprocessing: drop control characters and comments, tabs become spaces."""
    line = line.split("#", 1)[0]
    line = "".join(" " if ch == "\t" else ch for ch in line if ch == "\t" or ord(ch) >= 32 and ord(ch) != 127)
    return line.strip()


class GTPEngine:
    """The state of one GTP session: a board, the moves that led to it, and the player."""

    def __init__(self, player: Player, size: int = 19, komi: float = 7.0):
        self.player = player
        self.komi = float(komi)
        self.size = int(size)
        self.quit = False
        self._commands: dict[str, Callable[[list[str]], str]] = {
            "protocol_version": lambda a: PROTOCOL_VERSION,
            "name": lambda a: ENGINE_NAME,
            "version": lambda a: f"{ENGINE_VERSION} ({getattr(self.player, 'name', 'player')})",
            "known_command": self._known_command,
            "list_commands": lambda a: "\n".join(self._commands),
            "quit": self._quit,
            "boardsize": self._boardsize,
            "clear_board": self._clear_board,
            "komi": self._komi,
            "play": self._play,
            "genmove": self._genmove,
            "undo": self._undo,
            "showboard": self._showboard,
            "final_score": self._final_score,
            "loadsgf": self._loadsgf,
            "printsgf": self._printsgf,
        }
        self._new_game()

    # -- game state ------------------------------------------------------------------------
    def _new_game(self, record: sgf.GameRecord | None = None, n_moves: int | None = None) -> None:
        """Start from an empty board, or from a record's first `n_moves` moves."""
        if record is None:
            record = sgf.GameRecord(size=self.size, komi=self.komi)
        board = sgf.record_to_board(record, n_moves)
        self.record = record
        self.moves: list[tuple[int, int]] = list(record.moves[:len(board.history)])
        self.board = board
        self.size, self.komi = record.size, record.komi

    def _rebuild(self, moves: list[tuple[int, int]]) -> None:
        rec = sgf.GameRecord(size=self.size, komi=self.komi, moves=list(moves),
                             setup_black=self.record.setup_black, setup_white=self.record.setup_white,
                             first_player=self.record.first_player)
        self.board = sgf.record_to_board(rec)
        self.record = rec
        self.moves = list(moves)

    def _play_move(self, colour: int, m: int) -> None:
        """Play `m` for `colour` (who need not be the side to move); GTPCommandError if illegal."""

        board = self.board
        if board.is_over:
            raise GTPCommandError("illegal move")
        before = board.to_play
        if colour != board.to_play:
            # GTP lets a controller play either colour (KataGo and GNU Go do too); positional
            # superko does not depend on who moves, so the position's history stays valid.
            board.to_play = colour
        try:
            board.play(m)
        except IllegalMoveError:
            board.to_play = before
            raise GTPCommandError("illegal move") from None
        self.moves.append((colour, m))

    # -- argument parsing ------------------------------------------------------------------
    @staticmethod
    def _colour(text: str) -> int:
        c = _COLOURS.get(text.lower())
        if c is None:
            raise GTPCommandError("syntax error (colour must be b, w, black or white)")
        return c

    def _vertex(self, text: str) -> int:

        try:
            m = gtp_to_move(text, self.size)
        except ValueError:
            raise GTPCommandError("invalid coordinate") from None
        if m == RESIGN:
            raise GTPCommandError("invalid coordinate")
        return m

    # -- commands --------------------------------------------------------------------------
    def _known_command(self, args: list[str]) -> str:
        if len(args) != 1:
            raise GTPCommandError("syntax error (known_command takes one command name)")
        return "true" if args[0] in self._commands else "false"

    def _quit(self, args: list[str]) -> str:
        self.quit = True
        return ""

    def _boardsize(self, args: list[str]) -> str:
        if len(args) != 1 or not args[0].lstrip("-").isdigit():
            raise GTPCommandError("syntax error (boardsize takes one integer)")
        size = int(args[0])
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise GTPCommandError("unacceptable size")
        self.size = size
        self._clear_board([])
        return ""

    def _clear_board(self, args: list[str]) -> str:
        self._new_game()
        self.player.reset()
        return ""

    def _komi(self, args: list[str]) -> str:
        try:
            komi = float(args[0]) if len(args) == 1 else None
        except ValueError:
            komi = None
        if komi is None or komi != komi or abs(komi) > 1000:
            raise GTPCommandError("syntax error (komi takes one number)")
        self.komi = komi
        self.board.komi = komi
        self.record.komi = komi
        return ""

    def _play(self, args: list[str]) -> str:
        if len(args) != 2:
            raise GTPCommandError("syntax error (play takes a colour and a vertex)")
        colour = self._colour(args[0])
        m = self._vertex(args[1])
        self._play_move(colour, m)
        return ""

    def _genmove(self, args: list[str]) -> str:

        if len(args) != 1:
            raise GTPCommandError("syntax error (genmove takes a colour)")
        colour = self._colour(args[0])
        pass_move = self.size * self.size
        if self.board.is_over:
            return "pass"  # the game has ended: nothing more to play
        board = self.board.copy()
        board.to_play = colour
        m = int(self.player.genmove(board))
        if m == RESIGN:
            self.board.resign(colour)
            return "resign"
        if m != pass_move and not board.is_legal(m):
            raise GTPCommandError(f"player {self.player.name} chose an illegal move {m}")
        self._play_move(colour, m)
        return move_to_gtp(m, self.size)

    def _undo(self, args: list[str]) -> str:
        if not self.moves:
            raise GTPCommandError("cannot undo")
        self._rebuild(self.moves[:-1])
        return ""

    def _showboard(self, args: list[str]) -> str:

        b, n = self.board, self.size
        letters = "   " + " ".join(GTP_COLUMNS[:n])
        rows = b.to_ascii().splitlines()
        lines = [letters] + [f"{n - r:2d} {' '.join(row)} {n - r:2d}" for r, row in enumerate(rows)] + [letters]
        to_play = "black" if b.to_play == BLACK else "white"
        lines.append(f"komi {b.komi:g}, move {len(self.moves)}, {to_play} to play"
                     + (", game over" if b.is_over else ""))
        return "\n" + "\n".join(lines)

    def _final_score(self, args: list[str]) -> str:
        return self.board.result()

    def _loadsgf(self, args: list[str]) -> str:
        if not 1 <= len(args) <= 2:
            raise GTPCommandError("syntax error (loadsgf takes a file name and an optional move number)")
        n_moves = None
        if len(args) == 2:
            if not args[1].isdigit() or int(args[1]) < 1:
                raise GTPCommandError("syntax error (move number must be a positive integer)")
            n_moves = int(args[1]) - 1  # the position before that move
        try:
            self._new_game(sgf.read_sgf(args[0]), n_moves)
        except sgf.SGFError as e:
            raise GTPCommandError(f"cannot load file: {e}") from None
        self.player.reset()
        return "black" if self.board.to_play == BLACK else "white"

    def _record(self) -> sgf.GameRecord:
        name = f"{ENGINE_NAME} {getattr(self.player, 'name', '')}".strip()
        b = self.board
        result = b.result() if (b.is_over or b.resigned) else ""
        return sgf.GameRecord(
            size=self.size, komi=self.komi, black=name, white=name, result=result,
            moves=list(self.moves), setup_black=self.record.setup_black,
            setup_white=self.record.setup_white, first_player=self.record.first_player,
            date=datetime.date.today().isoformat())

    def _printsgf(self, args: list[str]) -> str:
        rec = self._record()
        if args:
            try:
                sgf.write_sgf(" ".join(args), rec)
            except OSError as e:
                raise GTPCommandError(f"cannot write {' '.join(args)}: {e.strerror}") from None
            return ""
        # a GTP answer may not hold an empty line: SGF has none, but keep it on one line anyway
        return sgf.to_sgf(rec).replace("\n", "")

    # -- protocol --------------------------------------------------------------------------
    def handle(self, line: str) -> str | None:
        """The full answer to one input line (`=id text\\n\\n` or `?id error\\n\\n`), None for blank lines."""
        line = _clean(line)
        if not line:
            return None
        words = line.split()
        ident = ""
        if words[0].isdigit():
            ident, words = words[0], words[1:]
            if not words:
                return f"?{ident} syntax error (no command)\n\n"
        name, args = words[0], words[1:]
        handler = self._commands.get(name)
        if handler is None:
            return f"?{ident} unknown command\n\n"
        try:
            text = handler(args)
        except GTPCommandError as e:
            return f"?{ident} {e}\n\n"
        except Exception as e:  # a bug in a player must not kill a match: answer and carry on
            return f"?{ident} internal error: {e.__class__.__name__}: {e}\n\n"
        if "\n" in text:  # an empty line would end the answer early
            first, *rest = text.split("\n")
            text = "\n".join([first] + [l for l in rest if l.strip()])
        return f"={ident} {text}\n\n" if text else f"={ident}\n\n"


def serve(engine: GTPEngine, inp: TextIO, out: TextIO) -> None:
    """Answer GTP commands from `inp` on `out` until `quit` or end of input."""
    for line in inp:
        answer = engine.handle(line)
        if answer is None:
            continue
        out.write(answer)
        out.flush()
        if engine.quit:
            break


def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="research gtp", description="Play over GTP on stdin/stdout.")
    p.add_argument("--player", choices=PLAYER_KINDS, default="random", help="which player picks the moves")
    p.add_argument("--checkpoint", help="net checkpoint (.pt) for the policy/mcts players")
    p.add_argument("--visits", type=int, default=None, help="MCTS visits per move (mcts player)")
    p.add_argument("--device", default=None, help="torch device for net players (cpu, cuda)")
    p.add_argument("--size", type=int, default=19, help="initial board size (a controller's boardsize overrides)")
    p.add_argument("--komi", type=float, default=7.0, help="initial komi (a controller's komi overrides)")
    p.add_argument("--seed", type=int, default=None, help="random seed of the player")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    if not MIN_SIZE <= args.size <= MAX_SIZE:
        print(f"research gtp: --size {args.size} is outside {MIN_SIZE}..{MAX_SIZE}", file=sys.stderr)
        return 2
    kw = {}
    if args.player == "random":
        kw["seed"] = args.seed
    else:
        if not args.checkpoint:
            print(f"research gtp: --player {args.player} needs --checkpoint PATH", file=sys.stderr)
            return 2
        if args.player == "policy" and args.visits is not None:
            print("research gtp: --visits applies to --player mcts (the policy player does not search)",
                  file=sys.stderr)
            return 2
        kw = {k: v for k, v in (("checkpoint", args.checkpoint), ("visits", args.visits),
                                ("device", args.device), ("seed", args.seed)) if v is not None}
    player = make_player(args.player, **kw)
    engine = GTPEngine(player, size=args.size, komi=args.komi)
    serve(engine, sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
