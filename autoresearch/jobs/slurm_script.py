"""`job.sh`: a cluster job's command on the compute node, with the environment changes and the
sandbox a local job gets (environment.job_env, bwrap), and what sbatch may pass on.

On the compute node `job.sh` removes API keys from the environment, prepends the worktree to
PYTHONPATH, exports HYDRA_FULL_ERROR and the caller's extra variables, writes `job.started`,
runs the command inside bubblewrap (where it can run there) with stdout and stderr to `job.log`,
and writes its exit code to `job.rc`.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path

from autoresearch import bwrap
from autoresearch.jobs.prepare import PreparedNode
from autoresearch.jobs.spec import LOG_NAME, PID_NAME, RC_NAME, SCRIPT_NAME, STARTED_NAME


def job_script(prep: PreparedNode, extra_env: dict[str, str] | None, *,
               mem_limit_mb: int = 0, new_session: bool = False,
               readonly: tuple[Path | str, ...] = ()) -> str:
    """`job.sh`: the node's command with the environment changes environment.job_env makes locally;
    `readonly`: more paths the sandboxed job may read (the question's starting checkpoint)."""
    run_dir, wt = prep.run_dir, prep.worktree
    q = shlex.quote
    lines = [
        "#!/bin/bash",
        f"# Tengen node {prep.node_id}: written by autoresearch/jobs/slurm_script.py, run on the",
        "# cluster by submitit (CommandFunction([\"bash\", this file])). Run it by hand to",
        "# reproduce the node.",
        "# a run must never reach the LLM: the command gets an ALLOW-listed environment only",
        "# (autoresearch/bwrap.py ENV_ALLOW), never a key, token, password or secret",
        "# SLURM's time warning (sbatch --signal=USR2@90) reaches every process of the step; only",
        "# submitit's handler may act on it (it ends the job as timed out). Unignored, it killed this",
        "# script first and the node was a crash with no reason (seen on a real SLURM).",
        "trap '' USR2",
    ]
    keep = [n for n in bwrap.ENV_ALLOW if n not in ("PYTHONPATH",) and not bwrap.is_secret_env(n)]
    env_words = [f"{n}={q(v)}" for n, v in bwrap.ENV_DEFAULTS.items()]   # overridden by the next words when set
    env_words += [f'${{{n}+"{n}=${n}"}}' for n in keep]
    env_words += [f"PYTHONPATH={q(str(wt))}", "HYDRA_FULL_ERROR=1", 'HOME="$HOME"']
    for k, v in sorted((extra_env or {}).items()):
        if bwrap.is_allowed_env(k):
            env_words.append(f"{k}={q(str(v))}")
    lines.append("JOB_ENV=(" + " ".join(env_words) + ")")
    # the same sandbox as a local node (autoresearch/bwrap.py), as an ordinary user on the
    # compute node; where bubblewrap cannot run there the node runs unsandboxed, and says so
    box = bwrap.sandboxed_argv([], writable=[wt, run_dir], readonly=readonly, cwd=wt, privileged=False,
                               clear_env=False, limits=bwrap.Limits(mem_mb=0),
                               protect=[run_dir / SCRIPT_NAME, run_dir / LOG_NAME])
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
    log, cmd = q(str(run_dir / LOG_NAME)), shlex.join(prep.command)
    run = 'env -i "${JOB_ENV[@]}" "${BOX[@]}" ' + cmd
    lines += [
        f'echo "$(date +%s) $(hostname)" > {q(str(run_dir / STARTED_NAME))}',
        f'{{ echo "# worktree {wt} on branch {prep.branch}, job ${{SLURM_JOB_ID:-local}} on $(hostname)"; '
        f'echo "# sandbox: $SANDBOX"; echo {q("$ " + cmd)}; }} > {log}',
        f"{'setsid ' if new_session else ''}{run} >> {log} 2>&1 < /dev/null &",
        "pid=$!",
        f'echo "$pid $(date +%s) $(hostname)" > {q(str(run_dir / PID_NAME))}',
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



def slurm_export() -> str:
    """sbatch --export: an explicit allow-list of variable names (their values are this
    machine's), so a key in the submitting shell never reaches the job or its batch script."""
    names = [n for n in bwrap.ENV_ALLOW if n in os.environ and bwrap.is_allowed_env(n)]
    names += sorted(n for n in os.environ if bwrap.is_allowed_env(n) and n not in names)
    return ",".join(["HOME", "USER", "LOGNAME", *names])

