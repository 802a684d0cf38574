"""The one launcher: every job of the harness -- a node of `research run`, a question's starting
point, a sweep trial -- is a JobSpec started here, locally (sandboxed) or on SLURM.

    spec = JobSpec(repo_root, node_id, run_dir=ws.run_dir(i), worktree=ws.worktree(i), ...)
    job = jobs.start(spec, launcher="local" | "slurm" | "submitit-local",
                     slurm=cfg.slurm, folder=ws.submitit_dir(cfg.slurm.folder) / "%j")
    while job.poll() is None: ...        # never blocks; enforces the wall clock
    result = job.wait()                  # JobResult(status, summary, error, log_tail)
    job.kill("why")                      # the process group, or scancel

    after the harness died (loop --resume, a sweep worker taken for dead):
    r = jobs.reclaim(run_dir, worktree, repo_root, follow=True | False)
    r.job (re-attached SLURM job) | r.summary (finished meanwhile) | r.interrupted (caller decides)

The modules, one concern each: spec (JobSpec, run-directory file names, errors), protect (patch
protection), worktrees (git worktrees), prepare (worktree + patch + command), environment (env
and limits), local (the sandboxed process, pid files, orphans), slurm_script (job.sh), slurm
(submitit executors, submission), slurm_job (its handle, reattach, scancel), status (JobResult,
classify_exit: the status taxonomy).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoresearch.agent_config import SlurmConfig
from autoresearch.jobs.local import Job, kill_orphan, start_local
from autoresearch.jobs.prepare import prepare
from autoresearch.jobs.spec import (LAUNCHERS, LOG_NAME, PID_NAME, JobSpec, SandboxError,
                                    SubmitError, job_command)
from autoresearch.jobs.status import JobResult, tail
from autoresearch.jobs.worktrees import remove_worktree
from experiments.rundir import read_summary

__all__ = ["LAUNCHERS", "LOG_NAME", "Job", "JobResult", "JobSpec", "Reclaimed", "SandboxError",
           "SubmitError", "job_command", "reattach", "reclaim", "start", "tail"]

FINAL = ("ok", "crash", "timeout", "invalid")   # a summary.json status that ends a job


def start(spec: JobSpec, launcher: str = "local", *, slurm: SlurmConfig | None = None,
          folder: Path | str | None = None) -> Job:
    """Prepare the job's worktree and start it where `launcher` says; returns its handle at once.

    A patch that is refused or does not apply gives a Job that is already finished (`refused` /
    `invalid`), so callers treat every outcome alike. For the cluster launchers `folder` is
    submitit's folder (Workspace.submitit_dir(slurm.folder) / "%j"); `slurm` the resources.
    Raises SandboxError when git or the repository is missing, SubmitError when the cluster
    refuses the job."""
    if launcher not in LAUNCHERS:
        raise ValueError(f"unknown launcher {launcher!r} (choose one of {', '.join(LAUNCHERS)})")
    slurm = slurm or SlurmConfig()
    if launcher != "local" and folder is None:
        raise ValueError(f"launcher {launcher!r} needs submitit's folder: pass "
                         f"folder=Workspace(...).submitit_dir(slurm.folder) / '%j'")
    python = sys.executable if launcher == "local" else (slurm.python or sys.executable)
    prep = prepare(spec, python)
    if isinstance(prep, JobResult):
        return Job(node_id=spec.node_id, run_dir=Path(spec.run_dir).resolve(),
                   wall_clock_s=spec.job.wall_clock_s, branch=prep.branch, result=prep)
    if launcher == "local":
        return start_local(spec, prep)
    from autoresearch.jobs import slurm as cluster
    return cluster.submit(spec, prep, launcher, slurm, Path(folder), python)


def reattach(run_dir: Path | str, slurm: SlurmConfig | None = None) -> Job | None:
    """The SLURM job of `run_dir` as a handle again (queued, running or over: `poll()` says),
    or None when the run was not a SLURM job (a local process dies with its handle's owner)."""
    from autoresearch.jobs.slurm_job import reattach as reattach_slurm
    return reattach_slurm(run_dir, slurm)


@dataclass
class Reclaimed:
    """What `reclaim` found of a job whose harness died."""
    job: Job | None = None                   # re-attached SLURM job: the caller polls it again
    summary: dict[str, Any] | None = None    # the job finished on its own meanwhile: record it
    killed: bool = False                     # a local orphan was killed by its pid file
    cancelled: tuple[str, str] | None = None  # (SLURM job id, sacct state after scancel)
    ended: bool = True                       # nothing of the job runs any more

    @property
    def interrupted(self) -> bool:
        """Neither followed nor finished: the caller marks the node interrupted, then re-queues
        it (the loop) or leaves it failed (a sweep trial, retried by Optuna)."""
        return self.job is None and self.summary is None

    def describe(self) -> str:
        """What was done to the job, as a clause for the node's error ("" when nothing)."""
        return (("; the orphaned job was killed" if self.killed else "")
                + (f"; its SLURM job {self.cancelled[0]} was cancelled (scancel; sacct: "
                   f"{self.cancelled[1]})" if self.cancelled else ""))


def reclaim(run_dir: Path | str | None, worktree: Path | str | None, repo_root: Path | str, *,
            follow: bool, slurm: SlurmConfig | None = None,
            reason: str = "its harness stopped while it ran") -> Reclaimed:
    """The one policy for a job whose harness died (`research run --resume`, a sweep worker
    failing a stale trial):

    1. a SLURM job: `follow=True` re-attaches to it (it went on whatever happened to the
       harness); `follow=False` scancels it if it is still queued or running (its trial was
       given up) and waits for SLURM to end it;
    2. a local job: the orphan named by the run directory's pid file is killed (only when its
       command line names this run directory, and only on the host that started it);
    3. the worktree is removed once nothing of the job runs;
    4. a summary.json with a final status, and nothing killed: the job finished meanwhile.
    """
    from autoresearch.jobs import slurm_job

    out = Reclaimed()
    if run_dir is None:       # never started: nothing runs, a leftover worktree can go
        if worktree is not None and Path(worktree).exists():
            remove_worktree(Path(repo_root), Path(worktree))
        return out
    run_dir = Path(run_dir)
    record = slurm_job.read_record(run_dir)
    if record is not None and record.get("cluster") == "slurm":
        if follow:
            return Reclaimed(job=slurm_job.reattach(run_dir, slurm))
        out.cancelled = slurm_job.cancel_if_active(run_dir, reason)
        out.ended = out.cancelled is None or out.cancelled[1] not in slurm_job.SLURM_ACTIVE
    else:
        out.killed = kill_orphan(run_dir)
        out.ended = out.killed or not (run_dir / PID_NAME).exists()
    if worktree is not None and Path(worktree).exists() and out.ended:
        remove_worktree(Path(repo_root), Path(worktree))
    summary = read_summary(run_dir)
    if (summary is not None and not out.killed and out.cancelled is None
            and summary.get("status") in FINAL):
        out.summary = summary
    return out
