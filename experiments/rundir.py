"""The run-directory contract (DESIGN.md, "Contracts").

A run directory holds `.hydra/`, `metrics.jsonl`, `checkpoints/`, `games/`, `log.txt`,
`selfplay_sample.jsonl` (for the referee's health checks), `progress.json` while it runs and,
last, `summary.json`. The harness reads only `summary.json`, `metrics.jsonl`, `progress.json`
and (its health checks) `selfplay_sample.jsonl`, so every entry point writes them through this
module.

`progress.json` (live progress, for the console; never a result) is one JSON object, replaced
atomically (temp file + os.replace) at each phase change and every few seconds in between:

    phase        "warm_start" | "selfplay" | "training" | "rating" | "done"
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

`selfplay_sample.jsonl` (written by experiments/train.py; read by the referee's health checks,
autoresearch/health_sample.py): the first `SAMPLE_MAX_GAMES` self-play games of the job, one JSON
object per line, with the targets training got from them:

    game      global game number
    size      board size; komi: the komi the game was played (and scored) with
    moves     the moves played, in order (m = row * size + col, pass = size * size)
    resigned  0, or the colour that resigned (1 black, 2 white) after the last move
    result    the result text ("B+3.5", "W+R", "0")
    value     one value target per position (len(moves), + 1 when resigned): the outcome for
              the player to move, +1 win, -1 loss, 0 draw
    policy    one entry per position: null (a cheap search, no target) or [[move, p], ...] of
              its non-zero entries

The health checks treat a missing or malformed sample as a failed check (a node may delete it).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

STATUSES = ("ok", "crash", "timeout", "invalid")
PHASES = ("warm_start", "selfplay", "training", "rating", "done")


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file.

    The temp file has a random name and is created exclusively (mkstemp): a job that can write
    the folder cannot plant a symlink under a guessable name for the harness to write through;
    os.replace swaps a symlink at `path` itself, never its target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


SELFPLAY_SAMPLE = "selfplay_sample.jsonl"   # the self-play sample's file name in the run directory
SAMPLE_MAX_GAMES = 8                        # games the sample keeps per job (a few KB each)


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON object as a line of `path`."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


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
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(rec, dict):   # a line that is not an object is not a record
            out.append(rec)
    return out


def git_info(repo: Path | str = ".") -> dict[str, Any]:
    """Commit, dirty flag and the sha256 of the uncommitted diff (the node's patch)."""
    def git(*args: str) -> str:
        try:
            # no hooks or fsmonitor of the repository run here
            return subprocess.run(["git", "-c", "core.hooksPath=/dev/null", "-c",
                                   "core.fsmonitor=false", *args], cwd=repo, capture_output=True, text=True,
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
    summary = _finite_or_none(json.loads(json.dumps(summary, default=float)))
    atomic_write_text(Path(run_dir) / "summary.json",
                      json.dumps(summary, indent=2, default=float, allow_nan=False))
    return summary


MAX_SUMMARY_BYTES = 1_000_000   # a summary.json larger than this is not read (malformed)
# metrics that must be numbers (or [lo, hi] pairs of numbers) when present
NUMERIC_METRICS = ("elo", "elo_ci95", "winrate_vs_ref", "winrate_ci95", "games_vs_ref",
                   "policy_acc", "value_loss", "policy_loss", "steps", "games", "iterations")


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """`summary.json` as a dict, None if there is none. Anything that is not what the contract
    says (not UTF-8, not JSON, NaN, not an object, no status or metrics, a metric of the wrong
    type, too large) gives `{"status": "invalid", "error": <why>, "metrics": {}, "malformed":
    True}`: a job's output never stops the loop, and `--resume` reads the same verdict again."""
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        return None

    def invalid(why: str) -> dict[str, Any]:
        return {"status": "invalid", "error": f"summary.json is malformed: {why}", "metrics": {},
                "malformed": True}

    try:
        if path.is_symlink() or not path.is_file():
            return invalid("not a regular file")
        size = path.stat().st_size
        if size > MAX_SUMMARY_BYTES:
            return invalid(f"{size} bytes, more than the {MAX_SUMMARY_BYTES} a summary may have")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        return invalid(f"not UTF-8 ({e.reason} at byte {e.start})")
    except OSError as e:
        return invalid(f"unreadable ({e})")

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        obj = json.loads(text, parse_constant=no_constants)
    except (ValueError, RecursionError) as e:
        return invalid(f"not valid JSON ({str(e)[:200]})")
    if not isinstance(obj, dict):
        return invalid(f"a JSON {type(obj).__name__}, not an object")
    if obj.get("status") not in STATUSES:
        return invalid(f"status {str(obj.get('status'))[:50]!r} is not one of {STATUSES}")
    metrics = obj.get("metrics")
    if not isinstance(metrics, dict):
        return invalid("no metrics object")
    for key in NUMERIC_METRICS:
        v = metrics.get(key)
        if v is not None and not (_is_number(v) or (isinstance(v, list) and len(v) == 2
                                                    and all(_is_number(x) for x in v))):
            return invalid(f"metrics.{key} is {str(v)[:50]!r}, not a number")
    if obj.get("error") is not None and not isinstance(obj["error"], str):
        return invalid("error is not a string")
    return obj


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite_or_none(obj: Any) -> Any:
    """NaN and infinities become null: JSON has no such numbers (readers refuse them)."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


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
