"""The investigation tool `run_check`: the model runs a short command -- a pytest selection or a
Python snippet -- in a fresh worktree of one node (the repository's HEAD with the node's patch),
under the same sandbox as the node's job (bubblewrap: no network, no keys, writable only the
worktree), with a time limit; the output comes back to the model. The seconds it takes are the
loop's own wall-clock time, so they count against the question's hours budget, and every check
is tallied in the question's settings (`checks`, `check_s`).
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoresearch import bwrap
from autoresearch.jobs.environment import job_env
from autoresearch.jobs.worktrees import git, remove_worktree, repo_toplevel
from experiment_tree.workspace import Workspace

OUTPUT_CHARS = 8000          # the tail of the output returned to the model


@dataclass
class CheckResult:
    rc: int | None           # None: killed at the time limit
    output: str              # stdout and stderr together, the last OUTPUT_CHARS characters
    seconds: float
    sandbox: str             # "bwrap" | "none: <why>"

    def text(self) -> str:
        head = (f"timed out after {self.seconds:.0f} s (killed)" if self.rc is None
                else f"exit code {self.rc} after {self.seconds:.1f} s")
        return f"{head}; sandbox: {self.sandbox}\n{self.output}"


def check_argv(pytest: str | None, python: str | None) -> list[str]:
    """`python -m pytest <selection>` or `python -c <snippet>` (exactly one of them)."""
    if bool(pytest) == bool(python):
        raise ValueError("run_check needs exactly one of pytest (a selection, e.g. "
                         "'tests/test_mcts.py -k puct') or python (a snippet)")
    if pytest:
        return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *shlex.split(pytest)]
    return [sys.executable, "-c", str(python)]


def run_check(repo_root: Path | str, workspace: Path | str, node: Any, argv: list[str],
              timeout_s: float, sandbox_wanted: str = "auto",
              out_dir: Path | None = None) -> CheckResult:
    """Run `argv` in a throwaway worktree of `node` (HEAD + its patch) and remove it after.
    `out_dir`: an existing folder it may also read and write (inputs and outputs larger than the
    returned tail: the health checks' probes)."""
    repo_root = repo_toplevel(Path(repo_root))
    wt = Workspace(workspace).checks_dir / f"{node.id}-{os.getpid()}-{time.time_ns()}"
    wt.parent.mkdir(parents=True, exist_ok=True)
    git(repo_root, "worktree", "add", "-q", "--detach", str(wt), "HEAD")
    try:
        if node.patch and node.patch.strip():
            text = node.patch if node.patch.endswith("\n") else node.patch + "\n"
            applied = git(wt, "apply", "-", input=text, check=False)
            if applied.returncode != 0:
                return CheckResult(1, f"the node's patch does not apply: {applied.stderr[-2000:]}",
                                   0.0, "none: not run")
        mode = bwrap.sandbox_mode(sandbox_wanted)
        env = job_env(None, wt)
        if mode == "bwrap":
            writable = [wt] + ([Path(out_dir)] if out_dir else [])
            bwrap.prepare_writable(writable)
            run_argv = bwrap.sandboxed_argv(argv, writable=writable, env=env, cwd=wt)
        else:
            run_argv = argv
        t0 = time.monotonic()
        proc = subprocess.Popen(run_argv, cwd=wt, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
            rc: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)     # the whole group: nothing outlives the check
            out, _ = proc.communicate()
            rc = None
        text = (out or b"").decode(errors="replace")
        return CheckResult(rc, text[-OUTPUT_CHARS:], time.monotonic() - t0, mode)
    finally:
        remove_worktree(repo_root, wt)


def book_check(store: Any, question_id: int, seconds: float) -> None:
    """Tally a check in the question's settings (its time is already in the loop's wall clock)."""
    b = dict(store.get_question(question_id).settings or {})
    b["checks"] = int(b.get("checks", 0)) + 1
    b["check_s"] = float(b.get("check_s", 0.0)) + float(seconds)
    store.update_question(question_id, settings=b)
