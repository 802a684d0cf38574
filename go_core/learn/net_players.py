"""Players backed by a trained net (the `Player` protocol of `go_core.arena.players`).

- `PolicyPlayer(checkpoint, device)`: the raw policy, most probable legal move (or sampled with
  `temperature` > 0); one forward pass per move.
- `MCTSPlayer(checkpoint, visits, device)`: search with the net (`go_core.learn.mcts`), with the
  search settings the checkpoint was trained with (`mcts_config.search_config_from`: c_puct, FPU, root
  search, ...), and `visits` root visits per move (the caller's: a rating gives both sides the
  same; visits kept from the previous move's tree count towards them), the most visited move;
  no root noise. Optional `resign_threshold`: resign when the search's
  value for the player to move falls below it (default: never).

Both also take `net=` (an in-memory `PolicyValueNet`) instead of a checkpoint path, which is how
training code pits a net against itself (search vs raw policy). `research gtp --player
policy|mcts --checkpoint P [--visits N]` serves them over GTP via `players.make_player`.
"""
from __future__ import annotations

import numpy as np

from go_core.game.coords import RESIGN
from go_core.learn.evaluators import NetEvaluator
from go_core.learn.mcts import BatchedMCTS
from go_core.learn.mcts_config import MCTSConfig, search_config_from
from go_core.learn.search_tree import Tree



def _load(checkpoint, net, device):
    from go_core.learn.net import load_checkpoint, select_device
    if net is not None:
        return net, {}
    if checkpoint is None:
        raise ValueError("a net player needs checkpoint=PATH (a .pt from training) or net=")
    return load_checkpoint(checkpoint, select_device(device or "auto"))


class PolicyPlayer:
    """The net's raw policy: argmax over legal moves (temperature 0) or a sample."""

    def __init__(self, checkpoint=None, device: str | None = None, *, net=None,
                 temperature: float = 0.0, seed: int | None = None, name: str | None = None):
        self.net, self.meta = _load(checkpoint, net, device)
        self.evaluator = NetEvaluator(self.net, device, max_batch=64)
        self.temperature = temperature
        self.rng = np.random.default_rng(seed)
        self.name = name or "policy"

    def reset(self) -> None:
        pass

    def genmove(self, board) -> int:
        if board.is_over:
            return board.size * board.size
        priors, _ = self.evaluator.evaluate([board])
        p = priors[0].astype(np.float64)
        if self.temperature <= 0:
            return int(np.argmax(p))
        w = np.where(p > 0, p ** (1.0 / self.temperature), 0.0)
        return int(self.rng.choice(len(p), p=w / w.sum()))


class MCTSPlayer:
    """PUCT search with the net; `visits` root visits per move, tree kept between moves."""

    def __init__(self, checkpoint=None, visits: int = 200, device: str | None = None, *,
                 net=None, cfg: MCTSConfig | None = None, resign_threshold: float | None = None,
                 seed: int | None = None, name: str | None = None):
        if visits is None or visits < 1:
            raise ValueError(f"visits must be >= 1, not {visits!r}")
        self.net, self.meta = _load(checkpoint, net, device)
        self.visits = int(visits)
        self.cfg = cfg or search_config_from(self.meta, dirichlet_eps=0.0)   # the net's own search settings
        self.searcher = BatchedMCTS(NetEvaluator(self.net, device, max_batch=256), self.cfg,
                                    np.random.default_rng(seed))
        self.resign_threshold = resign_threshold
        self.tree: Tree | None = None
        self.name = name or f"mcts{self.visits}"

    def reset(self) -> None:
        self.tree = None

    def _tree_for(self, board) -> Tree:
        """Our previous tree advanced along the moves played since, or a fresh one."""
        t = self.tree
        if t is not None and t.size == board.size and t.board.komi == board.komi:
            old, new = t.board.history, board.history
            if len(new) >= len(old) and new[:len(old)] == old and len(new) - len(old) <= 8:
                try:
                    for m in new[len(old):]:
                        t.advance(m)
                except ValueError:
                    t = None
                if (t is not None and t.board.to_play == board.to_play
                        and np.array_equal(t.board.stones, board.stones)):
                    return t
        return Tree(board, self.cfg)

    def genmove(self, board) -> int:
        if board.is_over:
            return board.size * board.size
        tree = self._tree_for(board)
        sims = max(1, self.visits - tree.root_visits)
        self.searcher.search(tree, sims, noise=False)
        if self.resign_threshold is not None and tree.root_value() < self.resign_threshold:
            self.tree = None
            return RESIGN
        move = tree.best_move()
        tree.advance(move)
        self.tree = tree
        return move
