"""A checkpoint's loss on the fixed KataGo position set: a game-free measurement of a net.

`loss_on_positions(checkpoint, positions)` runs the checkpoint's net (no training, no search) on
every position of a `PositionSet` (`go_core.arena.katago_positions`) and returns

- `policy_loss`: cross-entropy of the net's policy against KataGo's raw policy (nats);
- `policy_acc`: share of positions where the net's most probable move is the move KataGo played;
- `value_loss`: mean (z - v)^2 with z the game's result for the player to move (training's "mse");
- `value_loss_kata`: mean (k - v)^2 with k KataGo's own raw value there (a less noisy target);
- `n`, `games`, and for each mean its standard error `*_se`, clustered by game (the positions of
  one game share its result, so they are not independent).

Like the batched player (`go_core.learn.batch_player`), it runs the net with the learner's code
(features and net loader) of the checkout it is started from, so run it from the node's worktree
to rate a net whose code changed its features:

    python -m benchmarks.position_loss --checkpoint run/checkpoints/latest.pt [--positions FILE]

prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

BATCH = 256     # positions per forward pass (memory, not results, depends on it)


def clustered_mean_se(x: np.ndarray, cluster: np.ndarray) -> tuple[float, float | None]:
    """Mean of x and its standard error with observations correlated within clusters
    (sandwich estimator: sum over clusters of the squared residual sums, over n^2, times
    G/(G-1)); with one observation per cluster it is the ordinary se with ddof=1. One cluster
    gives no se (None)."""
    n = len(x)
    mean = float(x.mean())
    sums = np.bincount(cluster, weights=x - mean)
    g = int((np.bincount(cluster) > 0).sum())
    if g < 2:
        return mean, None
    return mean, float(np.sqrt((sums ** 2).sum() * g / (g - 1)) / n)


def per_position(checkpoint, positions, device: str = "cpu") -> dict[str, np.ndarray]:
    """The per-position terms behind `loss_on_positions` (arrays of length N)."""
    import torch
    import torch.nn.functional as F
    from go_core.learn.features import encode, policy_index
    from go_core.learn.net import check_board_size, load_checkpoint

    net, meta = load_checkpoint(checkpoint, device)
    check_board_size(meta, positions.size, str(checkpoint))
    target = torch.from_numpy(positions.policy.astype(np.float32))
    ce, hit, v_all = [], [], []
    with torch.no_grad():
        for i in range(0, len(positions), BATCH):
            boards = positions.boards[i:i + BATCH]
            logits, v = net(encode(boards, positions.size).to(net_device(net)))
            logits = logits.float().cpu()
            if logits.shape[1] != positions.size ** 2 + 1:   # a net padded to a larger board
                idx = torch.from_numpy(policy_index(positions.size, int(round((logits.shape[1] - 1) ** 0.5))))
                logits = logits[:, idx]
            logp = F.log_softmax(logits, dim=-1)
            ce.append(-(target[i:i + BATCH] * logp).sum(-1).numpy())
            hit.append((logits.argmax(-1).numpy() == positions.move[i:i + BATCH]).astype(np.float64))
            v_all.append(v.float().cpu().numpy())
    v = np.concatenate(v_all).astype(np.float64)
    return {"policy_loss": np.concatenate(ce).astype(np.float64), "policy_acc": np.concatenate(hit),
            "value_loss": (positions.z - v) ** 2, "value_loss_kata": (positions.kata_value - v) ** 2}


def net_device(net):
    return next(net.parameters()).device


def loss_on_positions(checkpoint, positions=None, device: str = "cpu") -> dict:
    """{policy_loss, policy_acc, value_loss, value_loss_kata, their *_se, n, games} of the
    checkpoint's net on `positions` (a `PositionSet`, or a path; None: the shipped set)."""
    from go_core.arena.katago_positions import PositionSet, load_positions
    if not isinstance(positions, PositionSet):
        positions = load_positions(positions)
    if len(positions) == 0:
        raise ValueError(f"the position set {positions.source or '(in memory)'} is empty")
    out = summarize(per_position(checkpoint, positions, device), positions.game)
    out["positions_source"] = positions.source
    return out


def summarize(terms: dict[str, np.ndarray], game: np.ndarray) -> dict:
    """Means of per-position terms (or of two nets' differences on the same positions) with their
    game-clustered standard errors `*_se`, and n, games."""
    out: dict = {}
    for name, x in terms.items():
        out[name], out[f"{name}_se"] = clustered_mean_se(np.asarray(x, np.float64), game)
    out.update(n=len(game), games=int((np.bincount(game) > 0).sum()))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.position_loss",
                                description="A checkpoint's policy/value loss on the fixed KataGo position set.")
    p.add_argument("--checkpoint", required=True, help="a .pt written by training")
    p.add_argument("--positions", default=None,
                   help="a position file (default: benchmarks/data/katago_positions_9x9.jsonl)")
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    print(json.dumps({"checkpoint": str(Path(a.checkpoint)),
                      **loss_on_positions(a.checkpoint, a.positions, a.device)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
