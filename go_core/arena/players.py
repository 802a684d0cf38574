"""Players: anything that picks a move for a position.

A `Player` has a `name`, `genmove(board) -> move` (a legal point, the pass move `size*size`, or
`go_core.game.coords.RESIGN`) and `reset()` (called when a new game starts).
`make_player(kind, **kw)` builds one by name: `random` lives here; `policy` and `mcts` (net
players) live in `go_core.learn.net_players`, imported only when asked for so that the GTP server
starts without loading torch.
"""
from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable

import numpy as np

from go_core.game.eyes import own_eye_mask

PLAYER_KINDS = ("random", "policy", "mcts")


@runtime_checkable
class Player(Protocol):
    """What the GTP server, the match runner and evaluation need from a player."""

    name: str

    def genmove(self, board) -> int:
        """A move for `board.to_play`: a legal point, the pass `board.size**2`, or RESIGN (-1,
        go_core.game.coords)."""
        ...

    def reset(self) -> None:
        """Forget per-game state (a new game starts)."""
        ...


class RandomPlayer:
    """Uniform over the legal points that do not fill one's own single-point eye; pass when none."""

    def __init__(self, seed: int | None = None, name: str = "random"):
        self.name = name
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        pass  # no per-game state; the random stream continues so games differ

    def genmove(self, board) -> int:
        size = board.size
        pass_move = size * size
        if board.is_over:
            return pass_move
        mask = np.asarray(board.legal_mask())[:pass_move].copy()
        mask &= ~own_eye_mask(board.stones, board.to_play, size)
        candidates = np.flatnonzero(mask)
        if candidates.size == 0:
            return pass_move
        return int(candidates[self.rng.integers(candidates.size)])


def make_player(kind: str, **kw) -> Player:
    """A player by name: 'random' (kw: seed), 'policy' / 'mcts' (kw: checkpoint, visits, device, ...)."""
    if kind == "random":
        unknown = {k for k, v in kw.items() if v is not None} - {"seed", "name"}
        if unknown:
            raise TypeError(f"the random player takes only seed and name, not {sorted(unknown)}")
        return RandomPlayer(seed=kw.get("seed"), name=kw.get("name") or "random")
    if kind in ("policy", "mcts"):
        try:
            net_players = importlib.import_module("go_core.learn.net_players")
        except ImportError as e:
            raise RuntimeError(f"player '{kind}' needs go_core.learn.net_players (and torch): {e}") from e
        cls = getattr(net_players, {"policy": "PolicyPlayer", "mcts": "MCTSPlayer"}[kind])
        return cls(**kw)
    raise ValueError(f"unknown player kind {kind!r}; choose one of {', '.join(PLAYER_KINDS)}")
