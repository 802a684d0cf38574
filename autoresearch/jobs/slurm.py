"""A job on a cluster through submitit: prepared here, run on a SLURM node (or, with
`submitit-local`, through submitit's LocalExecutor on this machine).

    prep = prepare.prepare(spec, python)       # worktree + patch + command, on THIS machine
    <run_dir>/job.sh                           # the command (slurm_script.job_script)
    submitit.SlurmExecutor(folder=Workspace.submitit_dir()/%j).submit(CommandFunction(["bash", job.sh]))
    <run_dir>/job.submitit.json                # cluster, job id, folder: reattach reads it

The workspace's `runs/`, `worktrees/` and `submitit/` folders, the repository (its `.git`: the
worktrees point into it) and the Python environment must be on a disk the submitting machine and
the compute nodes share, at the same paths: the job runs `python` (this interpreter, or
`slurm.python`) in the worktree prepared here and writes its run directory in place. `tree.db`
is only opened by the harness itself, so it may stay on a local disk: make those three folders
symlinks into the shared disk (paths are resolved before they are sent to the node).

Memory: on SLURM the limit is the job's `--mem` (cgroup), not RLIMIT_AS (which CUDA cannot run
under); with `submitit-local` the job gets `ulimit -v` from `job.mem_limit_mb`.
The job's handle (poll, kill, classification, reattach, scancel) is slurm_job.py.
"""
from __future__ import annotations

import dataclasses
import json
import math
import shlex
import time
from pathlib import Path
from typing import Any

import yaml

from autoresearch.agent_config import REPO_ROOT, SlurmConfig
from autoresearch.jobs.prepare import PreparedNode
from autoresearch.jobs.slurm_job import SUBMITIT_CLUSTERS, SlurmJob
from autoresearch.jobs.slurm_script import job_script, readable_by_job, slurm_export
from autoresearch.jobs.spec import LAUNCHERS, RECORD_NAME, SCRIPT_NAME, JobSpec, SubmitError
from autoresearch.jobs.worktrees import remove_worktree
from experiments.rundir import atomic_write_text

# the fields of the agent's `slurm:` block that conf/launcher/slurm.yaml's hydra.launcher fills
_LAUNCHER_KEYS = ("partition", "account", "qos", "constraint", "cpus_per_task", "gpus_per_node",
                  "mem_gb", "setup", "name")
DEFAULT_JOB_NAME = "tengen"        # job name prefix where neither file sets `name`


def slurm_resources(cfg: SlurmConfig, base_dir: Path = REPO_ROOT) -> SlurmConfig:
    """`cfg` with its null resource fields filled from `cfg.resources_from` (by default
    conf/launcher/slurm.yaml, the file Hydra's submitit launcher reads, so sweeps and `research
    run` share one definition); fields neither sets stay null (the cluster's default)."""
    res = dataclasses.replace(cfg)
    if cfg.resources_from:
        path = Path(cfg.resources_from)
        path = path if path.is_absolute() else base_dir / path
        if not path.exists():
            raise FileNotFoundError(f"slurm.resources_from: {path} does not exist (set it to a "
                                    f"Hydra launcher YAML such as conf/launcher/slurm.yaml, or null)")
        launcher = ((yaml.safe_load(path.read_text()) or {}).get("hydra") or {}).get("launcher") or {}
        for key in _LAUNCHER_KEYS:
            if getattr(res, key) is None and launcher.get(key) is not None:
                setattr(res, key, launcher[key])
    res.setup = list(res.setup or [])
    res.additional = dict(res.additional or {})
    res.name = res.name or DEFAULT_JOB_NAME
    return res


def time_limit_min(wall_clock_s: float, margin_min: float) -> int:
    """sbatch --time in minutes: the node's wall clock plus a margin (our own limit acts first,
    so the job is classified `timeout` by us; SLURM's is the backstop)."""
    return max(1, int(math.ceil(float(wall_clock_s) / 60.0 + float(margin_min))))


def make_executor(launcher: str, folder: Path, res: SlurmConfig, time_min: int,
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
            # sbatch --export=<list> reaches srun as SLURM_EXPORT_ENV, and the step would get
            # only those names: not submitit's SUBMITIT_EXECUTOR (the job dies at once, "Could
            # not figure out which environment", seen on a real SLURM) nor what `setup` lines
            # (module load, venv) export. The batch script's environment is already the
            # allow-listed one, so the step takes all of it.
            "setup": [*(f"# {ln}" for ln in comment.splitlines()), "export SLURM_EXPORT_ENV=ALL",
                      *(res.setup or [])],
        }
        if res.cpus_per_task:
            params["cpus_per_task"] = res.cpus_per_task
        if res.gpus_per_node:
            params["gpus_per_node"] = res.gpus_per_node
        for key in ("partition", "account", "qos", "constraint", "gres"):
            if getattr(res, key):
                params[key] = getattr(res, key)
        if res.mem_gb:
            gb = float(res.mem_gb)
            params["mem"] = f"{int(gb)}GB" if gb == int(gb) else f"{int(gb * 1024)}MB"
        # sbatch passes only these names (never a key): not the submitting shell's environment
        extra = {**({"chdir": str(chdir)} if chdir else {}), **(res.additional or {}),
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



def submit(spec: JobSpec, prep: PreparedNode, launcher: str, slurm: SlurmConfig,
           folder: Path, python: str) -> SlurmJob:
    """Submit a prepared job with submitit; `folder` holds submitit's pickles and logs (a path
    ending in `%j`). Raises SubmitError (the worktree removed) if the cluster refuses it."""
    res = slurm_resources(slurm)
    local = launcher == "submitit-local"
    readable_by_job(spec.readonly)
    # the compute node sees the shared disk, not this machine's symlinks into it
    prep.worktree = prep.worktree.resolve()
    script = prep.run_dir / SCRIPT_NAME
    atomic_write_text(script, job_script(prep, spec.env, mem_limit_mb=spec.job.mem_limit_mb if local else 0,
                                         new_session=local, readonly=spec.readonly))
    folder = Path(folder)
    folder = folder.parent.resolve() / folder.name
    time_min = time_limit_min(spec.job.wall_clock_s, slurm.time_margin_min)
    comment = (f"tengen node {spec.node_id}: bash {script}\n"
               f"  = cd {prep.worktree} && {shlex.join(prep.command)}")
    try:
        ex = make_executor(launcher, folder, res, time_min, f"{res.name}-{spec.node_id}", comment,
                           python, chdir=prep.run_dir)
        import submitit
        sjob = ex.submit(submitit.helpers.CommandFunction(["bash", str(script)],
                                                          cwd=str(prep.worktree), verbose=False))
    except Exception as e:
        remove_worktree(prep.repo_root, prep.worktree)
        if isinstance(e, SubmitError):
            raise
        raise SubmitError(f"could not submit node {spec.node_id} ({launcher}): "
                          f"{type(e).__name__}: {e}") from e
    record = {"launcher": launcher, "cluster": SUBMITIT_CLUSTERS[launcher],
              "job_id": str(sjob.job_id), "folder": str(folder), "node_id": spec.node_id,
              "repo_root": str(prep.repo_root), "worktree": str(prep.worktree),
              "branch": prep.branch, "command": prep.command, "wall_clock_s": spec.job.wall_clock_s,
              "time_limit_min": time_min, "keep_worktree": spec.job.keep_worktrees,
              "submitted_at": time.time(), "resources": dataclasses.asdict(res)}
    atomic_write_text(prep.run_dir / RECORD_NAME, json.dumps(record, indent=1) + "\n")
    return SlurmJob(sjob, record, prep.run_dir, poll_s=slurm.poll_s,
                    rc_grace_s=slurm.rc_grace_s if not local else 2.0)
