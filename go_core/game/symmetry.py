"""The 8 symmetries of the square board (the dihedral group D4), on planes and on policies.

Symmetry `k` in 0..7 is `k % 4` quarter-turns counter-clockwise (`np.rot90`) followed, when
`k >= 4`, by a left-right mirror. Board planes have the board in their last two axes; a policy
vector has `size*size + 1` entries, the last being pass, which no symmetry moves.

Boards and policies are mapped by the same index permutation, so a move `m` on the original board
is the move `transform_move(m, k, size)` on the transformed one (the tests check this against
playing the move on a transformed board).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

N_SYMMETRIES = 8


def _apply_np(x: np.ndarray, k: int) -> np.ndarray:
    y = np.rot90(x, k % 4, axes=(-2, -1))
    if k >= 4:
        y = np.flip(y, axis=-1)
    return np.ascontiguousarray(y)


def _apply_torch(x: torch.Tensor, k: int) -> torch.Tensor:
    y = torch.rot90(x, k % 4, dims=(-2, -1))
    if k >= 4:
        y = torch.flip(y, dims=(-1,))
    return y


def transform_planes(x, k: int):
    """Symmetry `k` of planes `x` (numpy or torch; board in the last two axes)."""
    if not 0 <= k < N_SYMMETRIES:
        raise ValueError(f"symmetry must be in 0..7, got {k}")
    return _apply_torch(x, k) if isinstance(x, torch.Tensor) else _apply_np(x, k)


@lru_cache(maxsize=None)
def source_index(k: int, size: int) -> np.ndarray:
    """`src[j]` = the original point that lands on point `j` under symmetry `k`; pass stays pass.

    Gathering with it transforms a policy: `new_policy = policy[..., src]`.
    """
    grid = np.arange(size * size).reshape(size, size)
    src = _apply_np(grid, k).reshape(-1)
    out = np.append(src, size * size).astype(np.int64)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=None)
def dest_index(k: int, size: int) -> np.ndarray:
    """`dst[m]` = where the original point `m` lands under symmetry `k` (the inverse of `source_index`)."""
    src = source_index(k, size)
    dst = np.empty_like(src)
    dst[src] = np.arange(len(src))
    dst.setflags(write=False)
    return dst


def transform_policy(p, k: int, size: int):
    """Symmetry `k` of policy vectors `p` (..., size*size+1), numpy or torch."""
    src = source_index(k, size)
    if p.shape[-1] != len(src):
        raise ValueError(f"policy has {p.shape[-1]} entries; a {size}x{size} board needs {len(src)}")
    if isinstance(p, torch.Tensor):
        return p[..., torch.tensor(src, device=p.device)]
    return p[..., src]


def transform_move(m: int, k: int, size: int) -> int:
    """The move `m` (a point or pass) after symmetry `k`."""
    return int(dest_index(k, size)[m])


def inverse(k: int) -> int:
    """The symmetry that undoes `k`: rotations invert to the opposite turn; reflections are involutions."""
    return (4 - k) % 4 if k < 4 else k


def augment_batch(planes: torch.Tensor, policy: torch.Tensor, generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample of a training batch under its own random symmetry (planes (B,C,S,S), policy (B,S*S+1))."""
    size = planes.shape[-1]
    ks = torch.randint(0, N_SYMMETRIES, (planes.shape[0],), generator=generator)
    out_x = torch.empty_like(planes)
    out_p = torch.empty_like(policy)
    for k in range(N_SYMMETRIES):
        idx = (ks == k).nonzero(as_tuple=True)[0].to(planes.device)
        if len(idx) == 0:
            continue
        out_x[idx] = transform_planes(planes[idx], k)
        out_p[idx] = transform_policy(policy[idx], k, size)
    return out_x, out_p
