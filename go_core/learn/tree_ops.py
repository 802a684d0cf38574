"""Walks from a node up to the root of a flat-array search tree, shared by PUCT (mcts.py) and
Gumbel (gumbel.py) search: back a value up, and take virtual loss back off."""
import numba


@numba.njit(cache=True, nogil=True)
def _backup(node, value, parent, N, W):
    """value is for the player to move at `node`; W[x] is for the player who moved into x."""
    v = -value
    while node >= 0:
        N[node] += 1.0
        W[node] += v
        v = -v
        node = parent[node]


@numba.njit(cache=True, nogil=True)
def _remove_vl(node, parent, VL):
    while node >= 0:
        VL[node] -= 1.0
        node = parent[node]
