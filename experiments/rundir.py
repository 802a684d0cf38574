"""The run-directory contract (DESIGN.md, "Contracts").

A run directory holds `.hydra/`, `metrics.jsonl`, `checkpoints/`, `games/`, `log.txt`,
`progress.json` while it runs and, last, `summary.json`. The harness reads only `summary.json`,
`metrics.jsonl` and `progress.json`, so every entry point writes them through this module.

`progress.json` (live progress, for the console; never a result) is one JSON object, replaced
atomically (temp file + os.replace) at each phase change and every few seconds in between:

    phase        "warm_start" | "selfplay" | "training" | "evaluation" | "done"
    status       only when phase is "done": the summary's status (ok | crash | timeout)
    iteration    the collect -> train iteration under way (1-based; 0 during the warm start)
    games_done   self-play games finished in this iteration
    games_total  self-play games this iteration plays
    games_budget self-play games of the whole job (null when the budget does not fix it)
    games        self-play games finished in the whole job
    steps_done   optimizer steps done in the whole job
    steps_budget optimizer steps of the whole job (null when derived per iteration)
    sims_per_s   MCTS simulations per second of this iteration's self-play (null before it)
    elapsed_s    wall seconds of the job so far (earlier lives of a resumed run included)
    eta_s        estimated seconds left: this life's loop time scaled by the share of the work
                 budget (games, with each iteration's training counted) still to do; null when
                 unknown (warm start, no budget of games or steps)
    t            unix time of this write

A reader must accept missing keys and a missing file (the job has not started, or is too old).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

STATUSES = ("ok", "crash", "timeout", "invalid")
PHASES = ("warm_start", "selfplay", "training", "evaluation", "done")


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one JSON object (one iteration) to `metrics.jsonl`."""
    with open(Path(run_dir) / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record, default=float) + "\n")


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All complete lines of `metrics.jsonl` (a line cut by a kill is skipped)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def git_info(repo: Path | str = ".") -> dict[str, Any]:
    """Commit, dirty flag and the sha256 of the uncommitted diff (the node's patch)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                                  timeout=20).stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""
    commit = git("rev-parse", "HEAD").strip() or None
    diff = git("diff", "HEAD")
    return {"commit": commit, "dirty": bool(diff.strip()),
            "patch_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff.strip() else None}


def write_summary(run_dir: Path, status: str, *, metrics: dict[str, Any] | None = None,
                  error: str | None = None, reference: str | None = None,
                  compute: dict[str, Any] | None = None, checkpoint: str | None = None,
                  git: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Write `summary.json` atomically; it is the last file a run writes."""
    if status not in STATUSES:
        raise ValueError(f"summary status must be one of {STATUSES}, got {status!r}")
    summary: dict[str, Any] = {"status": status}
    if error:
        summary["error"] = error
    summary["metrics"] = metrics or {}
    summary["reference"] = reference
    summary["compute"] = compute or {}
    summary["checkpoint"] = checkpoint
    summary["git"] = git if git is not None else git_info()
    summary["finished_at"] = time.time()
    summary.update(extra)
    atomic_write_text(Path(run_dir) / "summary.json", json.dumps(summary, indent=2, default=float))
    return summary


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        return {"status": "crash", "error": f"summary.json unreadable: {e}", "metrics": {}}


def write_progress(run_dir: Path, record: dict[str, Any]) -> None:
    """Replace `progress.json` (the contract is in this module's docstring)."""
    if record.get("phase") not in PHASES:
        raise ValueError(f"progress phase must be one of {PHASES}, got {record.get('phase')!r}")
    atomic_write_text(Path(run_dir) / "progress.json", json.dumps(record, default=float))


def read_progress(run_dir: Path) -> dict[str, Any] | None:
    """The last `progress.json`, or None when there is none (yet)."""
    try:
        return json.loads((Path(run_dir) / "progress.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
