"""The status taxonomy: what a finished job was, from what it left in its run directory.

Statuses (the node statuses of the experiment tree):
- `ok`       the job wrote `summary.json` with status ok;
- `crash`    it exited without a valid summary (or its summary says crash), with the log tail;
- `timeout`  it ran past its wall clock (or SLURM's --time): it was killed;
- `invalid`  Hydra refused the config (bad override: non-zero exit, no summary, Hydra's error in
             the log), or the patch does not apply (`git apply --check` fails; git's message is
             the error) -- the proposal is malformed, not the idea refuted;
- `refused`  the patch touches a file outside the learner (autoresearch/patch_policy.py; the
             reason is recorded); nothing was run.
Every launcher (local.py, slurm_job.py) classifies with `classify_exit`.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoresearch.jobs.spec import LOG_NAME
from experiments.rundir import read_summary, write_summary

STATUSES = ("ok", "crash", "timeout", "invalid", "refused")   # a finished job's status
LOG_TAIL_CHARS = 4000
# What a job's summary may tell the loop: its training metrics. Ranking numbers (Elo, win rates,
# games against the references) are written only by the referee.
RATING_METRIC_PREFIXES = ("elo", "winrate", "games_vs", "win_rate", "wins", "losses", "draws",
                          "verdict", "h2h", "ladder")

# Hydra's messages for a config it could not compose (a bad override, an unknown group option).
_HYDRA_CONFIG_ERRORS = re.compile(
    r"ConfigCompositionException|OverrideParseException|Could not override|"
    r"Error merging override|Could not find '|Could not load '|Could not append to config|"
    r"Error parsing override|Key '[^']*' (is )?not in struct|ConfigKeyError|"
    r"Ambiguous value for argument|mismatched input|ValidationError")




@dataclass
class JobResult:
    status: str                                     # ok | crash | timeout | invalid | refused
    sandbox: str | None = None                      # "bwrap" | "none: <why>" (None: never ran)
    summary: dict[str, Any] | None = None           # summary.json as written (or synthesised)
    error: str | None = None                        # what went wrong, in one message
    log_tail: str = ""                              # last lines of job.log (or git's output)
    wall_s: float = 0.0                             # seconds from launch to exit
    returncode: int | None = None
    worktree: str | None = None
    branch: str | None = None



def job_metrics(summary: dict[str, Any] | None) -> dict[str, Any]:
    """The metrics of a job's summary the loop may keep: training metrics only. Whatever a job
    says about its own strength (elo, elo_ci95, winrate*, games_vs_ref...) is dropped -- the
    referee writes those -- and so is anything that is not a finite number or a short list of
    them."""
    raw = (summary or {}).get("metrics") if isinstance(summary, dict) else None
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if not isinstance(k, str) or k.lower().startswith(RATING_METRIC_PREFIXES):
            continue
        if _finite(v) or (isinstance(v, list) and len(v) <= 16 and all(_finite(x) for x in v)):
            out[k] = v
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - chars))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""



def classify_exit(run_dir: Path, rc: int | None, kill_reason: str | None, *,
                  branch: str | None = None, wall_s: float = 0.0, worktree: Path | None = None,
                  no_exit_error: str | None = None, log_prefix: str = "") -> JobResult:
    """The node status of a finished job, from what it left in `run_dir` (used by every launcher).

    `rc` is the job's exit code (None: unknown, e.g. the cluster ended the job before it could
    record one; `no_exit_error` then says why). `kill_reason` is set when we (or the cluster, on
    its time limit) stopped the job: a reason starting with "timeout" gives `timeout`, any other
    `crash`. Makes sure `summary.json` says what happened.
    """
    run_dir = Path(run_dir)
    log_tail = tail(run_dir / LOG_NAME)
    if log_prefix:
        log_tail = (log_prefix + log_tail)[-LOG_TAIL_CHARS:]
    summary = read_summary(run_dir)
    res = JobResult(status="crash", summary=summary, log_tail=log_tail, wall_s=wall_s,
                    returncode=rc, worktree=str(worktree) if worktree else None, branch=branch)
    if kill_reason and kill_reason.startswith("timeout"):
        res.status, res.error = "timeout", kill_reason
    elif kill_reason:
        res.status, res.error = "crash", f"killed: {kill_reason}"
    elif summary is not None and summary.get("malformed"):
        # kept for a look, replaced by a summary that says why the node is invalid
        try:
            os.replace(run_dir / "summary.json", run_dir / "summary.malformed.json")
        except OSError:
            pass
        res.status, res.error, summary = "invalid", summary["error"], None
    elif summary is not None and summary.get("status") in ("ok", "crash", "timeout", "invalid"):
        res.status = summary["status"]
        res.error = summary.get("error")
        if res.status == "ok" and rc not in (0, None):
            res.status = "crash"
            res.error = f"summary.json says ok but the job exited with code {rc}"
    elif rc is None and no_exit_error:
        res.status, res.error = "crash", no_exit_error
    elif rc != 0 and _HYDRA_CONFIG_ERRORS.search(log_tail):
        res.status = "invalid"
        hits = [ln.strip() for ln in log_tail.splitlines() if _HYDRA_CONFIG_ERRORS.search(ln)]
        res.error = "Hydra rejected the config: " + " / ".join(dict.fromkeys(hits[:3]))
    else:
        res.status = "crash"
        res.error = (f"job exited with code {rc} without writing summary.json: "
                     f"{_first_error_line(log_tail)}" if rc != 0 else
                     "job exited 0 but wrote no summary.json")
    if summary is None or summary.get("status") != res.status:
        # the run directory always ends with a summary.json saying what happened
        res.summary = write_summary(run_dir, res.status if res.status != "refused"
                                    else "invalid", metrics=(summary or {}).get("metrics"),
                                    error=res.error, git={"commit": None, "branch": branch},
                                    compute={"wall_s": wall_s}, returncode=rc)
    return res


def _first_error_line(log: str) -> str:
    lines = [ln.strip() for ln in log.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if _HYDRA_CONFIG_ERRORS.search(ln) or re.match(r"^\w*(Error|Exception)\b", ln):
            return ln[:500]
    return (lines[-1] if lines else "(no output)")[:500]

