"""KataGo self-play games saved as SGF, for supervised warm starts (`train.warm_start.sgf_dir`).

    python -m go_core.arena.katago_games katago-games --out sgf/ --games 50
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from go_core.game.board import BLACK, Board


def generate_katago_games(out_dir: str | Path, n_games: int, size: int = 9, komi: float = 7.0,
                          visits: int = 8, random_opening: int = 4, seed: int = 0, model: str | None = None,
                          log: Callable[[str], None] = print) -> list[Path]:
    """KataGo plays `n_games` games against itself over GTP; our engine keeps the board and scores
    (Tromp-Taylor). The first `random_opening` moves are random, so the games differ."""
    from go_core.game.coords import gtp_to_move, move_to_gtp
    from go_core.arena.engines import katago_command
    from go_core.arena.gtp_client import GTPClient
    from go_core.arena.players import RandomPlayer
    from go_core.game.sgf import record_from_board, write_sgf
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    opener = RandomPlayer(seed=seed)
    paths = []
    client = GTPClient(katago_command(model=model, visits=visits), timeout_s=120, start_timeout_s=600, name="katago")
    try:
        for g in range(n_games):
            client.send(f"boardsize {size}")
            client.send("clear_board")
            client.send(f"komi {komi}")
            b = Board(size, komi)
            while not b.is_over and b.move_number < 3 * size * size:
                colour = "b" if b.to_play == BLACK else "w"
                if b.move_number < random_opening:
                    m = opener.genmove(b)
                    client.send(f"play {colour} {move_to_gtp(m, size)}")
                else:
                    answer = client.send(f"genmove {colour}").strip()
                    if answer.lower() == "resign":
                        b.resign()
                        break
                    m = gtp_to_move(answer, size)
                b.play(m)
            rec = record_from_board(b, black=f"katago-v{visits}", white=f"katago-v{visits}", result=b.result())
            path = out / f"katago_{size}x{size}_{seed:04d}_{g:05d}.sgf"
            write_sgf(path, rec)
            paths.append(path)
            log(f"game {g + 1}/{n_games}: {rec.result} in {b.move_number} moves -> {path}")
    finally:
        client.close()
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m go_core.arena.katago_games",
                                description="Make SGF games for supervised warm starts.")
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("katago-games", help="KataGo self-play over GTP, saved as SGF")
    k.add_argument("--out", required=True, help="folder for the .sgf files")
    k.add_argument("--games", type=int, default=20)
    k.add_argument("--size", type=int, default=9)
    k.add_argument("--komi", type=float, default=7.0)
    k.add_argument("--visits", type=int, default=8, help="KataGo visits per move")
    k.add_argument("--random-opening", type=int, default=4, help="random moves opening each game")
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--model", default=None, help="KataGo .bin.gz (default: KATAGO_MODEL or the shipped b6c96 net)")
    a = p.parse_args(argv)
    generate_katago_games(a.out, a.games, a.size, a.komi, a.visits, a.random_opening, a.seed, a.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
