"""Evaluators: what MCTS asks for at a leaf — a prior over moves and a value.

    class Evaluator(Protocol):
        def evaluate(self, boards: Sequence[Board]) -> tuple[np.ndarray, np.ndarray]: ...

`evaluate(boards)` takes k positions of one board size and returns
- `priors`: float32 (k, size*size + 1), pass last; each row sums to 1, is **> 0 exactly on the
  legal moves** and 0 elsewhere (MCTS expands the moves with a positive prior, so an evaluator
  never hides a legal move by rounding it to zero);
- `values`: float32 (k,) in [-1, 1], the expected result for the player to move
  (+1 = that player wins).

Implementations:
- `NetEvaluator(net, device, max_batch, fuse=True)`: one batched forward pass (chunks of
  `max_batch`) of a `go_core.learn.net.PolicyValueNet`, under `torch.inference_mode` and, on CUDA,
  bf16 autocast, always in eval mode (whatever mode the training loop left `net` in). With
  `fuse` it runs a BatchNorm-folded copy (`net.fuse_for_inference`, ~1.5-2x faster on CPU) that
  is rebuilt automatically whenever `net`'s weights or BN statistics change (torch's in-place
  version counters), so one evaluator can serve a net that is being trained.
- `UniformEvaluator()`: uniform prior over legal moves, value 0 — MCTS with it is pure search.
- `RolloutEvaluator(rollouts, seed)`: uniform prior; value = mean result of random playouts
  (no filling one's own single-point eyes) scored by Tromp-Taylor. Slow; for tests on small boards.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
import torch

from go_core.learn.features import encode_numpy

PRIOR_FLOOR = 1e-6  # smallest prior a legal move gets after softmax (renormalized)


class Evaluator(Protocol):
    def evaluate(self, boards: Sequence) -> tuple[np.ndarray, np.ndarray]: ...


def _legal_masks(boards: Sequence) -> np.ndarray:
    size = boards[0].size
    if any(b.size != size for b in boards):
        raise ValueError("evaluate() got boards of several sizes; call it once per board size")
    return np.stack([b.legal_mask() for b in boards])


def _uniform(legal: np.ndarray) -> np.ndarray:
    p = legal.astype(np.float32)
    p /= np.maximum(p.sum(axis=1, keepdims=True), 1.0)
    return p


def masked_softmax(logits: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """Softmax over legal moves only; every legal move keeps at least PRIOR_FLOOR (renormalized)."""
    z = np.where(legal, logits, -np.inf).astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p = np.where(legal, np.maximum(p, PRIOR_FLOOR), 0.0)
    p /= p.sum(axis=1, keepdims=True)
    return p.astype(np.float32)


class UniformEvaluator:
    """Uniform prior over legal moves and value 0: MCTS without any knowledge."""

    def evaluate(self, boards: Sequence) -> tuple[np.ndarray, np.ndarray]:
        legal = _legal_masks(boards)
        return _uniform(legal), np.zeros(len(boards), dtype=np.float32)


class RolloutEvaluator:
    """Uniform prior; value from `rollouts` random playouts per position, scored by Tromp-Taylor."""

    def __init__(self, rollouts: int = 4, seed: int = 0, max_moves: int | None = None):
        self.rollouts = rollouts
        self.rng = np.random.default_rng(seed)
        self.max_moves = max_moves  # default: 3 * points on the board

    def playout(self, board) -> float:
        """One random game from `board` (Board.random_playout: no filling one's own eyes);
        +1 if the player to move at `board` wins, -1 if not, 0 for a draw."""
        me = board.to_play
        end = board.random_playout(self.rng, self.max_moves)
        winner = end.winner()
        return 0.0 if winner == 0 else (1.0 if winner == me else -1.0)

    def evaluate(self, boards: Sequence) -> tuple[np.ndarray, np.ndarray]:
        legal = _legal_masks(boards)
        values = np.array([np.mean([self.playout(b) for _ in range(self.rollouts)]) for b in boards],
                          dtype=np.float32)
        return _uniform(legal), values


class NetEvaluator:
    """Batched forward passes of a PolicyValueNet: `max_batch` positions per pass at most."""

    def __init__(self, net: torch.nn.Module, device: str | torch.device | None = None,
                 max_batch: int = 1024, fuse: bool = True):
        from go_core.learn.net import select_device
        self.device = select_device(device or next(net.parameters()).device)
        self.net = net.to(self.device)
        self.max_batch = max_batch
        self.fuse = fuse
        self._fused = None
        self._fingerprint = None
        self.positions = 0  # positions evaluated so far
        self.batches = 0    # forward passes so far

    def _weights_fingerprint(self):
        return tuple(t._version for t in self.net.parameters()) + \
            tuple(t._version for t in self.net.buffers()) + (id(self.net),)

    def inference_net(self) -> torch.nn.Module:
        """The module that evaluates: a fused eval-mode copy, refreshed when `net` changed."""
        if not self.fuse:
            return self.net
        fp = self._weights_fingerprint()
        if self._fused is None or fp != self._fingerprint:
            from go_core.learn.net import fuse_for_inference
            self._fused = fuse_for_inference(self.net).to(self.device)
            self._fingerprint = fp
        return self._fused

    @torch.inference_mode()
    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw net outputs (logits (B, A), values (B,)) for encoded planes x (B, C, S, S)."""
        from go_core.learn.net import autocast, to_inference_layout
        net = self.inference_net()
        was_training = net.training
        net.eval()
        logits_out, values_out = [], []
        for i in range(0, len(x), self.max_batch):
            xb = torch.from_numpy(x[i:i + self.max_batch]).to(self.device, non_blocking=True)
            if self.fuse:
                xb = to_inference_layout(xb)
            with autocast(self.device):
                logits, values = net(xb)
            logits_out.append(logits.float().cpu().numpy())
            values_out.append(values.float().cpu().numpy())
            self.batches += 1
        if was_training:
            net.train()
        self.positions += len(x)
        return np.concatenate(logits_out), np.concatenate(values_out)

    def evaluate(self, boards: Sequence) -> tuple[np.ndarray, np.ndarray]:
        legal = _legal_masks(boards)
        logits, values = self.forward(encode_numpy(boards))
        return masked_softmax(logits, legal), values.astype(np.float32)
