"""Start a job the way the tests do: W/runs/<id> -> a JobSpec with the Workspace's paths -> jobs.start.

One helper, so each test reads as what it runs (repo, node, overrides, patch, run dir) while the
launch itself is the harness's only one (autoresearch/jobs)."""
from __future__ import annotations

from pathlib import Path

from autoresearch import jobs
from autoresearch.agent_config import NodeJobConfig
from experiment_tree.workspace import Workspace


def start_job(repo, node_id, overrides, patch, run_dir, wall_clock_s=60.0, mem_limit_mb=0,
              extra_env=None, *, launcher="local", slurm=None, folder=None, job_module=None,
              disk_limit_mb=0, sandbox="auto", **spec_fields) -> jobs.Job:
    """`run_dir` is W/runs/<id>: the worktree is W/worktrees/<id>, submitit's folder
    W/<slurm.folder>/%j, as `research run` would make them; no disk cap unless given.
    `spec_fields`: JobSpec's other fields (patch policy, engines, inputs, limits)."""
    ws = Workspace(Path(run_dir).parent.parent)
    job = NodeJobConfig(wall_clock_s=float(wall_clock_s), mem_limit_mb=int(mem_limit_mb),
                        disk_limit_mb=disk_limit_mb, sandbox=sandbox,
                        **({"module": job_module} if job_module else {}))
    spec = jobs.JobSpec(repo_root=repo, node_id=node_id, run_dir=run_dir,
                        worktree=ws.worktree(node_id), overrides=list(overrides), patch=patch,
                        job=job, env=dict(extra_env or {}), **spec_fields)
    if folder is None and launcher != "local":
        folder = ws.submitit_dir(slurm.folder if slurm else "submitit") / "%j"
    return jobs.start(spec, launcher, slurm=slurm, folder=folder)
