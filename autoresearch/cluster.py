"""Run a node on a cluster through submitit: the same node, prepared here, run on a SLURM node.

`research run --launcher slurm` sends each node to SLURM instead of starting it on this machine:

    prep = sandbox.prepare_node(...)          # worktree + patch + command, on THIS machine
    W/runs/<id>/job.sh                        # the node's command, with job_env's changes
    submitit.SlurmExecutor(folder=W/submitit/%j).submit(CommandFunction(["bash", job.sh]))
    W/runs/<id>/job.submitit.json             # cluster, job id, folder: --resume re-attaches

The workspace's `runs/`, `worktrees/` and `submitit/` folders, the repository (its `.git`: the
worktrees point into it) and the Python environment must be on a disk the submitting machine and
the compute nodes share, at the same paths: the job runs `python` (this interpreter, or
`slurm.python`) in the worktree prepared here and writes its run directory in place. `tree.db`
is only opened by `research run` itself, so it may stay on a local disk: make those three
folders symlinks into the shared disk (paths are resolved before they are sent to the node).

On the compute node `job.sh` removes API keys from the environment, prepends the worktree to
PYTHONPATH, exports HYDRA_FULL_ERROR and the loop's extra variables (what sandbox.job_env does
locally), writes `job.started`, runs the command with stdout and stderr to `job.log`, and writes
its exit code to `job.rc`. `SubmititJob` has sandbox.Job's interface (`poll`, `kill`, `wait`) and
classifies the result with the same code (sandbox.classify_exit):

- `job.rc` present: the command finished; summary.json and the exit code decide (ok | crash |
  invalid), exactly as for a local run;
- SLURM `TIMEOUT`/`DEADLINE` -> `timeout`; our own wall clock (counted from `job.started`, so
  time in the queue does not count) -> `scancel`, `timeout`; `OUT_OF_MEMORY`, `NODE_FAIL`,
  `CANCELLED` by someone else, a failed `setup` line -> `crash` with the reason and the tail of
  submitit's log.

Memory: on SLURM the limit is the job's `--mem` (cgroup), not RLIMIT_AS (which CUDA cannot run
under); with `--launcher submitit-local` the job gets `ulimit -v` from `job.mem_limit_mb`.

`research sweep --launcher slurm` sends its trials the same way (sweep.launch_trial).

`--launcher submitit-local` runs the same path through submitit's LocalExecutor on this machine
(real subprocesses); tests/test_slurm_real.py runs it on a real one-node SLURM cluster.
"""
from __future__ import annotations

import json
import math
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autoresearch import bwrap, sandbox
from autoresearch.agent_config import REPO_ROOT, SlurmConfig
from experiments.rundir import atomic_write_text

LAUNCHERS = ("local", "slurm", "submitit-local")   # research run --launcher
SUBMITIT_CLUSTERS = {"slurm": "slurm", "submitit-local": "local"}
SCRIPT_NAME = "job.sh"             # the node's command on the compute node
RC_NAME = "job.rc"                 # its exit code, written by job.sh when the command ends
STARTED_NAME = "job.started"       # "<epoch> <host>", written by job.sh when the command starts
RECORD_NAME = "job.submitit.json"  # cluster, job id, submitit folder: what --resume re-attaches to
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


class SubmitError(sandbox.SandboxError):
    """The cluster refused the job (sbatch failed: bad partition, account, no srun...)."""


# ---------------------------------------------------------------------------- resources

@dataclass
class SlurmResources:
    """The SLURM request of one node, after merging conf/launcher/slurm.yaml and the agent YAML."""
    partition: str | None = None        # sbatch --partition (None: the cluster's default)
    account: str | None = None          # sbatch --account
    qos: str | None = None              # sbatch --qos
    constraint: str | None = None       # sbatch --constraint, e.g. a GPU type
    cpus_per_task: int = 8              # sbatch --cpus-per-task
    gpus_per_node: int = 1              # sbatch --gpus-per-node (0: none)
    gres: str | None = None             # sbatch --gres, e.g. "gpu:a100:1" (clusters without --gpus)
    mem_gb: float | None = 32           # sbatch --mem (None: the cluster's default)
    setup: list[str] = field(default_factory=list)   # shell lines before the job (module load, venv)
    name: str = "tengen"                # job name prefix; the node id is appended
    additional: dict[str, Any] = field(default_factory=dict)  # more sbatch options, verbatim


_LAUNCHER_KEYS = ("partition", "account", "qos", "constraint", "cpus_per_task", "gpus_per_node",
                  "mem_gb", "setup", "name")


def slurm_resources(cfg: SlurmConfig, base_dir: Path = REPO_ROOT) -> SlurmResources:
    """The SLURM resources of a node: `cfg.resources_from` (by default conf/launcher/slurm.yaml,
    the file Hydra's submitit launcher reads, so sweeps and `research run` share one
    definition), then every field the agent YAML sets (not null) on top."""
    res = SlurmResources()
    if cfg.resources_from:
        path = Path(cfg.resources_from)
        path = path if path.is_absolute() else base_dir / path
        if not path.exists():
            raise FileNotFoundError(f"slurm.resources_from: {path} does not exist (set it to a "
                                    f"Hydra launcher YAML such as conf/launcher/slurm.yaml, or null)")
        launcher = ((yaml.safe_load(path.read_text()) or {}).get("hydra") or {}).get("launcher") or {}
        for key in _LAUNCHER_KEYS:
            if launcher.get(key) is not None:
                setattr(res, key, launcher[key])
    for key in (*_LAUNCHER_KEYS, "gres", "additional"):
        value = getattr(cfg, key)
        if value is not None:
            setattr(res, key, value)
    res.setup = list(res.setup or [])
    res.additional = dict(res.additional or {})
    return res


def time_limit_min(wall_clock_s: float, margin_min: float) -> int:
    """sbatch --time in minutes: the node's wall clock plus a margin (our own limit acts first,
    so the job is classified `timeout` by us; SLURM's is the backstop)."""
    return max(1, int(math.ceil(float(wall_clock_s) / 60.0 + float(margin_min))))


# ---------------------------------------------------------------------------- the job script

def job_script(prep: sandbox.PreparedNode, extra_env: dict[str, str] | None, *,
               mem_limit_mb: int = 0, new_session: bool = False,
               readonly: tuple[Path | str, ...] = ()) -> str:
    """`job.sh`: the node's command with the environment changes sandbox.job_env makes locally;
    `readonly`: more paths the sandboxed job may read (the question's starting checkpoint)."""
    run_dir, wt = prep.run_dir, prep.worktree
    q = shlex.quote
    lines = [
        "#!/bin/bash",
        f"# Tengen node {prep.node_id}: written by autoresearch/cluster.py, run on the cluster by",
        "# submitit (CommandFunction([\"bash\", this file])). Run it by hand to reproduce the node.",
        "# a run must never reach the LLM: the command gets an ALLOW-listed environment only",
        "# (autoresearch/bwrap.py ENV_ALLOW), never a key, token, password or secret",
        "# SLURM's time warning (sbatch --signal=USR2@90) reaches every process of the step; only",
        "# submitit's handler may act on it (it ends the job as timed out). Unignored, it killed this",
        "# script first and the node was a crash with no reason (seen on a real SLURM).",
        "trap '' USR2",
    ]
    keep = [n for n in bwrap.ENV_ALLOW if n not in ("PYTHONPATH",) and not bwrap.is_secret_env(n)]
    env_words = [f'${{{n}+"{n}=${n}"}}' for n in keep]
    env_words += [f"PYTHONPATH={q(str(wt))}", "HYDRA_FULL_ERROR=1", 'HOME="$HOME"']
    for k, v in sorted((extra_env or {}).items()):
        if bwrap.is_allowed_env(k):
            env_words.append(f"{k}={q(str(v))}")
    lines.append("JOB_ENV=(" + " ".join(env_words) + ")")
    # the same sandbox as a local node (autoresearch/bwrap.py), as an ordinary user on the
    # compute node; where bubblewrap cannot run there the node runs unsandboxed, and says so
    box = bwrap.sandboxed_argv([], writable=[wt, run_dir], readonly=readonly, cwd=wt, privileged=False,
                               clear_env=False, limits=bwrap.Limits(mem_mb=0),
                               protect=[run_dir / SCRIPT_NAME, run_dir / sandbox.LOG_NAME])
    lines += [
        "if command -v bwrap >/dev/null 2>&1 && bwrap --unshare-user --unshare-pid --ro-bind / / "
        "--proc /proc --dev /dev true 2>/dev/null; then",
        f"  SANDBOX=bwrap; JOB_ENV+=(HOME={bwrap.SANDBOX_HOME}); BOX=({shlex.join(box)})",
        'else',
        '  SANDBOX="none: bubblewrap cannot run on $(hostname)"; BOX=()',
        "fi",
    ]
    lines.append(f"cd {q(str(wt))} || exit 97")
    if mem_limit_mb and mem_limit_mb > 0:
        lines.append(f"ulimit -v {int(mem_limit_mb) * 1024}")
    log, cmd = q(str(run_dir / sandbox.LOG_NAME)), shlex.join(prep.command)
    run = 'env -i "${JOB_ENV[@]}" "${BOX[@]}" ' + cmd
    lines += [
        f'echo "$(date +%s) $(hostname)" > {q(str(run_dir / STARTED_NAME))}',
        f'{{ echo "# worktree {wt} on branch {prep.branch}, job ${{SLURM_JOB_ID:-local}} on $(hostname)"; '
        f'echo "# sandbox: $SANDBOX"; echo {q("$ " + cmd)}; }} > {log}',
        f"{'setsid ' if new_session else ''}{run} >> {log} 2>&1 < /dev/null &",
        "pid=$!",
        f'echo "$pid $(date +%s) $(hostname)" > {q(str(run_dir / sandbox.PID_NAME))}',
        'wait "$pid"',
        "rc=$?",
        f'echo "$rc" > {q(str(run_dir / (RC_NAME + ".tmp")))} && '
        f"mv {q(str(run_dir / (RC_NAME + '.tmp')))} {q(str(run_dir / RC_NAME))}",
        'exit "$rc"',
        "",
    ]
    return "\n".join(lines)


def readable_by_job(paths: tuple[Path | str, ...]) -> None:
    """Let a root-submitted job read its read-only inputs (the question's shared start).

    A SLURM job runs as the user who submitted it; its sandbox is a user namespace without
    capabilities, so even root reads only what the file modes allow. When the harness is root,
    the question's start was trained by a local sandboxed job running as bwrap.SANDBOX_UID, and
    checkpoints are written 0600 (mkstemp): the first real training node on SLURM crashed with
    "Permission denied" on the start checkpoint. Files (and folders) of another owner get read
    (and search) permission for all; nothing is done for an ordinary user, whose local jobs and
    SLURM jobs share one uid."""
    if os.geteuid() != 0:
        return
    for top in paths:
        for dirpath, _dirs, files in os.walk(top) if Path(top).is_dir() else [(None, [], [top])]:
            entries = ([(Path(dirpath), 0o555)] if dirpath else []) + \
                [(Path(dirpath or "") / f, 0o444) for f in files]
            for path, bits in entries:
                try:
                    st = path.lstat()
                    if st.st_uid != 0 and not path.is_symlink() and st.st_mode & bits != bits:
                        path.chmod((st.st_mode | bits) & 0o7777)
                except FileNotFoundError:
                    pass


# ---------------------------------------------------------------------------- executors

def make_executor(launcher: str, folder: Path, res: SlurmResources, time_min: int,
                  job_name: str, comment: str = "", python: str | None = None,
                  chdir: Path | None = None):
    """The submitit executor for `launcher` (slurm | submitit-local), parameters set.
    `chdir`: the SLURM job's working directory (sbatch --chdir; the node's run directory, on
    the shared disk, rather than wherever `research run` was started)."""
    import submitit

    cluster = SUBMITIT_CLUSTERS.get(launcher)
    if cluster == "slurm":
        try:
            ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=0,
                                        python=shlex.quote(python) if python else None)
        except RuntimeError as e:   # no srun on PATH
            raise SubmitError(f"--launcher slurm: {e} (run `research run` on a SLURM login node, "
                              f"or use --launcher local)") from e
        params: dict[str, Any] = {
            "job_name": job_name, "time": time_min, "nodes": 1, "ntasks_per_node": 1,
            "cpus_per_task": res.cpus_per_task,
            # sbatch --export=<list> reaches srun as SLURM_EXPORT_ENV, and the step would get
            # only those names: not submitit's SUBMITIT_EXECUTOR (the job dies at once, "Could
            # not figure out which environment", seen on a real SLURM) nor what `setup` lines
            # (module load, venv) export. The batch script's environment is already the
            # allow-listed one, so the step takes all of it.
            "setup": [*(f"# {ln}" for ln in comment.splitlines()), "export SLURM_EXPORT_ENV=ALL",
                      *res.setup],
        }
        if res.gpus_per_node:
            params["gpus_per_node"] = res.gpus_per_node
        for key in ("partition", "account", "qos", "constraint", "gres"):
            if getattr(res, key):
                params[key] = getattr(res, key)
        if res.mem_gb:
            gb = float(res.mem_gb)
            params["mem"] = f"{int(gb)}GB" if gb == int(gb) else f"{int(gb * 1024)}MB"
        # sbatch passes only these names (never a key): not the submitting shell's environment
        extra = {**({"chdir": str(chdir)} if chdir else {}), **res.additional,
                 "export": slurm_export()}
        if extra:
            params["additional_parameters"] = extra
        ex.update_parameters(**params)
        return ex
    if cluster == "local":
        ex = submitit.LocalExecutor(folder=folder, python=python)
        ex.update_parameters(timeout_min=time_min, gpus_per_node=0, tasks_per_node=1)
        return ex
    raise ValueError(f"unknown cluster launcher {launcher!r} (choose one of {LAUNCHERS})")


def slurm_export() -> str:
    """sbatch --export: an explicit allow-list of variable names (their values are this
    machine's), so a key in the submitting shell never reaches the job or its batch script."""
    names = [n for n in bwrap.ENV_ALLOW if n in os.environ and bwrap.is_allowed_env(n)]
    names += sorted(n for n in os.environ if bwrap.is_allowed_env(n) and n not in names)
    return ",".join(["HOME", "USER", "LOGNAME", *names])


def start_cluster_job(repo_root: Path | str, node_id: int, overrides: list[str],
                      patch: str | None, run_dir: Path | str, wall_clock_s: float,
                      mem_limit_mb: int, extra_env: dict[str, str] | None = None, *,
                      launcher: str = "slurm", slurm: SlurmConfig | None = None,
                      folder: Path | str | None = None,
                      job_module: str = sandbox.DEFAULT_JOB_MODULE,
                      worktrees_dir: Path | str | None = None, keep_worktree: bool = False,
                      commit_message: str | None = None,
                      branch_prefix: str = "node/",
                      readonly: tuple[Path | str, ...] = ()) -> sandbox.Job:
    """sandbox.start_job's twin for a cluster: prepare here, submit with submitit.

    Returns a SubmititJob at once (or sandbox's already-finished Job for a refused or
    non-applying patch). `folder` (submitit's pickles and logs) defaults to
    `<run_dir>/../../submitit/%j`. Raises SubmitError if the cluster refuses the job.
    """
    slurm = slurm or SlurmConfig()
    res = slurm_resources(slurm)
    python = slurm.python or sys.executable
    prep = sandbox.prepare_node(repo_root, node_id, overrides, patch, run_dir, wall_clock_s,
                                job_module=job_module, worktrees_dir=worktrees_dir,
                                python=python, commit_message=commit_message,
                                branch_prefix=branch_prefix)
    if isinstance(prep, sandbox.Job):
        return prep
    local = launcher == "submitit-local"
    readable_by_job(readonly)
    # the compute node sees the shared disk, not this machine's symlinks into it
    prep.worktree = prep.worktree.resolve()
    script = prep.run_dir / SCRIPT_NAME
    atomic_write_text(script, job_script(prep, extra_env, mem_limit_mb=mem_limit_mb if local else 0,
                                         new_session=local, readonly=readonly))
    folder = Path(folder) if folder else prep.run_dir.parent.parent / "submitit" / "%j"
    folder = folder.parent.resolve() / folder.name
    time_min = time_limit_min(wall_clock_s, slurm.time_margin_min)
    comment = (f"tengen node {node_id}: bash {script}\n"
               f"  = cd {prep.worktree} && {shlex.join(prep.command)}")
    try:
        ex = make_executor(launcher, folder, res, time_min, f"{res.name}-{node_id}", comment, python,
                           chdir=prep.run_dir)
        import submitit
        sjob = ex.submit(submitit.helpers.CommandFunction(["bash", str(script)],
                                                          cwd=str(prep.worktree), verbose=False))
    except Exception as e:
        sandbox.remove_worktree(prep.repo_root, prep.worktree)
        if isinstance(e, SubmitError):
            raise
        raise SubmitError(f"could not submit node {node_id} ({launcher}): "
                          f"{type(e).__name__}: {e}") from e
    record = {"launcher": launcher, "cluster": SUBMITIT_CLUSTERS[launcher],
              "job_id": str(sjob.job_id), "folder": str(folder), "node_id": node_id,
              "repo_root": str(prep.repo_root), "worktree": str(prep.worktree),
              "branch": prep.branch, "command": prep.command, "wall_clock_s": wall_clock_s,
              "time_limit_min": time_min, "keep_worktree": keep_worktree,
              "submitted_at": time.time(), "resources": asdict(res)}
    atomic_write_text(prep.run_dir / RECORD_NAME, json.dumps(record, indent=1) + "\n")
    return SubmititJob(sjob, record, prep.run_dir, poll_s=slurm.poll_s,
                       rc_grace_s=slurm.rc_grace_s if not local else 2.0)


# ---------------------------------------------------------------------------- the job

class SubmititJob(sandbox.Job):
    """A node running under submitit: sandbox.Job's interface (`poll`, `kill`, `wait`)."""

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

    def kill(self, reason: str) -> None:
        """Cancel the job (scancel; locally also kill the command's process group)."""
        if self._result is not None or self._cancelled_at is not None:
            return
        self._kill_reason = reason
        self._cancelled_at = time.time()
        if self.cluster == "local":
            sandbox.kill_orphan(self.run_dir)   # the pid file names a group on this machine
        try:
            self.sjob.cancel(check=False)
        except Exception:
            pass
        self._state_at = -math.inf            # ask the cluster again at the next poll

    def wait(self, poll_s: float = 0.5) -> sandbox.JobResult:
        return super().wait(poll_s)

    def _finish(self, rc: int | None, state: str | None = None) -> sandbox.JobResult:
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
        res = sandbox.classify_exit(self.run_dir, rc, self._kill_reason, branch=self.branch,
                                    wall_s=(time.time() - t0) if t0 else 0.0,
                                    worktree=self.worktree, no_exit_error=why,
                                    log_prefix=submitit_log)
        self._cleanup()
        return res

    def _submitit_log(self) -> str:
        text = ""
        for path in (self.sjob.paths.stdout, self.sjob.paths.stderr):
            text += sandbox.tail(Path(path), SUBMITIT_LOG_CHARS)
        return f"# submitit log of {self.describe()}:\n{text}\n# job.log:\n" if text else ""


# ---------------------------------------------------------------------------- --resume

def read_record(run_dir: Path | str) -> dict[str, Any] | None:
    try:
        return json.loads((Path(run_dir) / RECORD_NAME).read_text())
    except (OSError, ValueError):
        return None


def reattach(run_dir: Path | str, slurm: SlurmConfig | None = None) -> SubmititJob | None:
    """After the loop died: the SLURM job of `run_dir` as a SubmititJob again (it may still be
    queued, running or over -- `poll()` says which). None when the run was not a SLURM job: a
    submitit-local job's process handles died with the loop (sandbox.kill_orphan ends it and the
    node is re-queued, as for a local run)."""
    record = read_record(run_dir)
    if record is None or record.get("cluster") != "slurm":
        return None
    import submitit
    slurm = slurm or SlurmConfig()
    sjob = submitit.SlurmJob(folder=record["folder"], job_id=str(record["job_id"]))
    return SubmititJob(sjob, record, Path(run_dir), poll_s=slurm.poll_s,
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
