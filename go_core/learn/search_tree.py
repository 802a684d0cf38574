"""One game's search tree in flat numpy arrays (`Tree`): the root position, per node its parent,
move, children, N, W, P and state; the root's targets (visit counts, the policy target, pruned
of forced playouts, or the Gumbel improved policy), move choice and tree reuse (`advance`).
The search that fills it is go_core/learn/mcts.py; `select_child_reference` is the plain-Python
PUCT its numba kernel (puct_kernels.py) is tested against.
"""
from __future__ import annotations

import math

import numpy as np

from go_core.learn.mcts_config import MCTSConfig
from go_core.learn.puct_kernels import EXPANDED, NEW, TERMINAL, _compact


def select_child_reference(tree: "Tree", node: int, cfg: MCTSConfig, root: bool = False) -> int:
    """Plain-Python PUCT choice (no virtual loss) that the numba kernel is tested against."""
    kids = range(tree.cstart[node], tree.cstart[node] + tree.nch[node])
    n_p = tree.N[node]
    cp = cfg.c_puct + (math.log((1 + n_p + cfg.c_puct_base) / cfg.c_puct_base) if cfg.c_puct_base else 0)
    q_parent = -tree.W[node] / n_p if n_p > 0 else 0.0
    visited = sum(tree.P[c] for c in kids if tree.N[c] > 0)
    fpu = q_parent - (cfg.fpu_reduction_root if root else cfg.fpu_reduction) * math.sqrt(visited)

    def score(c):
        q = tree.W[c] / tree.N[c] if tree.N[c] > 0 else fpu
        return q + cp * tree.P[c] * math.sqrt(max(n_p - 1, 1)) / (1 + tree.N[c])
    return max(kids, key=score)


_ARRAYS = (("parent", np.int32), ("move", np.int32), ("cstart", np.int32), ("nch", np.int32),
           ("N", np.float64), ("W", np.float64), ("P", np.float32), ("Praw", np.float32),
           ("VL", np.float64), ("state", np.int8), ("tval", np.float32), ("V", np.float32))


def terminal_value(board) -> float:
    """Tromp-Taylor result of a finished game for the player to move: +1 win, -1 loss, 0 draw."""
    winner = board.winner()
    return 0.0 if winner == 0 else (1.0 if winner == board.to_play else -1.0)


class Tree:
    """The search tree of one game, rooted at (a copy of) `board`. Node 0 is not special: the
    root is `self.root` (0 after construction or `advance`)."""

    def __init__(self, board, cfg: MCTSConfig | None = None):
        self.cfg = cfg or MCTSConfig()
        self.size = board.size
        self.A = board.size * board.size + 1
        self._alloc(max(self.cfg.initial_nodes, 2 * self.A))
        self._reset(board.copy())

    def _alloc(self, cap: int) -> None:
        for name, dt in _ARRAYS:
            setattr(self, name, np.zeros(cap, dtype=dt))
        self.cap = cap

    def _reset(self, board) -> None:
        self.root = 0
        self.next_free = 1
        self.parent[0] = -1
        self.move[0] = -1
        self.cstart[0] = -1
        self.nch[0] = 0
        self.N[0] = self.W[0] = self.VL[0] = 0.0
        self.P[0] = self.Praw[0] = 1.0
        self.V[0] = 0.0
        self.state[0] = NEW
        self.gumbel = None         # Gumbel search: g(a) per root child (None: not Gumbel-searched)
        self.gumbel_base = None    # ... and the root children's visits before this search
        self.forced = False        # the last search forced playouts (its policy target is pruned)
        self.root_board = board    # the root position; other nodes' positions are replayed

    @property
    def board(self):
        """The root position (do not modify it; `advance` plays moves)."""
        return self.root_board

    @property
    def root_visits(self) -> int:
        return int(self.N[self.root])

    @property
    def expanded(self) -> bool:
        return self.state[self.root] == EXPANDED

    def ensure_capacity(self, extra: int) -> None:
        if self.next_free + extra <= self.cap:
            return
        cap = self.cap
        while self.next_free + extra > cap:
            cap *= 2
        for name, dt in _ARRAYS:
            old = getattr(self, name)
            new = np.zeros(cap, dtype=dt)
            new[: self.next_free] = old[: self.next_free]
            setattr(self, name, new)
        self.cap = cap

    def _arrays(self):
        return (self.parent, self.move, self.cstart, self.nch, self.N, self.W, self.P, self.Praw,
                self.VL, self.state, self.tval, self.V)

    # -- results
    def children(self) -> range:
        r = self.root
        return range(self.cstart[r], self.cstart[r] + self.nch[r]) if self.expanded else range(0)

    def visit_counts(self) -> np.ndarray:
        counts = np.zeros(self.A, dtype=np.int64)
        kids = self.children()
        if len(kids):
            counts[self.move[kids.start:kids.stop]] = self.N[kids.start:kids.stop].astype(np.int64)
        return counts

    def policy_target(self) -> np.ndarray:
        """Visit distribution over all moves (pass last), float32 summing to 1; after a Gumbel
        search, the improved policy softmax(log P + sigma(completed Q)) (`gumbel.improved_policy`)."""
        if self.gumbel is not None and self.expanded:
            from go_core.learn.gumbel import improved_policy
            return improved_policy(self)
        counts = (self.pruned_visit_counts() if self.forced else self.visit_counts()).astype(np.float64)
        total = counts.sum()
        if total == 0:
            raise ValueError("policy_target() before any simulation below the root; run a search first")
        return (counts / total).astype(np.float32)

    def pruned_visit_counts(self) -> np.ndarray:
        """KataGo's policy target pruning after forced playouts: every child but the most visited
        one loses up to its sqrt(forced_k * P * sum N) forced visits, as many as keep its PUCT score
        below the best child's; a child left with one visit or fewer is dropped (float64, size*size+1)."""
        cfg = self.cfg
        kids = np.arange(self.children().start, self.children().stop)
        out = np.zeros(self.A, dtype=np.float64)
        if not len(kids):
            return out
        n, w, p = self.N[kids].copy(), self.W[kids], self.P[kids].astype(np.float64)
        total, n_root = n.sum(), self.N[self.root]
        cp = cfg.c_puct + (math.log((1 + n_root + cfg.c_puct_base) / cfg.c_puct_base) if cfg.c_puct_base else 0)
        u = cp * p * math.sqrt(max(n_root - 1, 1))
        best = int(np.lexsort((-p, -n))[0])
        best_score = w[best] / n[best] + u[best] / (1 + n[best])
        for j in range(len(kids)):
            if j == best or n[j] == 0:
                continue
            q = w[j] / n[j]
            gap = best_score - q
            # the fewest visits at which this child's PUCT score is still below the best child's
            floor = math.floor(u[j] / gap - 1) + 1 if gap > 0 else n[j]
            keep = max(n[j] - math.floor(math.sqrt(cfg.forced_k * p[j] * total)), floor, 0)
            n[j] = min(n[j], keep) if min(n[j], keep) > 1 else 0
        out[self.move[kids]] = n
        return out

    def root_value(self) -> float:
        """Mean value of the search for the player to move at the root, in [-1, 1]."""
        r = self.root
        return float(-self.W[r] / self.N[r]) if self.N[r] > 0 else 0.0

    def child_stats(self) -> list[tuple[int, int, float, float]]:
        """(move, N, Q, P) for each child of the root, most visited first."""
        out = [(int(self.move[c]), int(self.N[c]),
                float(self.W[c] / self.N[c]) if self.N[c] else float("nan"), float(self.P[c]))
               for c in self.children()]
        return sorted(out, key=lambda t: -t[1])

    def best_move(self) -> int:
        """Most visited move (ties: higher prior); after a Gumbel search, the move Sequential
        Halving ends with. A fresh, unsearched tree is an error."""
        kids = self.children()
        if not len(kids):
            raise ValueError("best_move() on a tree that has not been searched")
        if self.gumbel is not None:
            from go_core.learn.gumbel import chosen_move
            return chosen_move(self)
        s, e = kids.start, kids.stop
        c = s + int(np.lexsort((-self.P[s:e], -self.N[s:e]))[0])
        return int(self.move[c])

    def pick_move(self, temperature: float, rng: np.random.Generator | None = None) -> int:
        """T == 0: the most visited move; else sample a move with probability ∝ N^(1/T)."""
        if temperature <= 0:
            return self.best_move()
        counts = self.visit_counts().astype(np.float64)
        if counts.sum() == 0:
            return self.best_move()
        logw = np.where(counts > 0, np.log(np.maximum(counts, 1e-300)) / temperature, -np.inf)
        w = np.exp(logw - logw.max())
        rng = rng or np.random.default_rng()
        return int(rng.choice(self.A, p=w / w.sum()))

    # -- moving on
    def advance(self, move: int, keep_subtree: bool = True) -> None:
        """Play `move` at the root. With `keep_subtree` the searched subtree under it is kept
        (its visits count towards the next search); otherwise the tree starts afresh."""
        board = self.board
        child = -1
        for c in self.children():
            if self.move[c] == move:
                child = c
                break
        nb = board.copy()
        nb.play(move)
        if not keep_subtree or child < 0 or self.state[child] not in (EXPANDED, TERMINAL):
            self._reset(nb)
            return
        self._compact(child)
        self.root_board = nb

    def _compact(self, child: int) -> None:
        new = [np.zeros(self.cap, dtype=dt) for _, dt in _ARRAYS]
        order = np.empty(self.cap, dtype=np.int64)
        count = _compact(child, *self._arrays(), *new, order)
        for (name, _), arr in zip(_ARRAYS, new):
            setattr(self, name, arr)
        self.root = 0
        self.next_free = count
        self.parent[0] = -1
        self.gumbel = self.gumbel_base = None
        self.forced = False

    def apply_noise(self, rng: np.random.Generator, alpha_total: float, eps: float) -> None:
        """Root prior := (1 - eps) * P + eps * Dirichlet(alpha_total / legal moves)."""
        kids = self.children()
        s, e = kids.start, kids.stop
        if e - s == 0:
            return
        if eps <= 0 or e - s == 1:
            self.P[s:e] = self.Praw[s:e]
            return
        g = rng.gamma(alpha_total / (e - s), size=e - s)
        noise = g / g.sum() if g.sum() > 0 else np.full(e - s, 1.0 / (e - s))
        self.P[s:e] = ((1 - eps) * self.Praw[s:e] + eps * noise).astype(np.float32)

    def clear_noise(self) -> None:
        kids = self.children()
        self.P[kids.start:kids.stop] = self.Praw[kids.start:kids.stop]
