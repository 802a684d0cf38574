"""What to run (JobSpec) and the files a job leaves in its run directory: the launcher's contract.

The loop's nodes, the question's starting point and the sweep's trials are all one JobSpec, and
every launcher (local.py: a sandboxed process here; slurm.py: a submitit job) takes it as it is.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from autoresearch import bwrap, patch_policy
from autoresearch.agent_config import NodeJobConfig
from autoresearch.jobs.protect import PROTECTED_PATTERNS

LAUNCHERS = ("local", "slurm", "submitit-local")   # where a job runs (research run/sweep --launcher)

# Files of a job in its run directory (the run directory's own contract is DESIGN.md's).
LOG_NAME = "job.log"               # the job's stdout + stderr
PID_NAME = "job.pid"               # pid (= process group id), start time and host: orphans are killed by it
SCRIPT_NAME = "job.sh"             # a cluster job's command on the compute node
RC_NAME = "job.rc"                 # its exit code, written by job.sh when the command ends
STARTED_NAME = "job.started"       # "<epoch> <host>", written by job.sh when the command starts
RECORD_NAME = "job.submitit.json"  # cluster, job id, submitit folder: what reattach reads
# what an earlier launch left; removed before a run
STALE_JOB_FILES = (SCRIPT_NAME, RC_NAME, STARTED_NAME, RECORD_NAME, PID_NAME)


class SandboxError(RuntimeError):
    """The sandbox itself could not be set up (not a git repo, git missing)."""


class SubmitError(SandboxError):
    """The cluster refused the job (sbatch failed: bad partition, account, no srun...)."""


@dataclass
class JobSpec:
    """One job: a node of `research run`, a question's starting point or a sweep trial.

    Paths come from experiment_tree.workspace.Workspace (run_dir(id), worktree(id)); nothing
    here builds a path under the workspace."""
    repo_root: Path | str                 # the git repository whose HEAD the job runs
    node_id: int | str                    # the tree node (or "start-q<id>"): names the branch
    run_dir: Path | str                   # hydra.run.dir: everything the job writes
    worktree: Path | str                  # its git worktree (Workspace.worktree(node_id))
    overrides: list[str] = field(default_factory=list)   # Hydra overrides of the job
    patch: str | None = None              # unified diff applied and committed in the worktree
    job: NodeJobConfig = field(default_factory=NodeJobConfig)  # module, wall clock, memory, disk, sandbox, kept worktree
    env: dict[str, str] = field(default_factory=dict)   # extra environment (allow-listed names only)
    inputs: tuple[Path | str, ...] = ()   # read-only paths of this job beyond job.readonly (a start checkpoint)
    branch_prefix: str = "node/"          # branch of the worktree: <prefix><node_id>
    commit_message: str | None = None     # of the patch's commit (default "node <id>")
    engines: bool = False                 # the reference engines stay visible: sweep trials only
    limits: bwrap.Limits | None = None    # processes and file size of the sandboxed job
    referee_pin: Path | str | None = None  # the pinned referee the worktree's referee files must match
    protected: tuple[str, ...] = PROTECTED_PATTERNS        # files no patch may change
    allowed: tuple[str, ...] = patch_policy.LEARNER_PATHS  # the only files a patch may change

    @property
    def readonly(self) -> tuple[Path | str, ...]:
        """Every path outside its worktree and run directory the sandboxed job may read."""
        return (*self.job.readonly, *self.inputs)


def job_command(overrides: list[str], run_dir: Path | str, job_module: str) -> str:
    """The command a node runs, as a shell line (stored in the tree for reproduction)."""
    return shlex.join(["python", "-m", job_module, *overrides, f"hydra.run.dir={run_dir}"])
