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
  kernels over flat arrays; `select_child_reference` is the plain-Python PUCT the tests compare.
- `cfg.root = "gumbel"`: Gumbel root search instead of PUCT (`go_core.learn.gumbel`: Gumbel-top-m
  + Sequential Halving at the root, the deterministic rule below it, virtual visits instead of
  virtual loss); then `policy_target()` is the completed-Q improved policy, `best_move()` the move
  Sequential Halving ends with, and "noise" means Gumbel noise (`gumbel_scale`), not Dirichlet.
- `cfg.forced_playouts` (PUCT, searches with noise only): KataGo's forced playouts at the root,
  and `policy_target()` pruned of them (`Tree.pruned_visit_counts`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numba
import numpy as np

from go_core.learn.gumbel import considered_visit_sequence, select_leaves_gumbel
from go_core.learn.tree_ops import _backup, _remove_vl

# node states
NEW, PENDING, EXPANDED, TERMINAL = 0, 1, 2, 3


@dataclass
class MCTSConfig:
    """The search's settings (the `mcts` config group's schema). How many simulations a move gets,
    the move temperature and tree reuse belong to whoever runs the search (self-play:
    `go_core.learn.selfplay.SelfPlayConfig`; a rating: its visits)."""
    c_puct: float = 1.25              # PUCT exploration: U = c_puct * P * sqrt(N_parent) / (1 + N)
    c_puct_base: float = 19652.0      # AlphaZero's slow growth: c += log((1 + N_p + base) / base) (0: off)
    fpu_reduction: float = 0.25       # first-play urgency: unvisited child's Q = parent Q - this * sqrt(prior mass visited)
    fpu_reduction_root: float = 0.0   # the same at the root (0: explore the root's moves freely)
    dirichlet_alpha_total: float = 10.83  # root noise in self-play: alpha per move = this / legal moves (KataGo)
    dirichlet_eps: float = 0.25       # weight of that noise in the root prior (0: no noise)
    leaves_per_game: int = 8          # leaves per game gathered (virtual loss) before each forward pass, at most...
    min_rounds: int = 8               # ...simulations/min_rounds of them, so a small search stays sequential (16 visits in 2 rounds of 8 is a one-ply sample)
    virtual_loss: float = 1.0         # each pending visit counts as a loss of this size for its path
    max_batch: int = 1024             # positions per forward pass of the net at most (go_core.learn.evaluators.NetEvaluator)
    initial_nodes: int = 4096         # node capacity a new tree starts with (doubles when full)
    root: str = "puct"                # root search: puct (AlphaZero) | gumbel (Gumbel-top-m + Sequential Halving, improved-policy targets)
    gumbel_m: int = 16                # gumbel: moves sampled at the root (Gumbel-top-m) for Sequential Halving
    gumbel_scale: float = 1.0         # gumbel: scale of the Gumbel noise in searches with noise (0: deterministic)
    gumbel_c_visit: float = 50.0      # gumbel: sigma(q) = (c_visit + max N) * c_scale * q, q rescaled to [0, 1]
    gumbel_c_scale: float = 0.1       # gumbel: see gumbel_c_visit
    forced_playouts: bool = False     # KataGo forced playouts in noisy (self-play) PUCT searches; the policy target is pruned of them
    forced_k: float = 2.0             # forced playouts: a visited root child gets at least sqrt(forced_k * P * sum N) visits


def search_config_from(meta: dict, **overrides) -> MCTSConfig:
    """The search settings a checkpoint was trained with (`meta["mcts"]`, written by
    experiments/train.py), with `overrides` on top; defaults for a checkpoint that holds none.
    Ratings play a node with its own search settings this way; only the visits are the referee's."""
    known = {f for f in MCTSConfig.__dataclass_fields__}
    stored = {k: v for k, v in (meta.get("mcts") or {}).items() if k in known}
    return MCTSConfig(**{**stored, **overrides})


# ------------------------------------------------------------------ numba kernels

@numba.njit(cache=True, nogil=True, inline="always")
def _puct_child(p, cstart, nch, N, W, P, VL, c_puct, c_base, fpu_red, vl_w):
    np_ = N[p] + VL[p]
    cp = c_puct
    if c_base > 0.0:
        cp += math.log((1.0 + np_ + c_base) / c_base)
    sq = math.sqrt(max(np_ - 1.0, 1.0))
    q_parent = -W[p] / N[p] if N[p] > 0 else 0.0
    visited_p = 0.0
    s = cstart[p]
    for c in range(s, s + nch[p]):
        if N[c] + VL[c] > 0:
            visited_p += P[c]
    fpu = q_parent - fpu_red * math.sqrt(visited_p)
    best = s
    best_score = -1e30
    for c in range(s, s + nch[p]):
        n = N[c] + VL[c]
        if n > 0:
            q = (W[c] - VL[c] * vl_w) / n
        else:
            q = fpu
        score = q + cp * P[c] * sq / (1.0 + n)
        if score > best_score:
            best_score = score
            best = c
    return best


@numba.njit(cache=True, nogil=True)
def _forced_child(p, cstart, nch, N, P, VL, forced_k):
    """KataGo's forced playouts: a visited child of the root with fewer than
    sqrt(forced_k * P * sum N) visits is chosen (the highest prior first); -1 if none is owed."""
    s = cstart[p]
    total = 0.0
    for c in range(s, s + nch[p]):
        total += N[c] + VL[c]
    best = -1
    best_p = -1.0
    for c in range(s, s + nch[p]):
        n = N[c] + VL[c]
        if n > 0 and n < math.sqrt(forced_k * P[c] * total) and P[c] > best_p:
            best_p = P[c]
            best = c
    return best


@numba.njit(cache=True, nogil=True)
def _select_leaves(root, max_leaves, parent, cstart, nch, N, W, P, VL, state, tval,
                   c_puct, c_base, fpu_red, fpu_red_root, vl_w, forced_k, out):
    """Descend up to max_leaves times; returns (new leaves written to out, terminal sims backed up).

    A new leaf is marked PENDING and keeps its virtual loss until `_finish_leaves`. Reaching a
    terminal node backs up its stored value at once. Reaching a PENDING node (a collision) ends
    this round for the tree."""
    n_out = 0
    n_term = 0
    for _ in range(max_leaves):
        node = root
        VL[node] += 1.0
        while state[node] == EXPANDED:
            forced = -1
            if node == root and forced_k > 0.0:
                forced = _forced_child(node, cstart, nch, N, P, VL, forced_k)
            if forced >= 0:
                node = forced
            else:
                fr = fpu_red_root if node == root else fpu_red
                node = _puct_child(node, cstart, nch, N, W, P, VL, c_puct, c_base, fr, vl_w)
            VL[node] += 1.0
        st = state[node]
        if st == TERMINAL:
            _remove_vl(node, parent, VL)
            _backup(node, tval[node], parent, N, W)
            n_term += 1
        elif st == PENDING:
            _remove_vl(node, parent, VL)
            break
        else:  # NEW
            state[node] = PENDING
            out[n_out] = node
            n_out += 1
    return n_out, n_term


@numba.njit(cache=True, nogil=True)
def _finish_leaves(leaves, is_terminal, priors, values, next_free, parent, move, cstart, nch,
                   N, W, P, Praw, VL, state, tval, V):
    """Expand each evaluated leaf (children = moves with prior > 0), then back up its value."""
    A = priors.shape[1]
    for i in range(leaves.shape[0]):
        leaf = leaves[i]
        V[leaf] = values[i]  # the evaluator's own value (Gumbel's completed Q mixes it in)
        if is_terminal[i]:
            state[leaf] = TERMINAL
            tval[leaf] = values[i]
        else:
            s = next_free
            for m in range(A):
                pm = priors[i, m]
                if pm > 0.0:
                    parent[next_free] = leaf
                    move[next_free] = m
                    cstart[next_free] = -1
                    nch[next_free] = 0
                    N[next_free] = 0.0
                    W[next_free] = 0.0
                    P[next_free] = pm
                    Praw[next_free] = pm
                    VL[next_free] = 0.0
                    state[next_free] = NEW
                    next_free += 1
            cstart[leaf] = s
            nch[leaf] = next_free - s
            state[leaf] = EXPANDED
        _remove_vl(leaf, parent, VL)
        _backup(leaf, values[i], parent, N, W)
    return next_free


@numba.njit(cache=True, nogil=True)
def _compact(root, parent, move, cstart, nch, N, W, P, Praw, VL, state, tval, V,
             o_parent, o_move, o_cstart, o_nch, o_N, o_W, o_P, o_Praw, o_VL, o_state, o_tval, o_V, order):
    """Copy the subtree under `root` into the o_* arrays in BFS order (child blocks stay
    contiguous); order[new] = old. Returns the number of nodes copied."""
    order[0] = root
    count = 1
    head = 0
    while head < count:
        old = order[head]
        o_parent[head] = -1
        o_move[head] = move[old]
        o_N[head] = N[old]
        o_W[head] = W[old]
        o_P[head] = P[old]
        o_Praw[head] = Praw[old]
        o_VL[head] = 0.0
        o_state[head] = state[old] if state[old] != PENDING else NEW
        o_tval[head] = tval[old]
        o_V[head] = V[old]
        if state[old] == EXPANDED:
            o_cstart[head] = count
            o_nch[head] = nch[old]
            for c in range(cstart[old], cstart[old] + nch[old]):
                order[count] = c
                count += 1
        else:
            o_cstart[head] = -1
            o_nch[head] = 0
        head += 1
    for i in range(count):
        if o_state[i] == EXPANDED:
            for c in range(o_cstart[i], o_cstart[i] + o_nch[i]):
                o_parent[c] = i
    return count


@numba.njit(cache=True, nogil=True)
def _paths(leaves, root, parent, move, out):
    """out[j, :d] = moves from leaf j up to (not including) root, leaf first; returns depths.
    A depth larger than out.shape[1] is returned without writing past the end."""
    depths = np.zeros(leaves.shape[0], dtype=np.int64)
    for j in range(leaves.shape[0]):
        node = leaves[j]
        d = 0
        while node != root:
            if d < out.shape[1]:
                out[j, d] = move[node]
            d += 1
            node = parent[node]
        depths[j] = d
    return depths


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


# ------------------------------------------------------------------ the tree of one game

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


# ------------------------------------------------------------------ batched search

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
