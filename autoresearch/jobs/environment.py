"""A job's environment and limits: an allow-listed environment, rlimits, its disk use."""
from __future__ import annotations

import os
import resource
from pathlib import Path

from autoresearch import bwrap


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
    for name, value in bwrap.ENV_DEFAULTS.items():   # (a value of the harness's own wins)
        env.setdefault(name, value)
    return env


def rlimits(mem_limit_mb: int, limits: bwrap.Limits | None = None):
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

