"""A fixed set of KataGo positions with KataGo's policy and the game's result: its generator and loader.

The set is a yardstick that does not move: the loss of a checkpoint's net on it
(`benchmarks.position_loss`) is a cheap, game-free measurement of a net, tried in
`benchmarks/seed_noise.py` as a control variate for head-to-head Elo differences.

The games: the shipped KataGo b6c96 net plays itself over GTP (9x9, komi 7, Tromp-Taylor, no
resignation). The first `sampled_opening` moves are sampled from KataGo's raw policy at
`temperature` (so games differ and look like Go); after that KataGo plays `genmove` at `visits`
visits. Our engine keeps the board and scores the end. For every position from move
`sampled_opening` on, the file keeps KataGo's raw policy (`kata-raw-nn` at a seeded random
board symmetry, one network evaluation) and its value, and the move it chose.

The file (JSON lines, a few hundred KB; a header line, then one game per line):

    {"format": "tengen-katago-positions", "version": 1, "size": 9, "komi": 7.0, "generator": ...,
     "games": G, "positions": N}
    {"moves": ["E5", "C4", ...], "score": -3.0, "first": 8,
     "policy": ["E5 412 D4 200 pass 3", ...], "black_win": [0.512, ...]}

`moves` are GTP vertices from the empty board, black first; `score` is the Tromp-Taylor result
(black minus white minus komi). Position i of a game is the board before `moves[first + i]`
(that move is KataGo's choice there); `policy[i]` lists KataGo's raw policy there as vertex and
probability per mille (points under `MIN_PER_MILLE` dropped; the loader renormalises) and
`black_win[i]` its raw value as black's win probability.

Generating (a few minutes of CPU; run once and commit the file):

    python -m go_core.arena.katago_positions --games 36 --seed 0
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from go_core.game.board import BLACK, EMPTY, Board
from go_core.game.coords import gtp_to_move, move_to_gtp

FORMAT = "tengen-katago-positions"
VERSION = 1
DATA_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "data"
MIN_PER_MILLE = 3           # policy entries below this (0.3%) are not stored: they are noise
MAX_POLICY_ENTRIES = 12     # at most this many policy entries per position (keeps the file small)
DEFAULT_VISITS = 4          # KataGo visits per genmove after the sampled opening
DEFAULT_SAMPLED_OPENING = 8  # moves sampled from KataGo's raw policy before genmove takes over
DEFAULT_TEMPERATURE = 1.0   # temperature of those sampled moves


def default_path(size: int = 9) -> Path:
    return DATA_DIR / f"katago_positions_{size}x{size}.jsonl"


# ----------------------------------------------------------------------------- the loader

@dataclass
class PositionSet:
    """N positions, arrays indexed by position.

    boards     -- list of N `Board`s (the position, history included, so features see last moves)
    policy     -- (N, S*S+1) float32, KataGo's raw policy (pass last), rows sum to 1
    move       -- (N,) int64, the move KataGo played there
    z          -- (N,) float32, the game's result for the player to move: +1 win, -1 loss, 0 draw
    kata_value -- (N,) float32, KataGo's raw value for the player to move, in [-1, 1]
    game       -- (N,) int64, which game the position comes from (positions of a game are correlated)
    """
    size: int
    komi: float
    boards: list
    policy: np.ndarray
    move: np.ndarray
    z: np.ndarray
    kata_value: np.ndarray
    game: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.boards)

    @property
    def games(self) -> int:
        return int(self.game.max()) + 1 if len(self.game) else 0


def parse_policy(text: str, size: int) -> np.ndarray:
    """'E5 412 pass 3' -> a (size*size+1,) probability vector (renormalised)."""
    parts = text.split()
    if len(parts) % 2:
        raise ValueError(f"policy entry {text!r} is not vertex/per-mille pairs")
    p = np.zeros(size * size + 1, dtype=np.float64)
    for v, w in zip(parts[::2], parts[1::2]):
        p[gtp_to_move(v, size)] += float(w)
    if p.sum() <= 0:
        raise ValueError(f"policy entry {text!r} has no mass")
    return p / p.sum()


def load_positions(path: str | Path | None = None, size: int = 9) -> PositionSet:
    """The position set at `path` (default: the shipped `benchmarks/data/katago_positions_9x9.jsonl`).
    Every move is replayed by our rules engine, so a corrupt file fails here, loudly."""
    path = Path(path) if path else default_path(size)
    if not path.is_file():
        raise FileNotFoundError(f"no position set at {path}; generate one with "
                                f"python -m go_core.arena.katago_positions --out {path}")
    lines = path.read_text().splitlines()
    head = json.loads(lines[0])
    if head.get("format") != FORMAT or head.get("version", 0) > VERSION:
        raise ValueError(f"{path} is not a {FORMAT} file of version <= {VERSION} (header {lines[0][:120]!r})")
    size, komi = int(head["size"]), float(head["komi"])
    boards, policy, move, z, kv, game = [], [], [], [], [], []
    for g, line in enumerate(x for x in lines[1:] if x.strip()):
        rec = json.loads(line)
        moves = [gtp_to_move(v, size) for v in rec["moves"]]
        first = int(rec["first"])
        if len(rec["policy"]) != len(moves) - first or len(rec["black_win"]) != len(moves) - first:
            raise ValueError(f"{path} game {g}: {len(moves) - first} positions but "
                             f"{len(rec['policy'])} policies and {len(rec['black_win'])} values")
        score = float(rec["score"])
        winner = BLACK if score > 0 else EMPTY if score == 0 else 3 - BLACK
        b = Board(size, komi)
        for i, m in enumerate(moves):
            if not b.is_legal(m):
                raise ValueError(f"{path} game {g} move {i} ({rec['moves'][i]}) is illegal; regenerate the file")
            if i >= first:
                j = i - first
                me = b.to_play
                boards.append(b.copy())
                policy.append(parse_policy(rec["policy"][j], size))
                move.append(m)
                z.append(0.0 if winner == EMPTY else 1.0 if winner == me else -1.0)
                bw = float(rec["black_win"][j])
                kv.append((2 * bw - 1) if me == BLACK else (1 - 2 * bw))
                game.append(g)
            b.play(m)
    return PositionSet(size, komi, boards, np.asarray(policy, np.float32), np.asarray(move, np.int64),
                       np.asarray(z, np.float32), np.asarray(kv, np.float32), np.asarray(game, np.int64),
                       source=str(path))


# ----------------------------------------------------------------------------- the generator

def parse_raw_nn_full(text: str, size: int) -> tuple[float, np.ndarray]:
    """(white winrate, policy over size*size+1 moves, pass last) from `kata-raw-nn` output,
    in our move order (row 0 at the top, as KataGo prints it)."""
    from go_core.arena.opening_book import parse_raw_nn
    white_win, board = parse_raw_nn(text, size)
    pas = 0.0
    for line in text.split("\n"):
        parts = line.split()
        if parts and parts[0] == "policyPass":
            pas = float(parts[1])
    return white_win, np.concatenate([board, [pas]])


def encode_policy(p: np.ndarray, size: int) -> str:
    """The stored form of a policy: the largest entries as 'vertex per-mille' pairs."""
    order = np.argsort(-p, kind="stable")[:MAX_POLICY_ENTRIES]
    kept = [(int(m), int(round(1000 * p[m]))) for m in order if round(1000 * p[m]) >= MIN_PER_MILLE]
    if not kept:   # a flat policy: keep its top move so the entry has mass
        kept = [(int(order[0]), 1)]
    return " ".join(f"{move_to_gtp(m, size)} {w}" for m, w in kept)


def generate_positions(n_games: int, size: int = 9, komi: float = 7.0, visits: int = DEFAULT_VISITS,
                       sampled_opening: int = DEFAULT_SAMPLED_OPENING, temperature: float = DEFAULT_TEMPERATURE,
                       seed: int = 0, model: str | None = None, log=print) -> tuple[dict, list[dict]]:
    """KataGo plays `n_games` games against itself; returns (header, games) in the file's form.
    Reproducible from `seed` (our sampled openings and symmetries, and KataGo's search and net
    random seeds) with the same KataGo version and net."""
    from go_core.arena.engines import katago_command
    from go_core.arena.gtp_client import GTPClient

    rng = np.random.default_rng(seed)
    games = []
    t0 = time.monotonic()
    # KataGo's own randomness (search, net symmetries) seeded too: one search thread, so the same
    # seed gives the same games (checked: two runs, identical moves)
    seeds = {"searchRandSeed": str(seed), "nnRandSeed": str(seed)}
    client = GTPClient(katago_command(model=model, visits=visits, extra=seeds), timeout_s=120,
                       start_timeout_s=600, name="katago")
    try:
        version = client.send("version")
        for g in range(n_games):
            client.send(f"boardsize {size}")
            client.send("clear_board")
            client.send(f"komi {komi}")
            b = Board(size, komi)
            pol, bwin = [], []
            while not b.is_over and b.move_number < 3 * size * size:
                colour = "b" if b.to_play == BLACK else "w"
                white_win, p = parse_raw_nn_full(client.send(f"kata-raw-nn {int(rng.integers(8))}"), size)
                if b.move_number < sampled_opening:
                    legal = b.legal_mask()[:size * size]
                    w = np.where(legal & (p[:-1] > 0), p[:-1], 0.0) ** (1.0 / temperature)
                    m = int(rng.choice(size * size, p=w / w.sum()))
                    client.send(f"play {colour} {move_to_gtp(m, size)}")
                else:
                    pol.append(encode_policy(p, size))
                    bwin.append(round(1.0 - white_win, 3))
                    m = gtp_to_move(client.send(f"genmove {colour}").strip(), size)
                b.play(m)
            games.append({"moves": [move_to_gtp(m, size) for m in b.history], "score": b.score(),
                          "first": sampled_opening, "policy": pol, "black_win": bwin})
            log(f"game {g + 1}/{n_games}: {b.result()} in {b.move_number} moves, "
                f"{sum(len(x['policy']) for x in games)} positions ({time.monotonic() - t0:.0f} s)")
    finally:
        client.close()
    header = {
        "format": FORMAT, "version": VERSION, "size": size, "komi": komi,
        "generator": (f"python -m go_core.arena.katago_positions --games {n_games} --size {size} "
                      f"--visits {visits} --sampled-opening {sampled_opening} --temperature {temperature} "
                      f"--seed {seed}; KataGo {version}, net {Path(model).name if model else 'b6c96 (shipped)'}"),
        "policy": f"kata-raw-nn at a random symmetry; entries >= {MIN_PER_MILLE} per mille, at most "
                  f"{MAX_POLICY_ENTRIES}",
        "games": len(games), "positions": sum(len(x["policy"]) for x in games),
        "katago_seconds": round(time.monotonic() - t0, 1),
    }
    return header, games


def dump_positions(header: dict, games: list[dict]) -> str:
    return "\n".join([json.dumps(header)] + [json.dumps(g, separators=(",", ":")) for g in games]) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m go_core.arena.katago_positions",
                                description="Generate the fixed KataGo position set (policy, value, result).")
    p.add_argument("--games", type=int, default=36)
    p.add_argument("--size", type=int, default=9)
    p.add_argument("--komi", type=float, default=7.0)
    p.add_argument("--visits", type=int, default=DEFAULT_VISITS, help="KataGo visits per genmove")
    p.add_argument("--sampled-opening", type=int, default=DEFAULT_SAMPLED_OPENING,
                   help="moves sampled from KataGo's raw policy before genmove (not in the set)")
    p.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None, help="KataGo .bin.gz (default: the shipped b6c96 net)")
    p.add_argument("--out", default=None, help="output file (default: the shipped set's path)")
    a = p.parse_args(argv)
    header, games = generate_positions(a.games, a.size, a.komi, a.visits, a.sampled_opening, a.temperature,
                                       a.seed, a.model)
    out = Path(a.out) if a.out else default_path(a.size)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_positions(header, games))
    print(f"wrote {header['positions']} positions from {header['games']} games to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
