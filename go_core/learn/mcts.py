"""Batched PUCT Monte Carlo tree search (AlphaGo Zero), with the tree in numpy arrays.

Notation as in the paper and minigo: for a child c of node p, N = visits, W = total value,
Q = W / N, P = prior, U = c_puct * P * sqrt(N_p - 1) / (1 + N); selection picks argmax Q + U.
W[c] is kept from the point of view of the player who *moved into* c (the player to move at p),
so a parent maximizes its children's Q directly, and values flip sign on the way up.

Using it (many games, one forward pass per round for all of them; self-play adds playout caps,
temperatures and its targets in `go_core.learn.selfplay`):

    cfg = MCTSConfig(c_puct=1.25)
    trees = [Tree(board, cfg) for board in boards]           # one per game
    searcher = BatchedMCTS(evaluator, cfg, rng=np.random.default_rng(0))
    searcher.search_many(trees, 200, noise=True)             # 200 simulations in each tree
    for tree in trees:
        target = tree.policy_target()
        move = tree.pick_move(1.0, rng)                      # sampled at temperature 1
        tree.advance(move)                                   # play it; the subtree is kept

- `Tree(board, cfg)`: one game's search tree rooted at a copy of `board`. `.board` (the root
  position), `.visit_counts()` (int64, size*size+1), `.policy_target()` (float32, sums to 1),
  `.root_value()` (Q for the player to move at the root, in [-1, 1]), `.best_move()`,
  `.pick_move(temperature, rng)`, `.advance(move, keep_subtree=True)` (tree reuse: keeps the
  subtree under `move`),
  `.root_visits`, `.child_stats()` (moves, N, Q, P for printing).
- `BatchedMCTS(evaluator, cfg, rng)`: `.search_many(trees, simulations, noise)` runs
  `simulations[i]` new simulations in tree i (the root's own evaluation counts as one when the
  root is fresh, so a fresh tree ends with children visits summing to simulations - 1). Each
  round gathers up to `cfg.leaves_per_game` leaves per game under virtual loss (at most
  simulations / `cfg.min_rounds`, so a small search is not flattened by virtual loss), then makes ONE
  `evaluator.evaluate` call for all leaves of all games. `.search(tree, n)` is the one-game form.
  A descent that meets a leaf already pending in this round (a virtual-loss collision) ends
  that tree's gathering for the round. Searching a finished game raises ValueError.
  Counters: `.simulations`, `.evaluations` (positions sent to the evaluator), `.rounds`.
- Positions: only the root's `Board` is stored; a leaf's position is the root replayed along its
  path into a reusable scratch board (a copy into memory already touched: no allocation per
  leaf, and a tree costs ~100 bytes per node). Terminal nodes (two passes) are valued by the
  Tromp-Taylor result, never by the net; the evaluator must not keep the boards it is given.
- Hot loops (selection with virtual loss, expansion, backup, subtree compaction) are numba
  kernels over flat arrays (go_core/learn/puct_kernels.py); `search_tree.select_child_reference`
  is the plain-Python PUCT the tests compare.

Where the parts live: the settings `MCTSConfig` in mcts_config.py, the `Tree` in search_tree.py,
the kernels in puct_kernels.py; this module is the batched search over many trees.
- `cfg.root = "gumbel"`: Gumbel root search instead of PUCT (`go_core.learn.gumbel`: Gumbel-top-m
  + Sequential Halving at the root, the deterministic rule below it, virtual visits instead of
  virtual loss); then `policy_target()` is the completed-Q improved policy, `best_move()` the move
  Sequential Halving ends with, and "noise" means Gumbel noise (`gumbel_scale`), not Dirichlet.
- `cfg.forced_playouts` (PUCT, searches with noise only): KataGo's forced playouts at the root,
  and `policy_target()` pruned of them (`Tree.pruned_visit_counts`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from go_core.learn.gumbel import considered_visit_sequence, select_leaves_gumbel
from go_core.learn.mcts_config import MCTSConfig
from go_core.learn.puct_kernels import _finish_leaves, _paths, _select_leaves
from go_core.learn.search_tree import Tree, terminal_value


class BatchedMCTS:
    """Runs simulations in many trees at once, one evaluator call per round for all leaves."""

    def __init__(self, evaluator, cfg: MCTSConfig | None = None, rng: np.random.Generator | None = None):
        self.evaluator = evaluator
        self.cfg = cfg or MCTSConfig()
        if self.cfg.root not in ("puct", "gumbel"):
            raise ValueError(f"mcts.root={self.cfg.root!r} is not a root search; use puct or gumbel")
        self.rng = rng or np.random.default_rng()
        self.evaluations = 0     # positions sent to the evaluator
        self.simulations = 0     # simulations run (net-evaluated and terminal)
        self.rounds = 0          # evaluator calls
        self._scratch: list = []  # reusable boards for leaf positions (no allocation per leaf)

    def search(self, tree: Tree, simulations: int, noise: bool = False) -> Tree:
        self.search_many([tree], [simulations], [noise])
        return tree

    def search_many(self, trees: Sequence[Tree], simulations: int | Sequence[int],
                    noise: bool | Sequence[bool] = False) -> None:
        k = len(trees)
        sims = [simulations] * k if isinstance(simulations, (int, np.integer)) else list(simulations)
        noise = [noise] * k if isinstance(noise, (bool, np.bool_)) else list(noise)
        for t in trees:
            if t.board.is_over:
                raise ValueError("search on a finished game (the root position is over)")
        remaining = np.array(sims, dtype=np.int64)
        # 1. fresh roots: evaluate them together; that is each tree's first simulation
        fresh = [i for i, t in enumerate(trees) if not t.expanded and remaining[i] > 0]
        if fresh:
            for i in fresh:
                trees[i].VL[trees[i].root] += 1.0  # _finish_leaves removes one virtual visit
            self._evaluate_and_finish([(trees[i], np.array([trees[i].root], dtype=np.int64)) for i in fresh])
            remaining[fresh] -= 1
        c = self.cfg
        gumbel = c.root == "gumbel"
        # 2. root noise (or its removal) from the raw prior; Gumbel: the root's g(a) and schedule
        for i, (t, nz) in enumerate(zip(trees, noise)):
            if gumbel:
                self._start_gumbel(t, nz, int(remaining[i]))
            elif nz:
                t.apply_noise(self.rng, self.cfg.dirichlet_alpha_total, self.cfg.dirichlet_eps)
            else:
                t.clear_noise()
            t.forced = bool(nz and c.forced_playouts and not gumbel)
        # 3. rounds: gather leaves under virtual loss in every tree, one evaluator call, back up
        L = max(1, c.leaves_per_game)
        per_round = [max(1, int(s) // max(1, c.min_rounds)) for s in sims]
        while True:
            work = []
            for i, t in enumerate(trees):
                if remaining[i] <= 0:
                    continue
                want = int(min(L, remaining[i], per_round[i]))
                out = np.empty(want, dtype=np.int64)
                if gumbel:
                    n_new, n_term = select_leaves_gumbel(
                        t.root, want, t.parent, t.cstart, t.nch, t.N, t.W, t.P, t.VL, t.state, t.tval, t.V,
                        t.gumbel, t.gumbel_base, t._gumbel_seq, c.gumbel_c_visit, c.gumbel_c_scale, out)
                else:
                    n_new, n_term = _select_leaves(
                        t.root, want, t.parent, t.cstart, t.nch, t.N, t.W, t.P, t.VL, t.state, t.tval,
                        c.c_puct, c.c_puct_base, c.fpu_reduction, c.fpu_reduction_root, c.virtual_loss,
                        c.forced_k if t.forced else 0.0, out)
                remaining[i] -= n_new + n_term
                self.simulations += n_term
                if n_new:
                    work.append((t, out[:n_new]))
            if not work:
                break
            self._evaluate_and_finish(work)

    def _start_gumbel(self, tree: Tree, noise: bool, simulations: int) -> None:
        """Draw the root's Gumbel values (none without noise) and its Sequential Halving schedule
        for `simulations` more simulations over min(gumbel_m, legal moves) moves."""
        tree.clear_noise()
        if not tree.expanded:
            return
        kids = tree.children()
        n = len(kids)
        scale = self.cfg.gumbel_scale if noise else 0.0
        tree.gumbel = scale * self.rng.gumbel(size=n) if scale > 0 else np.zeros(n)
        tree.gumbel_base = tree.N[kids.start:kids.stop].copy()
        tree._gumbel_seq = considered_visit_sequence(min(max(1, self.cfg.gumbel_m), n), max(1, simulations))

    def _scratch_board(self, i: int, root):
        """Scratch board i holding a copy of `root`, reusing its memory (no allocation)."""
        if i < len(self._scratch):
            b = self._scratch[i]
            if b.size == root.size and b.state.shape == root.state.shape:
                np.copyto(b.state, root.state)
                b.komi = root.komi
                return b
            b = self._scratch[i] = root.copy()
            return b
        b = root.copy()
        self._scratch.append(b)
        return b

    def _evaluate_and_finish(self, work: list) -> None:
        """Make the leaves' positions (root + path replayed into scratch boards), evaluate the
        non-terminal ones in one call, then expand + back up in each tree."""
        boards = []
        per_tree = []
        slot = 0
        for t, leaves in work:
            term = np.zeros(len(leaves), dtype=np.bool_)
            vals = np.zeros(len(leaves), dtype=np.float32)
            idx = np.full(len(leaves), -1, dtype=np.int64)
            depth_cap = 64
            paths = np.empty((len(leaves), depth_cap), dtype=np.int64)
            depths = _paths(leaves, t.root, t.parent, t.move, paths)
            if depths.max(initial=0) > depth_cap:
                paths = np.empty((len(leaves), int(depths.max())), dtype=np.int64)
                depths = _paths(leaves, t.root, t.parent, t.move, paths)
            root = t.root_board
            for j in range(len(leaves)):
                b = self._scratch_board(slot, root)
                slot += 1
                for m in paths[j, :depths[j]][::-1]:
                    b.play(m)
                if b.is_over:
                    term[j] = True
                    vals[j] = terminal_value(b)
                else:
                    idx[j] = len(boards)
                    boards.append(b)
            per_tree.append((t, leaves, term, vals, idx))
        if boards:
            priors, values = self.evaluator.evaluate(boards)
            self.evaluations += len(boards)
            self.rounds += 1
        A = work[0][0].A
        for t, leaves, term, vals, idx in per_tree:
            rows = np.zeros((len(leaves), A), dtype=np.float32)
            ev = idx >= 0
            if ev.any():
                rows[ev] = priors[idx[ev]]
                vals[ev] = values[idx[ev]]
            t.ensure_capacity(int(ev.sum()) * A)
            t.next_free = _finish_leaves(leaves, term, rows, vals, t.next_free, *t._arrays())
            self.simulations += len(leaves)


def search(board, evaluator, simulations: int, cfg: MCTSConfig | None = None,
           noise: bool = False, rng: np.random.Generator | None = None) -> Tree:
    """One-shot search of one position: returns the searched Tree."""
    cfg = cfg or MCTSConfig()
    tree = Tree(board, cfg)
    BatchedMCTS(evaluator, cfg, rng).search(tree, simulations, noise)
    return tree
