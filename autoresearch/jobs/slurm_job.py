"""The handle of a submitit job (SLURM or submitit-local): local.Job's interface, the same
classification (status.classify_exit), and what survives the harness: reattach, scancel.

- `job.rc` present: the command finished; summary.json and the exit code decide (ok | crash |
  invalid), exactly as for a local run;
- SLURM `TIMEOUT`/`DEADLINE` -> `timeout`; our own wall clock (counted from `job.started`, so
  time in the queue does not count) -> `scancel`, `timeout`; `OUT_OF_MEMORY`, `NODE_FAIL`,
  `CANCELLED` by someone else, a failed `setup` line -> `crash` with the reason and the tail of
  submitit's log.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from autoresearch.agent_config import SlurmConfig
from autoresearch.jobs.local import Job, kill_orphan
from autoresearch.jobs.spec import RC_NAME, RECORD_NAME, STARTED_NAME
from autoresearch.jobs.status import JobResult, classify_exit, tail

SUBMITIT_CLUSTERS = {"slurm": "slurm", "submitit-local": "local"}   # launcher -> submitit cluster
SUBMITIT_LOG_CHARS = 1500          # of submitit's own log, added to the log tail of a failed job
# submitit's words when SLURM's USR2 (sent `signal_delay_s`, 90 s, before --time) finds the job
# timed out; then it ends the job ("not checkpointable" or, with max_num_timeout=0 as here, "too
# many times": seen on a real SLURM), so SLURM says FAILED, not TIMEOUT
SUBMITIT_TIMED_OUT = "this job is timed-out"

# SLURM job states (sacct): still going vs over. Anything else is treated as over.
SLURM_ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED",
                "REQUEUE_HOLD", "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT",
                "READY", "PREEMPTED", "UNKNOWN"}   # UNKNOWN: sacct has not seen the job yet
SLURM_TIMEOUT = {"TIMEOUT", "DEADLINE"}


class SlurmJob(Job):
    """A node running under submitit: local.Job's interface (`poll`, `kill`, `wait`)."""

    def __init__(self, sjob: Any, record: dict[str, Any], run_dir: Path, *,
                 poll_s: float = 30.0, rc_grace_s: float = 30.0, cancel_wait_s: float = 120.0):
        super().__init__(node_id=int(record["node_id"]), run_dir=run_dir,
                         wall_clock_s=float(record["wall_clock_s"]),
                         repo_root=Path(record["repo_root"]), worktree=Path(record["worktree"]),
                         branch=record.get("branch"), command=list(record.get("command") or []),
                         keep_worktree=bool(record.get("keep_worktree")))
        self.sjob = sjob
        self.record = record
        self.cluster = record["cluster"]
        self.poll_s = poll_s              # seconds between sacct calls for this job
        self.rc_grace_s = rc_grace_s      # wait this long for job.rc after SLURM says it ended
        self.cancel_wait_s = cancel_wait_s
        self.started = float(record.get("submitted_at") or time.time())
        self._state = "UNKNOWN"
        self._state_at = -math.inf
        self._ended_at: float | None = None   # when the cluster first said the job is over
        self._cancelled_at: float | None = None
        self._rc_seen_at: float | None = None  # when a failed command's job.rc first appeared

    @property
    def job_id(self) -> str:
        return str(self.sjob.job_id)

    @property
    def pid(self) -> int | None:
        return None

    def describe(self) -> str:
        return f"{'SLURM' if self.cluster == 'slurm' else 'submitit local'} job {self.job_id}"

    # -- what the cluster says
    def state(self, force: bool = False) -> str:
        """The cluster's state of the job (SLURM: sacct at most every `poll_s` seconds)."""
        if self.cluster == "local":
            return str(self.sjob.state)
        if force or time.time() - self._state_at >= self.poll_s:
            try:
                info = self.sjob.get_info(mode="force")
            except Exception:   # sacct unreachable for a moment: keep the last state
                info = {}
            if info.get("State"):
                self._state = str(info["State"]).split()[0].upper()   # "CANCELLED by 123"
            self._state_at = time.time()
        return self._state

    def active(self, state: str) -> bool:
        return state == "RUNNING" if self.cluster == "local" else state in SLURM_ACTIVE

    def run_started_at(self) -> float | None:
        """When the command started on its node (job.sh's clock), None while it is queued."""
        try:
            return float((self.run_dir / STARTED_NAME).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def returncode(self) -> int | None:
        try:
            return int((self.run_dir / RC_NAME).read_text().strip())
        except (OSError, ValueError):
            return None

    # -- the Job interface
    def poll(self) -> str | None:
        """None while queued or running; else the final status. Enforces the wall clock."""
        if self._result is not None:
            return self._result.status
        rc = self.returncode()
        if rc is not None:
            if rc != 0 and self.cluster == "slurm" and self._kill_reason is None and not self._end_known(rc):
                return None     # sacct still says the job runs: wait (rc_grace_s at most) to learn why it ended
            self._result = self._finish(rc)
            return self._result.status
        state = self.state()
        now = time.time()
        if self._cancelled_at is not None:
            if not self.active(state) or now - self._cancelled_at > self.cancel_wait_s:
                self._result = self._finish(None)
                return self._result.status
            return None
        if self.active(state):
            t0 = self.run_started_at()
            if self.wall_clock_s and t0 is not None and now - t0 > self.wall_clock_s:
                self.kill(f"timeout: ran past its wall-clock limit of {self.wall_clock_s:g} s")
            return None
        if self.cluster == "slurm" and state in SLURM_TIMEOUT:
            self._kill_reason = (f"timeout: SLURM ended job {self.job_id} ({state}) at its time "
                                 f"limit of {self.record.get('time_limit_min')} min")
            self._result = self._finish(None)
            return self._result.status
        # over without job.rc: give a shared disk a moment to show it, then classify
        if self._ended_at is None:
            self._ended_at = now
        if now - self._ended_at < self.rc_grace_s:
            return None
        self._result = self._finish(None, state)
        return self._result.status

    def _end_known(self, rc: int) -> bool:
        """After a failed command's job.rc: False while sacct still calls the job active (within
        rc_grace_s); True once it is known how the job ended. A scancel from outside Tengen kills
        the command, and job.sh may still record its exit code (143) before SLURM ends the job:
        that node is a crash *because it was cancelled*, which the exit code alone does not say."""
        now = time.time()
        first = self._rc_seen_at is None
        if first:
            self._rc_seen_at = now
        state = self.state(force=first)
        if self.active(state) and now - self._rc_seen_at < self.rc_grace_s:
            return False
        if state.startswith("CANCELLED"):
            self._kill_reason = (f"{self.describe()} ended CANCELLED (scancel from outside Tengen); "
                                 f"its command exited with code {rc}")
        return True

    def kill(self, reason: str) -> None:
        """Cancel the job (scancel; locally also kill the command's process group)."""
        if self._result is not None or self._cancelled_at is not None:
            return
        self._kill_reason = reason
        self._cancelled_at = time.time()
        if self.cluster == "local":
            kill_orphan(self.run_dir)   # the pid file names a group on this machine
        try:
            self.sjob.cancel(check=False)
        except Exception:
            pass
        self._state_at = -math.inf            # ask the cluster again at the next poll

    def wait(self, poll_s: float = 0.5) -> JobResult:
        return super().wait(poll_s)

    def _finish(self, rc: int | None, state: str | None = None) -> JobResult:
        why = None
        submitit_log = self._submitit_log() if rc != 0 else ""
        if rc != 0 and self._kill_reason is None and SUBMITIT_TIMED_OUT in submitit_log:
            # SLURM's warning signal before the time limit: submitit ends a command it cannot
            # checkpoint, so the job ends FAILED rather than TIMEOUT (seen when no loop was
            # watching the wall clock, e.g. between a kill -9 and --resume); job.sh may still
            # record the exit code of its command, killed with the step
            self._kill_reason = (f"timeout: {self.describe()} reached its time limit of "
                                 f"{self.record.get('time_limit_min')} min (submitit: timed-out)")
        if rc is None:
            where = f"{self.describe()} ended {state or self._state}"
            why = (f"{where} without the node's command recording an exit code "
                   f"(setup failed, out of memory, node failure or cancelled outside Tengen); "
                   f"submitit log: {self.sjob.paths.stderr}")
        t0 = self.run_started_at()
        res = classify_exit(self.run_dir, rc, self._kill_reason, branch=self.branch,
                                    wall_s=(time.time() - t0) if t0 else 0.0,
                                    worktree=self.worktree, no_exit_error=why,
                                    log_prefix=submitit_log)
        self._cleanup()
        return res

    def _submitit_log(self) -> str:
        text = ""
        for path in (self.sjob.paths.stdout, self.sjob.paths.stderr):
            text += tail(Path(path), SUBMITIT_LOG_CHARS)
        return f"# submitit log of {self.describe()}:\n{text}\n# job.log:\n" if text else ""



def read_record(run_dir: Path | str) -> dict[str, Any] | None:
    try:
        return json.loads((Path(run_dir) / RECORD_NAME).read_text())
    except (OSError, ValueError):
        return None


def reattach(run_dir: Path | str, slurm: SlurmConfig | None = None) -> SlurmJob | None:
    """After the loop died: the SLURM job of `run_dir` as a SlurmJob again (it may still be
    queued, running or over -- `poll()` says which). None when the run was not a SLURM job: a
    submitit-local job's process handles died with the loop (sandbox.kill_orphan ends it and the
    node is re-queued, as for a local run)."""
    record = read_record(run_dir)
    if record is None or record.get("cluster") != "slurm":
        return None
    import submitit
    slurm = slurm or SlurmConfig()
    sjob = submitit.SlurmJob(folder=record["folder"], job_id=str(record["job_id"]))
    return SlurmJob(sjob, record, Path(run_dir), poll_s=slurm.poll_s,
                       rc_grace_s=slurm.rc_grace_s)


STALE_CANCEL_WAIT_S = 60.0   # after scancel of a stale trial's job: wait this long for it to end


def cancel_if_active(run_dir: Path | str, reason: str,
                     wait_s: float = STALE_CANCEL_WAIT_S) -> tuple[str, str] | None:
    """scancel the SLURM job of `run_dir` if it is still queued or running (a sweep trial whose
    worker died: its job outlives the worker, and on a multi-node cluster it runs on a machine
    where no pid of ours means anything). Waits up to `wait_s` for SLURM to end it.

    Returns (job id, the state sacct shows after the wait: CANCELLED, or still active), or None
    when `run_dir` holds no SLURM job or the job had already ended."""
    job = reattach(run_dir, SlurmConfig(poll_s=1.0))
    if job is None:
        return None
    if not job.active(job.state(force=True)):
        return None
    job._kill_reason = reason
    try:
        job.sjob.cancel(check=False)
    except Exception:   # scancel missing or refused: the state below says the job lives on
        pass
    end = time.time() + wait_s
    state = job.state(force=True)
    while job.active(state) and time.time() < end:
        time.sleep(1.0)
        state = job.state(force=True)
    return job.job_id, state
