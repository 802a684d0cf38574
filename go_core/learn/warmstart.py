"""Warm starts: a net that knows something before self-play begins.

(a) Supervised pre-training on a folder of SGF games (`sgf_samples` + `pretrain`): the policy
    learns the moves played, the value learns each game's result. `python -m go_core.arena.katago_games`
    makes such a folder by KataGo self-play over GTP.
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
A checkpoint given as `init_checkpoint` IS the warm start: (b) and (a) are skipped unless
`pretrain_after_init` is set. That is how a question's nodes share one starting point (trained
once with `train.warm_start.only=true`): nothing of the warm start is redone, and no random number
is drawn for it, so a node and its parent with the same seed play the same first games.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from go_core.game.board import Board
from go_core.learn.replay import HISTORY, Position, ReplayBuffer, Samples


@dataclass
class WarmStartConfig:
    """The warm start's settings (`train.warm_start`): what `apply_warm_start` does on a fresh run."""
    init_checkpoint: Optional[str] = None   # start from this checkpoint's net (any board size); the steps below are then skipped...
    pretrain_after_init: bool = False   # ...unless this is true (then they train on top of the checkpoint's net)
    only: bool = False                  # apply the warm start, save checkpoints and summary.json, and stop (no self-play; a question's shared start)
    random_value_games: int = 0         # value pre-training on this many random-play games (0: off)
    random_value_steps: int = 300       # training steps of that value pre-training
    sgf_dir: Optional[str] = None       # supervised pre-training on the SGF games in this folder
    sgf_steps: int = 500                # training steps of the supervised pre-training


# ----------------------------------------------------------------------------- (b) random games

def random_game_samples(n_games: int, size: int, komi: float, rng: np.random.Generator,
                        positions_per_game: int = 8, first_game: int = 0) -> Samples:
    """Positions sampled from `n_games` random games (no filling one's own eyes), each labelled
    with its game's Tromp-Taylor result for the player to move and, as policy target, the random
    player's move distribution there."""
    from go_core.game.eyes import own_eye_mask
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
    from go_core.game.sgf import SGFError, read_sgf
    files = sorted(Path(folder).rglob("*.sgf"))
    if not files:
        raise FileNotFoundError(f"no .sgf files under '{folder}' (make some with "
                                f"`python -m go_core.arena.katago_games katago-games --out {folder}`)")
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


# ----------------------------------------------------------------------------- pre-training

def pretrain(net: torch.nn.Module, samples: Samples, steps: int, batch_size: int, train_cfg,
             device: torch.device, rng: np.random.Generator, generator: torch.Generator | None = None,
             lr: float | None = None) -> dict:
    """`steps` AdamW steps on `samples` with their own optimizer (the run's schedule starts after)."""
    from go_core.learn.training import TrainConfig, make_optimizer, train_steps
    # the run's train settings (a TrainConfig or the composed `train` group), with this pre-training's own schedule
    same = {f.name: getattr(train_cfg, f.name) for f in fields(TrainConfig) if f.name != "warm_start"}
    cfg = TrainConfig(**{**same, "warmup_steps": min(train_cfg.warmup_steps, steps // 5), "schedule": "cosine",
                         "decay_steps": steps, "lr": lr or train_cfg.lr})
    buf = ReplayBuffer(max_samples=len(samples))
    buf.add(samples)
    opt, sched = make_optimizer(net, cfg)
    stats = train_steps(net, opt, sched, buf, steps, batch_size, cfg, device, rng, generator)
    net.eval()
    return stats


def init_from_checkpoint(net: torch.nn.Module, path: str | Path, device) -> dict:
    """Copy the weights of a checkpoint of any board size into `net` (same architecture)."""
    from go_core.learn.net import load_checkpoint
    src, meta = load_checkpoint(path, device)
    if src.cfg != net.cfg:   # NetConfig equality: a field left out while off reads back as off
        raise ValueError(f"init checkpoint '{path}' holds a net {meta['model_config']}; this run's model group "
                         f"builds {net.cfg.__dict__}: choose the matching model (e.g. model=b6c96) or another "
                         f"checkpoint")
    net.load_state_dict(src.state_dict())
    return {"init_checkpoint": str(path), "init_board_size": meta.get("board_size"), "init_step": meta.get("step")}


def apply_warm_start(run, ws, log: Callable[[str], None] = print) -> dict:
    """Apply the `train.warm_start` settings to a fresh TrainingRun (experiments/training_run.py); returns
    a record of what was done (it goes into summary.json)."""
    import time
    done: dict = {}
    cfg = run.cfg
    size, komi = cfg.board.size, cfg.board.komi
    if ws.init_checkpoint:
        done.update(init_from_checkpoint(run.net, ws.init_checkpoint, run.device))
        log(f"warm start: weights from {ws.init_checkpoint} (trained on "
            f"{done['init_board_size']}x{done['init_board_size']}, now {size}x{size})")
        if not getattr(ws, "pretrain_after_init", False):
            if ws.random_value_games > 0 or ws.sgf_dir:
                log("warm start: the checkpoint is the starting point; random-game and SGF pre-training "
                    "skipped (set train.warm_start.pretrain_after_init=true to train on top of it)")
            return done
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
