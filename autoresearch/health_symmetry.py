"""Health check: a net trained with augmentation answers the same under the 8 board symmetries
(policy equivariant, value invariant).

Who computes what, and why:
- The positions are chosen here, by the harness: random legal move sequences played on the
  referee's rules engine (go_core/game, which a node may not patch).
- The net runs through the NODE's own code (its worktree, its patch, sandboxed by run_check):
  the architecture and the features are the learner's, so only its code can load its
  checkpoint; the referee's feature code would rate a different net for a node that changed
  the features. The probe plays each sequence and its 8 transformed copies (the referee's
  `transform_move`) and prints the raw policies and values.
- The comparison is done here, outside the sandbox, with the referee's symmetry tables: a node's
  code can bend what its net outputs (that is what is under test) but not how the outputs are
  judged. A node that detects the probe and answers differently from how it plays is not
  caught by this check (the referee's games still rate how it plays).

The number: for each position, the mean over the 7 non-identity symmetries of the total
variation distance between the policy and the inverse-transformed policy of the transformed
position; the check fails when its mean over positions exceeds `health.symmetry_max_tv`.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from autoresearch.health import PROBE_TIMEOUT_S, HealthFlag, augment_on

SYMMETRY_PROBE = r'''
import json, sys
import numpy as np
from go_core.game.board import Board
from go_core.game.symmetry import transform_move
from go_core.learn.evaluators import NetEvaluator
from go_core.learn.net import load_checkpoint
spec = json.loads(sys.argv[1])
net, meta = load_checkpoint(spec["checkpoint"], "cpu")
size = spec["size"]
boards = []
for moves in spec["positions"]:
    for k in range(8):
        b = Board(size, spec["komi"])
        for m in moves:
            b.play(transform_move(m, k, size))
        boards.append(b)
priors, values = NetEvaluator(net, "cpu", max_batch=64).evaluate(boards)
np.savez(spec["out"], priors=priors, values=values)
print("SYMMETRY_PROBE", len(boards))
'''


def _mkdir(path: Path | str) -> str:
    Path(path).mkdir(parents=True, exist_ok=True)
    return str(path)


def random_positions(size: int, n: int, seed: int = 0, moves: tuple[int, int] = (6, 30)) -> list[list[int]]:
    """`n` random legal move sequences (no passes), each 6-30 moves long."""
    from go_core.game.board import Board
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        b = Board(size)
        seq: list[int] = []
        for _ in range(int(rng.integers(*moves))):
            legal = [m for m in b.legal_moves() if m != size * size]
            if not legal:
                break
            m = int(rng.choice(legal))
            b.play(m)
            seq.append(m)
        out.append(seq)
    return out


def symmetry_spread(priors: np.ndarray, values: np.ndarray, size: int) -> tuple[float, float]:
    """(mean policy TV distance, mean value range) of positions evaluated under 8 symmetries each
    (rows grouped by 8, symmetry k at row offset k)."""
    from go_core.game.symmetry import dest_index
    priors = np.asarray(priors, dtype=np.float64).reshape(-1, 8, size * size + 1)
    values = np.asarray(values, dtype=np.float64).reshape(-1, 8)
    tvs = []
    for p in priors:
        back = [p[k][dest_index(k, size)] for k in range(1, 8)]   # p_k at the image of each move
        tvs.append(np.mean([0.5 * np.abs(b - p[0]).sum() for b in back]))
    return float(np.mean(tvs)), float(np.mean(values.max(1) - values.min(1)))


def symmetry_invariant(repo_root: Path | str, workspace: Path | str, node: Any, checkpoint: Path | None,
                       size: int, komi: float, max_tv: float, positions: int = 8,
                       sandbox_wanted: str = "auto", timeout_s: float = PROBE_TIMEOUT_S) -> HealthFlag:
    from autoresearch.proposers.run_check import run_check
    name = "symmetry"
    if not augment_on(node.overrides):
        return HealthFlag(name, None, "train.augment=false: the net need not be symmetric")
    if checkpoint is None:
        return HealthFlag(name, False, "no checkpoint to probe")
    with tempfile.TemporaryDirectory(prefix=f"symmetry-{node.id}-", dir=_mkdir(workspace)) as out:
        # a copy the sandboxed probe can read (the folder is handed to its uid), whoever wrote it
        shutil.copyfile(checkpoint, Path(out) / "checkpoint.pt")
        spec = {"checkpoint": str(Path(out) / "checkpoint.pt"), "size": size, "komi": komi,
                "positions": random_positions(size, positions, seed=int(node.id)),
                "out": str(Path(out) / "outputs.npz")}
        res = run_check(repo_root, workspace, node,
                        [sys.executable, "-c", SYMMETRY_PROBE, json.dumps(spec)], timeout_s,
                        sandbox_wanted, out_dir=Path(out))
        line = next((x for x in res.output.splitlines() if x.startswith("SYMMETRY_PROBE ")), None)
        if res.rc != 0 or line is None:
            return HealthFlag(name, False, f"the node's net could not be probed ({res.text()[-500:]})")
        try:
            with np.load(spec["out"], allow_pickle=False) as z:
                priors, values = np.array(z["priors"]), np.array(z["values"])
            tv, dv = symmetry_spread(priors, values, size)
        except (OSError, ValueError, KeyError, TypeError) as e:
            return HealthFlag(name, False, f"the probe's output is malformed ({e})")
    text = (f"policy differs by {tv:.3f} (mean total variation, {positions} positions x 8 "
            f"symmetries; allowed {max_tv}), value by {dv:.3f} on average")
    return HealthFlag(name, tv <= max_tv, text if tv <= max_tv else
                      f"trained with augmentation but not symmetric: {text}")
