"""Gumbel root search (Danihelka et al., "Policy improvement by planning with Gumbel", ICLR 2022),
over the flat arrays of `go_core.learn.search_tree.Tree`; the search loop itself is `mcts.BatchedMCTS`
with `MCTSConfig.root = "gumbel"`.

Why: PUCT's visit counts improve the policy only when there are many more visits than moves;
with 4-32 simulations they mostly echo the prior. Gumbel search keeps improving it at any budget:

- Root: draw g(a) ~ Gumbel(0, 1) (times `gumbel_scale`; none in a search without noise) for each
  legal move a, take the m = `gumbel_m` moves with the largest g(a) + logit(a) (sampling without
  replacement from the prior), then Sequential Halving over them: the simulations are split into
  ceil(log2 m) phases, each visiting every remaining move equally, and after each phase the better
  half by g(a) + logit(a) + sigma(q(a)) stays. As in mctx, the schedule is stateless: simulation i
  goes to the best-scoring move whose visit count equals `considered_visit_sequence(m, n)[i]`.
- Completed Q: a visited child keeps its Q; an unvisited one gets v_mix, the node's own net value
  mixed with the prior-weighted Q of the visited children. Q is rescaled to [0, 1] over the
  node's children (min/max) and sigma(q) = (c_visit + max_b N(b)) * c_scale * q.
- Policy target: the improved policy pi' = softmax(logit + sigma(completed Q)) over the legal
  moves (it sums to 1 over them and is 0 elsewhere), not the visit distribution.
- Interior nodes: the deterministic rule argmax_a pi'(a) - N(a) / (1 + sum_b N(b)), which makes the
  visit distribution track pi'.
- The move played (temperature 0): the move Sequential Halving ends with (most visits, then the
  best g + logit + sigma(q)); with noise on, the Gumbel draw is the exploration.

Batching: many leaves per round use *virtual visits* (a pending visit counts in N for choosing,
never in Q), so the schedule and the interior rule spread them just like sequential visits.
With tree reuse the root's children keep their statistics; the schedule counts only this
search's visits (`Tree.gumbel_base` holds the counts it started from).

`completed_q_reference`, `improved_policy`, `interior_child_reference` are the plain-numpy
versions the numba kernels are tested against.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np

from go_core.learn.tree_ops import _backup, _remove_vl

EXPANDED, PENDING, TERMINAL = 2, 1, 3  # the node states of go_core.learn.puct_kernels


@lru_cache(maxsize=256)
def considered_visit_sequence(m: int, n: int) -> np.ndarray:
    """For each of n root simulations, the visit count the move it visits must have (mctx's
    `get_sequence_of_considered_visits`): Sequential Halving over m moves as a flat schedule."""
    if m <= 1:
        return np.arange(n, dtype=np.float64)
    log2max = int(math.ceil(math.log2(m)))
    seq: list[int] = []
    visits = [0] * m
    considered = m
    while len(seq) < n:
        extra = max(1, int(n / (log2max * considered)))
        for _ in range(extra):
            seq.extend(visits[:considered])
            for i in range(considered):
                visits[i] += 1
        considered = max(2, considered // 2)
    return np.array(seq[:n], dtype=np.float64)


# ------------------------------------------------------------------ numba kernels

@numba.njit(cache=True, nogil=True)
def _sigma_completed_q(p, cstart, nch, N, W, P, V, c_visit, c_scale, out):
    """out[j] = sigma(completed, rescaled Q) of child cstart[p] + j, from p's player's view."""
    s = cstart[p]
    n = nch[p]
    sum_n = 0.0
    max_n = 0.0
    sum_p = 0.0
    sum_pq = 0.0
    for j in range(n):
        c = s + j
        if N[c] > 0:
            sum_n += N[c]
            max_n = max(max_n, N[c])
            sum_p += P[c]
            sum_pq += P[c] * W[c] / N[c]
    v_mix = V[p]
    if sum_n > 0 and sum_p > 0:
        v_mix = (V[p] + sum_n * sum_pq / sum_p) / (1.0 + sum_n)
    lo = 1e30
    hi = -1e30
    for j in range(n):
        c = s + j
        q = W[c] / N[c] if N[c] > 0 else v_mix
        out[j] = q
        lo = min(lo, q)
        hi = max(hi, q)
    scale = (c_visit + max_n) * c_scale / max(hi - lo, 1e-8)
    for j in range(n):
        out[j] = (out[j] - lo) * scale


@numba.njit(cache=True, nogil=True)
def _interior_child(p, cstart, nch, N, W, P, VL, V, c_visit, c_scale, buf):
    """argmax_a softmax(log P + sigma(q))(a) - (N + VL)(a) / (1 + sum (N + VL))."""
    s = cstart[p]
    n = nch[p]
    _sigma_completed_q(p, cstart, nch, N, W, P, V, c_visit, c_scale, buf)
    top = -1e30
    tot = 0.0
    for j in range(n):
        buf[j] += math.log(max(P[s + j], 1e-30))
        top = max(top, buf[j])
        tot += N[s + j] + VL[s + j]
    z = 0.0
    for j in range(n):
        buf[j] = math.exp(buf[j] - top)
        z += buf[j]
    best = s
    best_score = -1e30
    for j in range(n):
        c = s + j
        score = buf[j] / z - (N[c] + VL[c]) / (1.0 + tot)
        if score > best_score:
            best_score = score
            best = c
    return best


@numba.njit(cache=True, nogil=True)
def _root_child(root, cstart, nch, N, W, P, VL, V, g, base, seq, c_visit, c_scale, buf):
    """The next simulation's root move: among the moves whose visits this search equal the
    schedule's count, the best g + log P + sigma(q); if none has it, the least visited, best first."""
    s = cstart[root]
    n = nch[root]
    _sigma_completed_q(root, cstart, nch, N, W, P, V, c_visit, c_scale, buf)
    idx = 0.0
    for j in range(n):
        idx += N[s + j] + VL[s + j] - base[j]
    i = int(idx)
    want = seq[i] if i < seq.shape[0] else -1.0
    best = -1
    best_score = -1e30
    for j in range(n):
        c = s + j
        if N[c] + VL[c] - base[j] == want:
            score = g[j] + math.log(max(P[c], 1e-30)) + buf[j]
            if score > best_score:
                best_score = score
                best = c
    if best >= 0:
        return best
    for j in range(n):  # off the schedule (budget spent, or counts from collisions): fewest visits
        c = s + j
        score = g[j] + math.log(max(P[c], 1e-30)) + buf[j] - 1e6 * (N[c] + VL[c] - base[j])
        if score > best_score:
            best_score = score
            best = c
    return best


@numba.njit(cache=True, nogil=True)
def select_leaves_gumbel(root, max_leaves, parent, cstart, nch, N, W, P, VL, state, tval, V,
                         g, base, seq, c_visit, c_scale, out):
    """Like puct_kernels._select_leaves, with the Gumbel root schedule and the deterministic interior rule
    under virtual visits (VL counts as visits, never as a loss). Returns (new leaves, terminal sims)."""
    buf = np.empty(max(nch[root], 1) + 400, dtype=np.float64)
    n_out = 0
    n_term = 0
    for _ in range(max_leaves):
        node = root
        VL[node] += 1.0
        while state[node] == EXPANDED:
            if nch[node] > buf.shape[0]:
                buf = np.empty(nch[node], dtype=np.float64)
            if node == root:
                node = _root_child(root, cstart, nch, N, W, P, VL, V, g, base, seq, c_visit, c_scale, buf)
            else:
                node = _interior_child(node, cstart, nch, N, W, P, VL, V, c_visit, c_scale, buf)
            VL[node] += 1.0
        st = state[node]
        if st == TERMINAL:
            _remove_vl(node, parent, VL)
            _backup(node, tval[node], parent, N, W)
            n_term += 1
        elif st == PENDING:
            _remove_vl(node, parent, VL)
            break
        else:
            state[node] = PENDING
            out[n_out] = node
            n_out += 1
    return n_out, n_term


# ------------------------------------------------------------------ results and references

def completed_q_reference(tree, node: int, c_visit: float, c_scale: float) -> np.ndarray:
    """sigma(completed Q) of `node`'s children, plain numpy (what `_sigma_completed_q` computes)."""
    kids = np.arange(tree.cstart[node], tree.cstart[node] + tree.nch[node])
    n, w, p = tree.N[kids], tree.W[kids], tree.P[kids].astype(np.float64)
    seen = n > 0
    q = np.where(seen, w / np.maximum(n, 1), 0.0)
    v_mix = float(tree.V[node])
    if seen.any() and p[seen].sum() > 0:
        v_mix = (v_mix + n.sum() * (p[seen] * q[seen]).sum() / p[seen].sum()) / (1 + n.sum())
    q = np.where(seen, q, v_mix)
    q = (q - q.min()) / max(q.max() - q.min(), 1e-8)
    return (c_visit + n.max(initial=0.0)) * c_scale * q


def interior_child_reference(tree, node: int, c_visit: float, c_scale: float) -> int:
    """The deterministic interior rule in plain numpy (no virtual visits)."""
    kids = np.arange(tree.cstart[node], tree.cstart[node] + tree.nch[node])
    z = np.log(np.maximum(tree.P[kids].astype(np.float64), 1e-30)) + completed_q_reference(tree, node, c_visit, c_scale)
    pi = np.exp(z - z.max())
    pi /= pi.sum()
    return int(kids[np.argmax(pi - tree.N[kids] / (1 + tree.N[kids].sum()))])


def improved_policy(tree) -> np.ndarray:
    """pi' = softmax(log P + sigma(completed Q)) at the root over all moves (pass last): the
    policy target of a Gumbel search; float32, sums to 1, 0 on illegal moves."""
    cfg = tree.cfg
    r = tree.root
    kids = np.arange(tree.cstart[r], tree.cstart[r] + tree.nch[r])
    z = np.log(np.maximum(tree.Praw[kids].astype(np.float64), 1e-30)) + \
        completed_q_reference(tree, r, cfg.gumbel_c_visit, cfg.gumbel_c_scale)
    pi = np.exp(z - z.max())
    out = np.zeros(tree.A, dtype=np.float64)
    out[tree.move[kids]] = pi / pi.sum()
    return out.astype(np.float32)


def chosen_move(tree) -> int:
    """The move Sequential Halving ends with: among the children with the most visits of this
    search, the best g + log P + sigma(q)."""
    cfg = tree.cfg
    r = tree.root
    kids = np.arange(tree.cstart[r], tree.cstart[r] + tree.nch[r])
    visits = tree.N[kids] - tree.gumbel_base
    score = tree.gumbel + np.log(np.maximum(tree.P[kids].astype(np.float64), 1e-30)) + \
        completed_q_reference(tree, r, cfg.gumbel_c_visit, cfg.gumbel_c_scale)
    score = np.where(visits == visits.max(), score, -np.inf)
    return int(tree.move[kids[int(np.argmax(score))]])
