"""The sandbox: every node runs in its own git worktree, as a subprocess with hard limits.

What a job may change and what scores it are kept apart (karpathy/autoresearch's line between
`train.py` and `prepare.py`): a patch that touches the rules, the scoring, the evaluation or the
ladder is refused before anything runs, and the protected files are hash-checked in the worktree
after the patch is applied.

    job = start_job(repo_root, node_id=7, overrides=["train.lr=0.01"], patch=None,
                    run_dir=W / "runs/7", wall_clock_s=900, mem_limit_mb=8192, extra_env={})
    while job.poll() is None: ...        # never blocks; kills the job past its wall-clock limit
    result = job.wait()                  # JobResult(status, summary, error, log_tail)

Statuses (the node statuses of the experiment tree):
- `ok`       the job wrote `summary.json` with status ok;
- `crash`    it exited without a valid summary (or its summary says crash), with the log tail;
- `timeout`  it ran past `wall_clock_s`: its whole process group was killed;
- `invalid`  Hydra refused the config (bad override: non-zero exit, no summary, Hydra's error in
             the log), or the patch does not apply (`git apply --check` fails; git's message is
             the error) -- the proposal is malformed, not the idea refuted;
- `refused`  the patch touches a file outside the learner (autoresearch/patch_policy.py; the
             reason is recorded); nothing was run.

Every job runs under bubblewrap (autoresearch/bwrap.py) where it can: its own PID namespace, no
network, writable only its worktree (not `.git`) and run directory, an allow-listed environment.
Where it cannot, it runs unsandboxed and `JobResult.sandbox` / summary.json `sandbox` say why.
Every git call of the harness runs with hooks and fsmonitor disabled (autoresearch/safe_git.py).
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import resource
import shlex
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoresearch import bwrap, patch_policy
from autoresearch.safe_git import GIT_SAFE
from experiments.rundir import atomic_write_text, read_summary, write_summary

# Rules, scoring, evaluation and the ladder: what scores a run must not be editable by the run.
# The one list; `git apply` paths and worktree hashes are both checked against it.
PROTECTED_PATTERNS: tuple[str, ...] = (
    "go_core/game/board.py",
    "go_core/game/reference_board.py",
    "go_core/arena/match.py",
    "go_core/arena/seats.py",
    "go_core/arena/elo.py",
    "go_core/arena/stats.py",
    "go_core/arena/rungs.py",
    "go_core/arena/calibration.py",
    "go_core/arena/rating_walk.py",
    "experiments/evaluate.py",
    "experiments/rundir.py",
    "conf/eval/**",
)

DEFAULT_JOB_MODULE = "experiments.train"
LOG_NAME = "job.log"          # the job's stdout + stderr, in its run directory
PID_NAME = "job.pid"          # pid (= process group id), start time and host, for --resume clean-up
# what a cluster launch (autoresearch/cluster.py) leaves in the run directory; removed before a run
STALE_JOB_FILES = ("job.sh", "job.rc", "job.started", "job.submitit.json", PID_NAME)
LOG_TAIL_CHARS = 4000
KILL_GRACE_S = 5.0            # SIGTERM, then SIGKILL after this many seconds
DISK_CHECK_S = 5.0            # how often a running job's run directory is measured
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


class SandboxError(RuntimeError):
    """The sandbox itself could not be set up (not a git repo, git missing)."""


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


# ---------------------------------------------------------------------------- patches

def patch_paths(patch: str) -> list[str]:
    """Every file a unified diff touches (old and new names, so a rename counts twice)."""
    paths: set[str] = set()
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            for tok in shlex.split(line[len("diff --git "):], posix=True)[:2]:
                paths.add(_strip_prefix(tok))
        elif line.startswith(("--- ", "+++ ")):
            tok = line[4:].split("\t")[0].strip()
            if tok != "/dev/null":
                paths.add(_strip_prefix(tok))
        elif line.startswith(("rename from ", "rename to ", "copy from ", "copy to ")):
            paths.add(line.split(" ", 2)[2].strip())
    return sorted(p for p in paths if p)


def _strip_prefix(tok: str) -> str:
    tok = tok.strip().strip('"')
    return tok[2:] if tok[:2] in ("a/", "b/") else tok


def is_protected(path: str, patterns: tuple[str, ...] = PROTECTED_PATTERNS) -> bool:
    path = os.path.normpath(path).lstrip("./")
    for pat in patterns:
        if pat.endswith("/**"):
            if path == pat[:-3] or path.startswith(pat[:-2]):
                return True
        elif fnmatch.fnmatchcase(path, pat):
            return True
    return False


def protected_in_patch(patch: str, patterns: tuple[str, ...] = PROTECTED_PATTERNS) -> list[str]:
    return [p for p in patch_paths(patch) if is_protected(p, patterns)]


def patch_sha256(patch: str | None) -> str | None:
    return hashlib.sha256(patch.encode()).hexdigest() if patch and patch.strip() else None


def protected_hashes(root: Path, patterns: tuple[str, ...] = PROTECTED_PATTERNS) -> dict[str, str]:
    """sha256 of every file under `root` matching the protected patterns (absent files omitted)."""
    out: dict[str, str] = {}
    root = Path(root)
    for pat in patterns:
        base = pat[:-3] if pat.endswith("/**") else None
        files = sorted((root / base).rglob("*")) if base else [root / pat]
        for f in files:
            if f.is_file():
                out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


# ---------------------------------------------------------------------------- git

def _git(cwd: Path, *args: str, check: bool = True, input: str | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess:
    try:
        cp = subprocess.run(["git", *GIT_SAFE, *args], cwd=cwd, capture_output=True, text=True,
                            input=input, timeout=timeout)
    except FileNotFoundError as e:
        raise SandboxError("git is not installed: install it (apt-get install git)") from e
    if check and cp.returncode != 0:
        raise SandboxError(f"git {' '.join(args)} failed in {cwd}: {cp.stderr.strip()}")
    return cp


def repo_toplevel(path: Path) -> Path:
    cp = _git(Path(path), "rev-parse", "--show-toplevel", check=False)
    if cp.returncode != 0:
        raise SandboxError(f"{path} is not inside a git repository; the sandbox makes a worktree "
                           f"per node from HEAD, so run from a clone of the project")
    return Path(cp.stdout.strip())


def checked_out_branches(repo_root: Path) -> dict[str, Path]:
    """branch name -> the worktree that has it checked out."""
    cp = _git(repo_root, "worktree", "list", "--porcelain", check=False)
    out: dict[str, Path] = {}
    path = None
    for line in cp.stdout.splitlines():
        if line.startswith("worktree "):
            path = Path(line[len("worktree "):])
        elif line.startswith("branch refs/heads/") and path is not None:
            out[line[len("branch refs/heads/"):]] = path
    return out


def make_worktree(repo_root: Path, path: Path, branch: str) -> tuple[Path, str]:
    """A fresh worktree at `path` on `branch`, reset to the repo's HEAD (replacing leftovers).

    If `branch` is checked out in another worktree (another workspace researching the same
    repository runs a node with the same id), the branch is `<branch>-<tag>` instead, the tag
    naming this worktree's folder. Returns the worktree and the branch used.
    """
    path = Path(path)
    if path.exists():
        remove_worktree(repo_root, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with worktree_lock(repo_root):
        _git(repo_root, "worktree", "prune", check=False)
        busy = checked_out_branches(repo_root)
        if branch in busy and busy[branch].resolve() != path.resolve():
            branch = f"{branch}-{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"
        _git(repo_root, "worktree", "add", "--force", "-B", branch, str(path), "HEAD")
    return path, branch


def remove_worktree(repo_root: Path, path: Path) -> None:
    """Remove the worktree; its branch (with the node's commit) stays."""
    with worktree_lock(repo_root):
        _git(repo_root, "worktree", "remove", "--force", str(path), check=False)
        if Path(path).exists():
            import shutil
            shutil.rmtree(path, ignore_errors=True)
        _git(repo_root, "worktree", "prune", check=False)


@contextmanager
def worktree_lock(repo_root: Path):
    """One `git worktree` change at a time per repository, across processes: sweep workers are
    processes, and a `worktree prune` or `add` racing another `add` fails it ("failed to read
    .git/worktrees/N/commondir", seen with two SLURM sweep workers)."""
    import fcntl

    git_dir = Path(repo_root) / ".git"
    if not git_dir.is_dir():          # the repository is itself a worktree: no shared lock file
        yield
        return
    with open(git_dir / "tengen-worktrees.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------- the job

def is_secret_env(name: str) -> bool:
    """An environment variable a job must never see (keys, tokens, passwords, secrets)."""
    return bwrap.is_secret_env(name)


def job_env(extra_env: dict[str, str] | None = None, worktree: Path | None = None) -> dict[str, str]:
    """The job's environment, built from an ALLOW-list (bwrap.ENV_ALLOW, TENGEN_*): nothing of
    ours reaches a job unless it is named there, and nothing named like a secret ever does."""
    env = bwrap.allowed_env(extra_env)
    # the worktree's packages, not the editable install's, are what the patch changed; the
    # harness's own PYTHONPATH (which may name the main checkout) is not passed on
    env["PYTHONPATH"] = str(worktree) if worktree is not None else ""
    if not env["PYTHONPATH"]:
        del env["PYTHONPATH"]
    env["HYDRA_FULL_ERROR"] = "1"
    return env


def _limits(mem_limit_mb: int, limits: bwrap.Limits | None = None):
    """Limits of an unsandboxed job (under bwrap, prlimit sets the same ones)."""
    limits = limits or bwrap.Limits()

    def preexec() -> None:  # runs in the child, after fork, before exec
        for res, mb in ((resource.RLIMIT_AS, mem_limit_mb), (resource.RLIMIT_FSIZE, limits.fsize_mb)):
            if mb and mb > 0:
                resource.setrlimit(res, (int(mb) * 1024 * 1024, int(mb) * 1024 * 1024))
        if limits.nproc and os.geteuid() != 0:
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.nproc, limits.nproc))
    return preexec


def dir_size_mb(path: Path) -> float:
    """Bytes under `path` (files as allocated, links not followed), in MiB."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total / 2 ** 20


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
    import math
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - chars))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


class Job:
    """One running node. `poll()` never blocks; `wait()` polls until the job is over."""

    def __init__(self, *, node_id: int, run_dir: Path, wall_clock_s: float,
                 proc: subprocess.Popen | None = None, result: JobResult | None = None,
                 repo_root: Path | None = None, worktree: Path | None = None,
                 branch: str | None = None, command: list[str] | None = None,
                 keep_worktree: bool = False, log_file=None, sandbox: str | None = None,
                 disk_limit_mb: float = 0):
        self.node_id = node_id
        self.run_dir = Path(run_dir)
        self.wall_clock_s = wall_clock_s
        self.proc = proc
        self.repo_root = repo_root
        self.worktree = worktree
        self.branch = branch
        self.command = command or []
        self.keep_worktree = keep_worktree
        self.started = time.time()
        self._log_file = log_file
        self._kill_reason: str | None = None
        self._result = result
        self.sandbox = sandbox              # "bwrap" | "none: <why>": recorded on the node
        self.disk_limit_mb = disk_limit_mb  # run directory cap (0: none)
        self._disk_checked_at = time.time()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def poll(self) -> str | None:
        """None while running; else the final status. Enforces the wall-clock limit."""
        if self._result is not None:
            return self._result.status
        assert self.proc is not None
        rc = self.proc.poll()
        if rc is None:
            if self.wall_clock_s and time.time() - self.started > self.wall_clock_s:
                self.kill(f"timeout: ran past its wall-clock limit of {self.wall_clock_s:g} s")
                rc = self.proc.returncode
            elif self._over_disk():
                rc = self.proc.returncode
            else:
                return None
        self._result = self._finish(rc)
        return self._result.status

    def _over_disk(self) -> bool:
        """Every DISK_CHECK_S: kill the job if its run directory is over its cap."""
        if not self.disk_limit_mb or time.time() - self._disk_checked_at < DISK_CHECK_S:
            return False
        self._disk_checked_at = time.time()
        used = dir_size_mb(self.run_dir)
        if used <= self.disk_limit_mb:
            return False
        self.kill(f"disk: its run directory holds {used:.0f} MiB, over the cap of "
                  f"{self.disk_limit_mb:g} MiB (job.disk_limit_mb)")
        return True

    def kill(self, reason: str) -> None:
        """Kill the job's whole process group (SIGTERM, then SIGKILL); under bwrap that ends
        its PID namespace, so nothing it started survives."""
        if self._result is not None or self.proc is None:
            return
        self._kill_reason = reason
        kill_group(self.proc.pid, grace_s=KILL_GRACE_S, proc=self.proc)

    def wait(self, poll_s: float = 0.2) -> JobResult:
        while self.poll() is None:
            time.sleep(poll_s)
        assert self._result is not None
        return self._result

    # -- classification
    def _finish(self, rc: int | None) -> JobResult:
        if self._log_file is not None:
            self._log_file.close()
        res = classify_exit(self.run_dir, rc, self._kill_reason, branch=self.branch,
                            wall_s=time.time() - self.started, worktree=self.worktree)
        res.sandbox = self.sandbox
        if res.summary is not None and self.sandbox is not None:
            res.summary["sandbox"] = self.sandbox
        self._cleanup()
        return res

    def _cleanup(self) -> None:
        """The job is over: drop its pid file and (unless kept) its worktree."""
        _clear_pid(self.run_dir)
        if self.worktree is not None and not self.keep_worktree and self.repo_root is not None:
            remove_worktree(self.repo_root, self.worktree)


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


def kill_group(pgid: int, grace_s: float = KILL_GRACE_S, proc: subprocess.Popen | None = None) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after `grace_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            break
        deadline = time.time() + (grace_s if sig == signal.SIGTERM else 10)
        while time.time() < deadline:
            if proc is not None:
                if proc.poll() is not None and not _group_alive(pgid):
                    return
            elif not _group_alive(pgid):
                return
            time.sleep(0.05)
    if proc is not None:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _write_pid(run_dir: Path, pid: int) -> None:
    atomic_write_text(Path(run_dir) / PID_NAME, f"{pid} {time.time():.0f} {socket.gethostname()}\n")


def _clear_pid(run_dir: Path) -> None:
    try:
        (Path(run_dir) / PID_NAME).unlink()
    except FileNotFoundError:
        pass


def kill_orphan(run_dir: Path) -> bool:
    """After a `kill -9` of the loop its jobs live on (own session): end the one for `run_dir`.

    The pid file is trusted only if that process's command line names this run directory.
    Returns True if a process group was killed.
    """
    pid_file = Path(run_dir) / PID_NAME
    try:
        fields_ = pid_file.read_text().split()
        pid = int(fields_[0])
    except (OSError, ValueError, IndexError):
        return False
    if len(fields_) > 2 and fields_[2] != socket.gethostname():
        return False      # the job ran on another machine (a cluster node): not ours to kill
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        argv = []
    killed = False
    # the process must name exactly this run directory (runs/1 is a prefix of runs/10)
    names = {str(Path(run_dir).resolve()), str(run_dir)}
    if any(a in names or a.startswith("hydra.run.dir=") and a.split("=", 1)[1] in names
           for a in argv):
        kill_group(pid, grace_s=2.0)
        killed = True
    _clear_pid(run_dir)
    return killed


@dataclass
class PreparedNode:
    """A node ready to run: its worktree (patch applied and committed) and its command."""
    repo_root: Path
    node_id: int
    run_dir: Path
    worktree: Path
    branch: str
    command: list[str]                              # python -m MODULE <overrides> hydra.run.dir=


def prepare_node(repo_root: Path | str, node_id: int, overrides: list[str], patch: str | None,
                 run_dir: Path | str, wall_clock_s: float, *,
                 job_module: str = DEFAULT_JOB_MODULE, worktrees_dir: Path | str | None = None,
                 branch_prefix: str = "node/", python: str | None = None,
                 commit_message: str | None = None,
                 protected: tuple[str, ...] = PROTECTED_PATTERNS,
                 allowed: tuple[str, ...] = patch_policy.LEARNER_PATHS,
                 referee_pin: Path | str | None = None) -> "Job | PreparedNode":
    """Everything before the launch, shared by every launcher: the run directory (stale outputs
    removed), the worktree on branch `node/<id>` from HEAD, the patch checked and committed,
    and the command. A patch that is refused or does not apply gives a Job that is already
    finished (`refused` / `invalid`) instead.

    A patch may touch only `allowed` (patch_policy: the learner's side), checked on the diff
    and again on what the node's commit really changed (`git diff --name-status` from the start
    commit); with `referee_pin`, the worktree's referee files are compared with the pinned copy's
    hashes (not with HEAD, which a job could move).
    """
    repo_root = repo_toplevel(Path(repo_root))
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("summary.json", LOG_NAME, *STALE_JOB_FILES):
        (run_dir / stale).unlink(missing_ok=True)
    worktrees_dir = Path(worktrees_dir) if worktrees_dir else run_dir.parent.parent / "worktrees"
    branch = f"{branch_prefix}{node_id}"

    def finished(status: str, error: str, log_tail: str = "") -> Job:
        summary = write_summary(run_dir, "invalid" if status == "refused" else status,
                                error=error, git={"commit": None, "branch": branch,
                                                  "patch_sha256": patch_sha256(patch)},
                                refused=(status == "refused"))
        atomic_write_text(run_dir / LOG_NAME, log_tail or error)
        return Job(node_id=node_id, run_dir=run_dir, wall_clock_s=wall_clock_s, branch=branch,
                   result=JobResult(status=status, summary=summary, error=error,
                                    log_tail=log_tail or error, branch=branch))

    if patch and patch.strip():
        hit = protected_in_patch(patch, protected)
        if hit:
            return finished("refused", "patch touches protected files (rules, scoring, evaluation "
                            f"or the ladder may not be changed by a run): {', '.join(hit)}")
        why = patch_policy.patch_errors(patch, repo_root, allowed)
        if why:
            return finished("refused", "patch refused: " + "; ".join(why))

    worktree, branch = make_worktree(repo_root, worktrees_dir / str(node_id), branch)
    try:
        if patch and patch.strip():
            before = protected_hashes(worktree, protected)
            text = patch if patch.endswith("\n") else patch + "\n"
            check = _git(worktree, "apply", "--check", "-", input=text, check=False)
            if check.returncode != 0:
                remove_worktree(repo_root, worktree)
                return finished("invalid", "patch does not apply (git apply --check): "
                                + check.stderr.strip()[:1000], check.stderr)
            _git(worktree, "apply", "-", input=text)
            after = protected_hashes(worktree, protected)
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            if changed:
                remove_worktree(repo_root, worktree)
                return finished("refused", "patch changed protected files (hash check after "
                                f"applying): {', '.join(changed)}")
            _git(worktree, "add", "-A")
            _git(worktree, "-c", "user.name=tengen", "-c", "user.email=tengen@localhost",
                 "commit", "-q", "--no-verify", "--allow-empty", "-m", commit_message or f"node {node_id}")
            names = _git(worktree, "diff", "--name-status", "--no-renames", "HEAD~1", "HEAD",
                         check=False).stdout
            why = patch_policy.changed_path_errors(names, repo_root, allowed)
            types = _git(worktree, "diff", "--raw", "HEAD~1", "HEAD", check=False).stdout
            if re.search(r"^:\d+ 120000 ", types, re.M):
                why.append("the commit creates a symbolic link")
            if why:
                remove_worktree(repo_root, worktree)
                return finished("refused", "patch refused after applying (what the commit "
                                "changed): " + "; ".join(why))
        if referee_pin is not None:
            from autoresearch.referee_pin import changed_vs_pin
            moved = changed_vs_pin(referee_pin, worktree)
            if moved:
                remove_worktree(repo_root, worktree)
                return finished("refused", "the worktree's referee files differ from the pinned "
                                f"referee: {', '.join(moved[:10])}")
    except Exception:
        remove_worktree(repo_root, worktree)
        raise
    cmd = [python or sys.executable, "-m", job_module, *overrides, f"hydra.run.dir={run_dir}"]
    return PreparedNode(repo_root=repo_root, node_id=node_id, run_dir=run_dir, worktree=worktree,
                        branch=branch, command=cmd)


def start_job(repo_root: Path | str, node_id: int, overrides: list[str], patch: str | None,
              run_dir: Path | str, wall_clock_s: float, mem_limit_mb: int,
              extra_env: dict[str, str] | None = None, *,
              job_module: str = DEFAULT_JOB_MODULE, worktrees_dir: Path | str | None = None,
              branch_prefix: str = "node/", python: str | None = None,
              keep_worktree: bool = False, commit_message: str | None = None,
              protected: tuple[str, ...] = PROTECTED_PATTERNS,
              allowed: tuple[str, ...] = patch_policy.LEARNER_PATHS,
              referee_pin: Path | str | None = None, sandbox: str = "auto",
              readonly: tuple[Path | str, ...] = (), limits: bwrap.Limits | None = None,
              disk_limit_mb: float = 0, engines: bool = False) -> Job:
    """Launch one node on this machine: `prepare_node`, then
    `python -m <job_module> <overrides> hydra.run.dir=<run_dir>` in its own process group,
    inside bubblewrap (`sandbox`: auto | bwrap | none; see bwrap.sandbox_mode).

    Returns a Job at once. A patch that is refused or does not apply gives a Job that is already
    finished (`refused` / `invalid`), so callers treat every outcome the same way.
    `worktrees_dir` defaults to `<run_dir>/../../worktrees` (i.e. `W/worktrees/` for `W/runs/<id>`).
    `readonly`: more paths the job may read (a warm-start checkpoint); `limits`: processes and
    file size; `disk_limit_mb`: the run directory's cap (0: none; the loop passes
    job.disk_limit_mb).
    `engines`: the reference engines stay visible (bwrap.sandboxed_argv): only for sweep trials,
    whose own evaluation is their objective; never for a node of `research run`.
    """
    prep = prepare_node(repo_root, node_id, overrides, patch, run_dir, wall_clock_s,
                        job_module=job_module, worktrees_dir=worktrees_dir,
                        branch_prefix=branch_prefix, python=python,
                        commit_message=commit_message, protected=protected, allowed=allowed,
                        referee_pin=referee_pin)
    if isinstance(prep, Job):
        return prep
    cmd, worktree, run_dir = prep.command, prep.worktree, prep.run_dir
    mode = bwrap.sandbox_mode(sandbox)
    env = job_env(extra_env, worktree)
    limits = limits or bwrap.Limits()
    if mode == "bwrap":
        bwrap.prepare_writable([worktree, run_dir])
        (run_dir / LOG_NAME).touch()
        argv = bwrap.sandboxed_argv(cmd, writable=[worktree, run_dir], readonly=readonly, env=env,
                                    cwd=worktree, limits=bwrap.Limits(limits.nproc, limits.fsize_mb,
                                                                      int(mem_limit_mb or 0)),
                                    protect=[run_dir / LOG_NAME], engines=engines)
        preexec = None
    else:
        argv, preexec = cmd, _limits(mem_limit_mb, limits)
    log_file = open(run_dir / LOG_NAME, "wb")
    log_file.write((f"# worktree {worktree} on branch {prep.branch}\n# sandbox: {mode}\n$ "
                    + shlex.join(cmd) + "\n").encode())
    log_file.flush()
    proc = subprocess.Popen(argv, cwd=worktree, env=env,
                            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=preexec)
    _write_pid(run_dir, proc.pid)
    return Job(node_id=node_id, run_dir=run_dir, wall_clock_s=wall_clock_s, proc=proc,
               repo_root=prep.repo_root, worktree=worktree, branch=prep.branch, command=cmd,
               keep_worktree=keep_worktree, log_file=log_file, sandbox=mode,
               disk_limit_mb=disk_limit_mb)


def job_command(overrides: list[str], run_dir: Path | str,
                job_module: str = DEFAULT_JOB_MODULE) -> str:
    """The command a node runs, as a shell line (stored in the tree for reproduction)."""
    return shlex.join(["python", "-m", job_module, *overrides, f"hydra.run.dir={run_dir}"])
