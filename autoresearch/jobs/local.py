"""A job on this machine: a sandboxed process group, its handle, its pid file, its orphans.

    job = jobs.start(spec)              # local.start_local after prepare.prepare
    while job.poll() is None: ...       # never blocks; kills the job past its wall clock or disk cap
    result = job.wait()                 # JobResult(status, summary, error, log_tail)

Every job runs under bubblewrap (autoresearch/bwrap.py) where it can: its own PID namespace, no
network, writable only its worktree (not `.git`) and run directory, an allow-listed environment.
Where it cannot, it runs unsandboxed and `JobResult.sandbox` / summary.json `sandbox` say why.
After a `kill -9` of the harness its jobs live on (own session): `kill_orphan` ends one by the
pid file in its run directory.
"""
from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

from autoresearch import bwrap
from autoresearch.jobs.environment import dir_size_mb, job_env, rlimits
from autoresearch.jobs.prepare import PreparedNode
from autoresearch.jobs.spec import LOG_NAME, PID_NAME, JobSpec
from autoresearch.jobs.status import JobResult, classify_exit
from autoresearch.jobs.worktrees import remove_worktree
from experiments.rundir import atomic_write_text

KILL_GRACE_S = 5.0            # SIGTERM, then SIGKILL after this many seconds
DISK_CHECK_S = 5.0            # how often a running job's run directory is measured


class Job:
    """One running job (a node, a start, a trial). `poll()` never blocks; `wait()` polls until
    the job is over. slurm_job.SlurmJob has the same interface."""

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

    def describe(self) -> str:
        return f"pid {self.pid or '-'}"

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
        clear_pid(self.run_dir)
        if self.worktree is not None and not self.keep_worktree and self.repo_root is not None:
            remove_worktree(self.repo_root, self.worktree)

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


def write_pid(run_dir: Path, pid: int) -> None:
    atomic_write_text(Path(run_dir) / PID_NAME, f"{pid} {time.time():.0f} {socket.gethostname()}\n")


def clear_pid(run_dir: Path) -> None:
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
    clear_pid(run_dir)
    return killed


def start_local(spec: JobSpec, prep: PreparedNode) -> Job:
    """Launch a prepared job on this machine: `python -m <module> <overrides>
    hydra.run.dir=<run_dir>` in its own process group, inside bubblewrap (`job.sandbox`: auto |
    bwrap | none; see bwrap.sandbox_mode). `spec.engines` keeps the reference engines visible
    (bwrap.sandboxed_argv): only for sweep trials, whose own evaluation is their objective."""
    cmd, worktree, run_dir = prep.command, prep.worktree, prep.run_dir
    mode = bwrap.sandbox_mode(spec.job.sandbox)
    env = job_env(spec.env, worktree)
    limits = spec.limits or bwrap.Limits()
    mem_limit_mb = int(spec.job.mem_limit_mb or 0)
    if mode == "bwrap":
        bwrap.prepare_writable([worktree, run_dir])
        (run_dir / LOG_NAME).touch()
        argv = bwrap.sandboxed_argv(cmd, writable=[worktree, run_dir], readonly=spec.readonly,
                                    env=env, cwd=worktree,
                                    limits=bwrap.Limits(limits.nproc, limits.fsize_mb, mem_limit_mb),
                                    protect=[run_dir / LOG_NAME], engines=spec.engines)
        preexec = None
    else:
        argv, preexec = cmd, rlimits(mem_limit_mb, limits)
    log_file = open(run_dir / LOG_NAME, "wb")
    log_file.write((f"# worktree {worktree} on branch {prep.branch}\n# sandbox: {mode}\n$ "
                    + shlex.join(cmd) + "\n").encode())
    log_file.flush()
    proc = subprocess.Popen(argv, cwd=worktree, env=env,
                            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=preexec)
    write_pid(run_dir, proc.pid)
    return Job(node_id=spec.node_id, run_dir=run_dir, wall_clock_s=spec.job.wall_clock_s,
               proc=proc, repo_root=prep.repo_root, worktree=worktree, branch=prep.branch,
               command=cmd, keep_worktree=spec.job.keep_worktrees, log_file=log_file, sandbox=mode,
               disk_limit_mb=spec.job.disk_limit_mb)
