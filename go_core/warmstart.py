"""Warm starts: a net that knows something before self-play begins.

(a) Supervised pre-training on a folder of SGF games (`sgf_samples` + `pretrain`): the policy
    learns the moves played, the value learns each game's result. `generate_katago_games` makes
    such a folder by KataGo self-play over GTP (`python -m go_core.warmstart katago-games ...`).
(b) Value pre-training on random-play games (`random_game_samples`): random games on small
    boards end with every group settled, so their Tromp-Taylor results teach the value head to
    count stones and territory, which is most of what a first MCTS needs to beat a random player.
    The policy target is the random player's own move distribution (uniform over legal points
    that do not fill one's own eye; pass only when none is left): it teaches nothing about good
    moves, but it teaches not to pass while the board is still open, which an untrained policy
    head does not know (and a player that passes early loses every group to a random player).
(c) Another board size: the net is fully convolutional and masked, so a 9x9 checkpoint is a
    valid 19x19 net (`init_from_checkpoint`; the architecture must match the run's model group).

`apply_warm_start(run, cfg)` is what the training job calls on a fresh run: (c), then (b), then (a).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from go_core.board import BLACK, WHITE, Board
from go_core.replay import HISTORY, Position, ReplayBuffer, Samples


# ----------------------------------------------------------------------------- (b) random games

def random_game_samples(n_games: int, size: int, komi: float, rng: np.random.Generator,
                        positions_per_game: int = 8, first_game: int = 0) -> Samples:
    """Positions sampled from `n_games` random games (no filling one's own eyes), each labelled
    with its game's Tromp-Taylor result for the player to move and, as policy target, the random
    player's move distribution there."""
    from go_core.players import own_eye_mask
    A = size * size + 1
    boards, values, games, policy = [], [], [], []
    for g in range(n_games):
        end = Board(size, komi).random_playout(rng)
        winner = end.winner()
        moves = end.history
        picks = np.sort(rng.choice(len(moves) + 1, size=min(positions_per_game, len(moves) + 1), replace=False))
        b = Board(size, komi)
        played = 0
        for k in picks:
            while played < k:
                b.play(moves[played])
                played += 1
            stones = b.stones
            boards.append(Position(size, stones, b.to_play, b.history[-HISTORY:], komi))
            values.append(0.0 if winner == 0 else (1.0 if winner == b.to_play else -1.0))
            games.append(first_game + g)
            p = np.zeros(A, np.float32)
            points = b.legal_mask()[:-1] & ~own_eye_mask(stones, b.to_play, size)
            if points.any():
                p[:-1] = points / points.sum()
            else:
                p[-1] = 1.0
            policy.append(p)
    n = len(boards)
    return Samples.from_positions(boards, np.stack(policy), np.ones(n, bool), values, games)


# ----------------------------------------------------------------------------- (a) SGF games

def sgf_samples(folder: str | Path, size: int, komi: float | None = None) -> Samples:
    """Every position of every SGF game of board `size` in `folder` (recursively): policy target =
    the move played (one-hot), value = the game's result for the player to move. Games of other
    sizes, with setup stones, or with an unknown result are skipped."""
    from go_core.sgf import SGFError, read_sgf
    files = sorted(Path(folder).rglob("*.sgf"))
    if not files:
        raise FileNotFoundError(f"no .sgf files under '{folder}' (make some with "
                                f"`python -m go_core.warmstart katago-games --out {folder}`)")
    A = size * size + 1
    boards, policy, values, games = [], [], [], []
    for gi, path in enumerate(files):
        try:
            rec = read_sgf(path)
        except SGFError:
            continue
        winner = rec.winner()
        if rec.size != size or rec.setup_black or rec.setup_white or not rec.result:
            continue
        b = Board(size, rec.komi if komi is None else komi)
        for colour, move in rec.moves:
            if colour != b.to_play:
                break  # not alternating: stop reading this game here
            boards.append(Position(size, b.stones, b.to_play, b.history[-HISTORY:], b.komi))
            p = np.zeros(A, np.float32)
            p[move] = 1.0
            policy.append(p)
            values.append(0.0 if winner == 0 else (1.0 if winner == colour else -1.0))
            games.append(gi)
            try:
                b.play(move)
            except ValueError:
                boards.pop(), policy.pop(), values.pop(), games.pop()
                break
            if b.is_over:
                break
    if not boards:
        raise ValueError(f"no usable {size}x{size} games with a result under '{folder}'")
    n = len(boards)
    return Samples.from_positions(boards, np.stack(policy), np.ones(n, bool), values, games)


def generate_katago_games(out_dir: str | Path, n_games: int, size: int = 9, komi: float = 7.0,
                          visits: int = 8, random_opening: int = 4, seed: int = 0, model: str | None = None,
                          log: Callable[[str], None] = print) -> list[Path]:
    """KataGo plays `n_games` games against itself over GTP; our engine keeps the board and scores
    (Tromp-Taylor). The first `random_opening` moves are random, so the games differ."""
    from go_core.coords import gtp_to_move, move_to_gtp
    from go_core.engines import katago_command
    from go_core.gtp_client import GTPClient
    from go_core.players import RandomPlayer
    from go_core.sgf import record_from_board, write_sgf
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


# ----------------------------------------------------------------------------- pre-training

def pretrain(net: torch.nn.Module, samples: Samples, steps: int, batch_size: int, train_cfg,
             device: torch.device, rng: np.random.Generator, generator: torch.Generator | None = None,
             lr: float | None = None) -> dict:
    """`steps` AdamW steps on `samples` with their own optimizer (the run's schedule starts after)."""
    from dataclasses import replace
    from go_core.training import OptimConfig, make_optimizer, train_steps
    cfg = OptimConfig(**{k: getattr(train_cfg, k) for k in OptimConfig.__dataclass_fields__})
    cfg = replace(cfg, warmup_steps=min(cfg.warmup_steps, steps // 5), schedule="cosine", decay_steps=steps,
                  lr=lr or cfg.lr)
    buf = ReplayBuffer(max_samples=len(samples))
    buf.add(samples)
    opt, sched = make_optimizer(net, cfg)
    stats = train_steps(net, opt, sched, buf, steps, batch_size, cfg, device, rng, generator)
    net.eval()
    return stats


def init_from_checkpoint(net: torch.nn.Module, path: str | Path, device) -> dict:
    """Copy the weights of a checkpoint of any board size into `net` (same architecture)."""
    from go_core.net import load_checkpoint
    src, meta = load_checkpoint(path, device)
    if meta["model_config"] != dict(net.cfg.__dict__):
        raise ValueError(f"init checkpoint '{path}' holds a net {meta['model_config']}; this run's model group "
                         f"builds {net.cfg.__dict__}: choose the matching model (e.g. model=b6c96) or another "
                         f"checkpoint")
    net.load_state_dict(src.state_dict())
    return {"init_checkpoint": str(path), "init_board_size": meta.get("board_size"), "init_step": meta.get("step")}


def apply_warm_start(run, ws, log: Callable[[str], None] = print) -> dict:
    """Apply the `train.warm_start` settings to a fresh TrainingRun (experiments/train.py); returns
    a record of what was done (it goes into summary.json)."""
    import time
    done: dict = {}
    cfg = run.cfg
    size, komi = cfg.board.size, cfg.board.komi
    if ws.init_checkpoint:
        done.update(init_from_checkpoint(run.net, ws.init_checkpoint, run.device))
        log(f"warm start: weights from {ws.init_checkpoint} (trained on "
            f"{done['init_board_size']}x{done['init_board_size']}, now {size}x{size})")
    if ws.random_value_games > 0:
        t = time.perf_counter()
        s = random_game_samples(ws.random_value_games, size, komi, run.rng)
        stats = pretrain(run.net, s, ws.random_value_steps, cfg.train.batch_size, cfg.train, run.device,
                         run.rng, run.torch_gen)
        done["random_value"] = {"games": ws.random_value_games, "samples": len(s), "steps": ws.random_value_steps,
                                "value_loss": stats.get("value_loss"), "seconds": time.perf_counter() - t}
        log(f"warm start: value pre-training on {len(s)} positions of {ws.random_value_games} random games, "
            f"{ws.random_value_steps} steps, value loss {stats.get('value_loss', float('nan')):.3f}")
    if ws.sgf_dir:
        t = time.perf_counter()
        s = sgf_samples(ws.sgf_dir, size, komi)
        stats = pretrain(run.net, s, ws.sgf_steps, cfg.train.batch_size, cfg.train, run.device, run.rng,
                         run.torch_gen)
        done["sgf"] = {"dir": str(ws.sgf_dir), "samples": len(s), "steps": ws.sgf_steps,
                       "policy_loss": stats.get("policy_loss"), "value_loss": stats.get("value_loss"),
                       "seconds": time.perf_counter() - t}
        log(f"warm start: supervised pre-training on {len(s)} SGF positions, {ws.sgf_steps} steps, "
            f"policy loss {stats.get('policy_loss', float('nan')):.3f}")
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m go_core.warmstart",
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
    k.add_argument("--model", default=None, help="KataGo .bin.gz (default: KATAGO_MODEL or ../shared/katago)")
    a = p.parse_args(argv)
    generate_katago_games(a.out, a.games, a.size, a.komi, a.visits, a.random_opening, a.seed, a.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
