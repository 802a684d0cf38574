"""The numba kernels of the PUCT search (go_core/learn/mcts.py), over the flat arrays of one
game's `Tree` (go_core/learn/search_tree.py): selection with virtual loss and forced playouts,
expansion and backup of a round's leaves, the paths from the root to the leaves, and the subtree
compaction of tree reuse. The plain-Python PUCT they are tested against is
`search_tree.select_child_reference`.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from go_core.learn.tree_ops import _backup, _remove_vl

# node states
NEW, PENDING, EXPANDED, TERMINAL = 0, 1, 2, 3


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
