"""Health checks of a finished node: infrastructure bugs that make a result meaningless even when
its Elo looks fine (issue 16, item 4). The referee runs them on every node that finished ok,
whatever the proposer (`health_metrics`, called by autoresearch/loop.py), and stores them on the node
(`metrics.health`: {suspect, flags, explained?}). A node with a failed check is `suspect` (a mark
on an `ok` node, not a job status): the agent is told (`health_text`), and the node is kept out
of the answer until someone explains it (`explain`: `research explain NODE "reason"`).

Checks:
- losses_finite: every number in the run's metrics.jsonl is finite.
- weights_finite: no NaN/inf in the checkpoint's tensors.
- augmentation_applied: when the node's config says `train.augment=true`, the node's own
  `train_step` (its worktree, its patch, sandboxed) really transforms the boards it trains on.
  A patch that turns augmentation off while the config says on is caught here.
- symmetry (autoresearch/health_symmetry.py): with augmentation on, the net's policy is
  equivariant and its value invariant under the 8 board symmetries.
- value_targets, policy_targets, komi_colour, throughput (autoresearch/health_sample.py): the
  job's self-play sample replayed by the referee's rules engine, and its logged speed.

The checks read files the node wrote (never trusting its summary) or run the node's code in a
sandboxed throwaway worktree (autoresearch/proposers/run_check.py). `ok` is None when a check
does not apply or could not run (said why); only False makes a node suspect.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from experiment_tree.suspect import explain, explanation, failed_checks, is_suspect  # noqa: F401 -- re-exported

PROBE_TIMEOUT_S = 120.0      # the augmentation probe imports torch in a sandbox: seconds, not minutes

# Runs in the node's worktree: a net that records what train_step feeds it, on a batch of
# distinct asymmetric boards. With augmentation on, each of 32 samples gets one of 8 symmetries,
# so P(all identity) = 8^-32: equal inputs mean augmentation did not happen.
AUGMENT_PROBE = r'''
import numpy as np, torch
from go_core.learn.replay import Batch
from go_core.learn.training import TrainConfig, train_step
B, C, S = 32, 4, 9
rng = np.random.default_rng(0)
planes = rng.random((B, C, S, S)).astype(np.float32)
policy = rng.random((B, S * S + 1)).astype(np.float32); policy /= policy.sum(1, keepdims=True)
batch = Batch(planes, policy, np.ones(B, bool), rng.uniform(-1, 1, B).astype(np.float32))
seen = []
class Recorder(torch.nn.Module):
    def __init__(self):
        super().__init__(); self.w = torch.nn.Linear(C * S * S, S * S + 2)
    def forward(self, x):
        seen.append(x.detach().clone()); y = self.w(x.flatten(1)); return y[:, :-1], torch.tanh(y[:, -1])
    def forward_all(self, x):  # the training step of a learner with auxiliary heads calls this
        logits, value = self.forward(x); return {"logits": logits, "value": value}
net = Recorder()
opt = torch.optim.SGD(net.parameters(), lr=0.0)
train_step(net, opt, None, batch, TrainConfig(augment=True), torch.device("cpu"), torch.Generator().manual_seed(1))
changed = int((seen[0] != torch.from_numpy(planes)).flatten(1).any(1).sum())
print("AUGMENT_PROBE", changed, B)
'''


@dataclass(frozen=True)
class HealthFlag:
    check: str
    ok: bool | None              # None: could not be checked (said why)
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def losses_finite(run_dir: Path | str) -> HealthFlag:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return HealthFlag("losses_finite", None, "no metrics.jsonl")
    for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            return HealthFlag("losses_finite", False, f"metrics.jsonl line {i} is not JSON")
        bad = [k for k, v in (row.items() if isinstance(row, dict) else [])
               if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            return HealthFlag("losses_finite", False, f"line {i}: {', '.join(bad)} not finite")
    return HealthFlag("losses_finite", True, "every logged number is finite")


def weights_finite(checkpoint: Path | str | None) -> HealthFlag:
    if not checkpoint or not Path(checkpoint).is_file():
        return HealthFlag("weights_finite", None, "no checkpoint")
    import torch
    try:
        # weights_only: the node wrote this file, so no arbitrary unpickling in the harness;
        # numpy's array reconstruction is allowed (a training checkpoint holds its RNG states
        # and replay buffer as numpy arrays)
        with torch.serialization.safe_globals(_numpy_globals()):
            state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- any unreadable checkpoint is a finding, said as such
        return HealthFlag("weights_finite", False, f"checkpoint does not load: {type(e).__name__}: {e}")
    bad: list[str] = []

    def walk(obj: Any, where: str) -> None:
        if isinstance(obj, torch.Tensor):
            if obj.is_floating_point() and not bool(torch.isfinite(obj).all()):
                bad.append(where)
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{where}.{k}" if where else str(k))
    walk(state, "")
    if bad:
        return HealthFlag("weights_finite", False, f"NaN/inf in {', '.join(bad[:5])}")
    return HealthFlag("weights_finite", True, "no NaN/inf in the checkpoint")


def _numpy_globals() -> list:
    import numpy as np
    core = getattr(np, "_core", None) or np.core
    out = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    return out + [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]


def augment_on(overrides: list[str]) -> bool:
    """The node's config says augmentation is on (the default) unless an override turns it off."""
    for o in overrides or []:
        key, _, value = str(o).partition("=")
        if key.strip().lstrip("+") == "train.augment":
            return value.strip().lower() not in ("false", "0", "no", "off")
    return True


def augmentation_applied(repo_root: Path | str, workspace: Path | str, node: Any,
                         sandbox_wanted: str = "auto", timeout_s: float = PROBE_TIMEOUT_S) -> HealthFlag:
    import sys

    from autoresearch.proposers.run_check import run_check
    if not augment_on(node.overrides):
        return HealthFlag("augmentation_applied", None, "train.augment=false: nothing to check")
    if not (Path(repo_root) / "go_core" / "learn" / "training.py").is_file():
        return HealthFlag("augmentation_applied", None, "no go_core/learn/training.py in this repository")
    res = run_check(repo_root, workspace, node, [sys.executable, "-c", AUGMENT_PROBE], timeout_s,
                    sandbox_wanted)
    line = next((x for x in res.output.splitlines() if x.startswith("AUGMENT_PROBE")), None)
    if res.rc != 0 or line is None:
        return HealthFlag("augmentation_applied", None,
                          f"the probe did not run ({res.text()[-500:]})")
    changed, total = (int(x) for x in line.split()[1:3])
    if changed == 0:
        return HealthFlag("augmentation_applied", False,
                          f"train.augment is on but the node's train_step fed all {total} probe "
                          f"boards to the net untransformed: augmentation is not applied")
    return HealthFlag("augmentation_applied", True, f"{changed}/{total} probe boards transformed")


def board_komi(repo_root: Path | str, board: str) -> float:
    """The komi of conf/board/<board>.yaml (not a learner group: a node cannot override it)."""
    import yaml
    path = Path(repo_root) / "conf" / "board" / f"{board}.yaml"
    try:
        return float((yaml.safe_load(path.read_text()) or {}).get("komi", 7.0))
    except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError):
        return 7.0


def check_node(repo_root: Path | str, workspace: Path | str, node: Any, cfg: Any = None,
               real_job: bool = False, board_size: int = 9, komi: float = 7.0) -> dict[str, Any]:
    """Every check of a finished node: {"suspect": bool, "flags": [HealthFlag json, ...]}.

    `cfg` is the agent config's `health` section (autoresearch/agent_config.py, HealthConfig).
    `real_job`: the node ran experiments/train.py, whose run directory must hold the self-play
    sample and the self-play metrics (a job of another module -- the tests' fake job -- gets the
    checks that need neither)."""
    from autoresearch.agent_config import HealthConfig
    cfg = cfg or HealthConfig()
    flags: list[HealthFlag] = []

    def guarded(name: str, fn, *args, **kw) -> None:
        try:
            flags.append(fn(*args, **kw))
        except Exception as e:  # noqa: BLE001 -- a check that cannot run is said as such, never a loop crash
            flags.append(HealthFlag(name, None, f"check not run: {type(e).__name__}: {e}"))

    ckpt = None
    if node.run_dir:
        flags.append(losses_finite(node.run_dir))
        for name in ("latest.pt", "best.pt"):
            if (Path(node.run_dir) / "checkpoints" / name).is_file():
                ckpt = Path(node.run_dir) / "checkpoints" / name
                break
        guarded("weights_finite", weights_finite, ckpt)
    guarded("augmentation_applied", augmentation_applied, repo_root, workspace, node, cfg.sandbox)
    if real_job and node.run_dir:
        from autoresearch import health_sample as hs
        from autoresearch.health_symmetry import symmetry_invariant
        from experiments.rundir import read_summary
        guarded("symmetry", symmetry_invariant, repo_root, workspace, node, ckpt, board_size, komi,
                float(cfg.symmetry_max_tv), int(cfg.symmetry_positions), cfg.sandbox)
        guarded("value_targets", hs.value_targets, node.run_dir)
        guarded("policy_targets", hs.policy_targets, node.run_dir)
        guarded("komi_colour", hs.komi_colour, node.run_dir, komi, tuple(cfg.black_share), float(cfg.alpha))
        device = ((read_summary(Path(node.run_dir)) or {}).get("compute") or {}).get("device") or "cpu"
        guarded("throughput", hs.throughput, node.run_dir, str(device),
                {k: list(v) for k, v in dict(cfg.sims_per_s).items()})
    return {"suspect": any(f.ok is False for f in flags), "flags": [f.to_json() for f in flags]}


def health_metrics(repo_root: Path | str, workspace: Path | str, node: Any, metrics: dict,
                   summary: dict | None, cfg: Any, real_job: bool, board: str, say: Any) -> dict:
    """`metrics` of a node that finished ok, with its health checks under "health"; a failed one
    marks the node suspect and is said. Seed re-runs are not checked (their parent is), nor is
    anything when `cfg.enabled` (HealthConfig) is off. `board`: the question's, e.g. "9x9"."""
    if not cfg.enabled or node.kind == "rerun":
        return metrics
    node.run_dir = node.run_dir or (summary or {}).get("run_dir")
    health = check_node(repo_root, workspace, node, cfg, real_job=real_job,
                        board_size=int(board.split("x")[0]), komi=board_komi(repo_root, board))
    failed = [f["check"] for f in health["flags"] if f["ok"] is False]
    if failed:
        say(f"node {node.id} SUSPECT: health check(s) failed: {', '.join(failed)} "
            f"(research show {node.id}; research explain {node.id} \"reason\" once understood)")
    return {**metrics, "health": health}


def health_text(nodes: list[Any]) -> str:
    """Failed health checks, for the model to read (nothing when every check passed)."""
    lines = []
    for n in nodes:
        h = (n.metrics or {}).get("health") or {}
        for f in h.get("flags", []):
            if f.get("ok") is False:
                if h.get("explained"):
                    lines.append(f"  #{n.id} failed {f['check']}, explained: {explanation(n)}")
                else:
                    lines.append(f"  #{n.id} SUSPECT ({f['check']}): {f['detail']}")
    if not lines:
        return ""
    return ("Health checks failed -- do not build on these results until explained "
            "(investigate with run_check; a suspect node is left out of the answer until "
            "explained):\n" + "\n".join(lines))
