"""The balanced opening book for head-to-head games, its generator and its loader.

A head-to-head match (`go_core.arena.head_to_head`) plays each opening twice with colours
swapped, so a lopsided opening cancels within its pair but still adds noise: the book keeps only
openings that KataGo judges close to even. The book ships with the project as
`go_core/arena/openings/<size>x<size>.json`:

    {"size": 9, "komi": 7.0, "generator": "...", "criterion": "...",
     "openings": [{"moves": ["E5", "C4", ...], "black_winrate": 0.51}, ...]}

`moves` are GTP vertices played from the empty board, black first; `black_winrate` is KataGo's
judgement of the final position for black (the b6c96 net's value averaged over its 8 board
symmetries, `kata-raw-nn all`). `load_openings(size)` returns the moves as our move numbers
(`go_core.game.coords`), or None when no book ships for that size; `random_openings` is the
fallback for such sizes (deterministic from a seed, not judged by KataGo).

Generating (a few minutes of CPU; run once and commit the file):

    python -m go_core.arena.opening_book --size 9 --count 200

Moves are sampled from KataGo's raw policy at a temperature (so openings look like Go, not like
random first-line stones), each opening 2..6 moves long; openings equal under a board symmetry
are kept once.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from go_core.game.board import Board
from go_core.game.coords import gtp_to_move, move_to_gtp
from go_core.game.symmetry import N_SYMMETRIES, transform_move

BOOK_DIR = Path(__file__).resolve().parent / "openings"
DEFAULT_MAX_IMBALANCE = 0.10    # keep an opening when |black winrate - 0.5| is at most this
DEFAULT_MIN_MOVES = 2           # shortest opening
DEFAULT_MAX_MOVES = 6           # longest opening
DEFAULT_TEMPERATURE = 1.5       # softens KataGo's policy when sampling opening moves


def book_path(size: int) -> Path:
    return BOOK_DIR / f"{size}x{size}.json"


def load_book(size: int) -> dict | None:
    """The shipped book for `size` as stored (see the module docstring), or None if none ships."""
    path = book_path(size)
    if not path.is_file():
        return None
    book = json.loads(path.read_text())
    if book.get("size") != size:
        raise ValueError(f"opening book {path} says size {book.get('size')}, expected {size}; "
                         "regenerate it with python -m go_core.arena.opening_book")
    return book


def load_openings(size: int) -> list[list[int]] | None:
    """The shipped openings for `size` as lists of move numbers, or None if no book ships.
    Every opening is checked legal by our rules engine (a corrupt book fails here, loudly)."""
    book = load_book(size)
    if book is None:
        return None
    out = []
    for i, entry in enumerate(book["openings"]):
        moves = [gtp_to_move(v, size) for v in entry["moves"]]
        board = Board(size, float(book.get("komi", 7.0)))
        for m in moves:
            if not board.is_legal(m) or m == size * size:
                raise ValueError(f"opening {i} of {book_path(size)} has an illegal move "
                                 f"{move_to_gtp(m, size)}; regenerate the book")
            board.play(m)
        out.append(moves)
    return out


def random_openings(size: int, count: int, seed: int, min_moves: int = DEFAULT_MIN_MOVES,
                    max_moves: int = DEFAULT_MAX_MOVES) -> list[list[int]]:
    """`count` openings of random legal points away from the first line (the first line when
    the board is tiny), deterministic from `seed`. Not judged by anyone: the fallback for
    board sizes without a shipped book. Colour-swapped pairs still cancel their imbalance."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        board = Board(size)
        n = int(rng.integers(min_moves, max_moves + 1))
        for _ in range(n):
            legal = board.legal_mask()[:size * size].reshape(size, size).copy()
            if size >= 5:
                legal[0, :] = legal[-1, :] = legal[:, 0] = legal[:, -1] = False
            pts = np.flatnonzero(legal)
            if pts.size == 0:
                break
            board.play(int(pts[rng.integers(pts.size)]))
        out.append(board.history)
    return out


def canonical(moves: list[int], size: int) -> tuple[int, ...]:
    """The smallest of the 8 symmetric images of a move sequence (to drop duplicates)."""
    return min(tuple(transform_move(m, k, size) for m in moves) for k in range(N_SYMMETRIES))


# ----------------------------------------------------------------------------- KataGo side

def parse_raw_nn(text: str, size: int) -> tuple[float, np.ndarray]:
    """(white winrate, policy over size*size points with NaN -> 0) from `kata-raw-nn` output."""
    lines = text.split("\n")
    white_win = None
    policy: list[float] = []
    i = 0
    while i < len(lines):
        parts = lines[i].split()
        if parts and parts[0] == "whiteWin":
            white_win = float(parts[1])
        if parts and parts[0] == "policy" and len(parts) == 1:
            for row in lines[i + 1:i + 1 + size]:
                policy += [float(v) if v.lower() != "nan" else 0.0 for v in row.split()]
            i += size
        i += 1
    if white_win is None or len(policy) != size * size:
        raise ValueError(f"unexpected kata-raw-nn output (no whiteWin or a policy of "
                         f"{len(policy)} values for {size}x{size}): {text[:200]!r}")
    return white_win, np.nan_to_num(np.array(policy, dtype=np.float64))


def generate_book(size: int = 9, count: int = 200, komi: float = 7.0, seed: int = 0,
                  max_imbalance: float = DEFAULT_MAX_IMBALANCE, min_moves: int = DEFAULT_MIN_MOVES,
                  max_moves: int = DEFAULT_MAX_MOVES, temperature: float = DEFAULT_TEMPERATURE,
                  max_tries: int | None = None, model: str | None = None, log=print) -> dict:
    """Sample openings from KataGo's raw policy and keep `count` balanced, distinct ones."""
    from go_core.arena.engines import katago_command
    from go_core.arena.gtp_client import GTPClient

    rng = np.random.default_rng(seed)
    max_tries = max_tries or 20 * count
    kept, seen = [], set()
    tries = 0
    t0 = time.monotonic()
    client = GTPClient(katago_command(model=model, visits=1), timeout_s=60, start_timeout_s=600,
                       name="katago")
    try:
        client.send(f"boardsize {size}")
        client.send(f"komi {komi}")
        version = client.send("version")
        while len(kept) < count and tries < max_tries:
            tries += 1
            client.send("clear_board")
            board = Board(size, komi)
            n = int(rng.integers(min_moves, max_moves + 1))
            for _ in range(n):
                _, policy = parse_raw_nn(client.send("kata-raw-nn 0"), size)
                legal = board.legal_mask()[:size * size]
                w = np.where(legal & (policy > 0), policy, 0.0) ** (1.0 / temperature)
                m = int(rng.choice(size * size, p=w / w.sum()))
                client.send(f"play {'b' if board.to_play == 1 else 'w'} {move_to_gtp(m, size)}")
                board.play(m)
            key = canonical(board.history, size)
            if key in seen:
                continue
            seen.add(key)
            white_win, _ = parse_raw_nn(client.send("kata-raw-nn all"), size)
            black = 1.0 - white_win
            if abs(black - 0.5) <= max_imbalance:
                kept.append({"moves": [move_to_gtp(m, size) for m in board.history],
                             "black_winrate": round(black, 4)})
                if len(kept) % 25 == 0:
                    log(f"{len(kept)}/{count} openings kept of {tries} tried "
                        f"({time.monotonic() - t0:.0f} s)")
    finally:
        client.close()
    if len(kept) < count:
        log(f"only {len(kept)} balanced openings in {tries} tries (wanted {count})")
    return {
        "size": size, "komi": komi,
        "generator": (f"python -m go_core.arena.opening_book --size {size} --count {count} "
                      f"--seed {seed}; KataGo {version}"),
        "criterion": (f"moves sampled from KataGo's raw policy at temperature {temperature}, "
                      f"{min_moves}-{max_moves} moves, one per symmetry class; kept when "
                      f"|black winrate - 0.5| <= {max_imbalance} (kata-raw-nn all, komi {komi})"),
        "tried": tries,
        "openings": kept,
    }


def dump_book(book: dict) -> str:
    """JSON text with one opening per line (diffs of a regenerated book stay readable)."""
    head = {k: v for k, v in book.items() if k != "openings"}
    lines = [json.dumps(o) for o in book["openings"]]
    return (json.dumps(head, indent=1)[:-2] + ',\n "openings": [\n' + ",\n".join(lines)
            + "\n]}\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m go_core.arena.opening_book",
                                description="Generate the balanced opening book (KataGo-judged).")
    p.add_argument("--size", type=int, default=9)
    p.add_argument("--count", type=int, default=200, help="openings to keep")
    p.add_argument("--komi", type=float, default=7.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-imbalance", type=float, default=DEFAULT_MAX_IMBALANCE,
                   help="keep when |black winrate - 0.5| <= this")
    p.add_argument("--out", default=None, help="output file (default: the shipped book's path)")
    p.add_argument("--model", default=None, help="KataGo .bin.gz (default: the shipped b6c96 net)")
    a = p.parse_args(argv)
    book = generate_book(a.size, a.count, a.komi, a.seed, a.max_imbalance, model=a.model)
    out = Path(a.out) if a.out else book_path(a.size)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_book(book))
    print(f"wrote {len(book['openings'])} openings to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
