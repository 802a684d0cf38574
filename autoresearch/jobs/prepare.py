"""Everything before a launch, shared by every launcher: the run directory, the worktree, the
patch checked and committed, the command."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from autoresearch import patch_policy
from autoresearch.jobs.protect import patch_sha256, protected_hashes, protected_in_patch
from autoresearch.jobs.spec import LOG_NAME, STALE_JOB_FILES, JobSpec
from autoresearch.jobs.status import JobResult
from autoresearch.jobs.worktrees import git, make_worktree, remove_worktree, repo_toplevel
from experiments.rundir import atomic_write_text, write_summary


@dataclass
class PreparedNode:
    """A node ready to run: its worktree (patch applied and committed) and its command."""
    repo_root: Path
    node_id: int | str
    run_dir: Path
    worktree: Path
    branch: str
    command: list[str]                              # python -m MODULE <overrides> hydra.run.dir=


def prepare(spec: JobSpec, python: str) -> PreparedNode | JobResult:
    """The run directory (stale outputs removed), the worktree on branch `<prefix><id>` from
    HEAD, the patch checked and committed, and the command run by `python`. A patch that is
    refused or does not apply gives the finished JobResult (`refused` / `invalid`) instead, its
    summary.json written: the entry point hands it back as an already-finished job.

    A patch may touch only `spec.allowed` (patch_policy: the learner's side), checked on the diff
    and again on what the node's commit really changed (`git diff --name-status` from the start
    commit); with `spec.referee_pin`, the worktree's referee files are compared with the pinned
    copy's hashes (not with HEAD, which a job could move).
    """
    node_id, patch, protected, allowed = spec.node_id, spec.patch, spec.protected, spec.allowed
    repo_root = repo_toplevel(Path(spec.repo_root))
    run_dir = Path(spec.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("summary.json", LOG_NAME, *STALE_JOB_FILES):
        (run_dir / stale).unlink(missing_ok=True)
    branch = f"{spec.branch_prefix}{node_id}"

    def finished(status: str, error: str, log_tail: str = "") -> JobResult:
        summary = write_summary(run_dir, "invalid" if status == "refused" else status,
                                error=error, git={"commit": None, "branch": branch,
                                                  "patch_sha256": patch_sha256(patch)},
                                refused=(status == "refused"))
        atomic_write_text(run_dir / LOG_NAME, log_tail or error)
        return JobResult(status=status, summary=summary, error=error, log_tail=log_tail or error,
                         branch=branch)

    if patch and patch.strip():
        hit = protected_in_patch(patch, protected)
        if hit:
            return finished("refused", "patch touches protected files (rules, scoring, rating "
                            f"or the ladder may not be changed by a run): {', '.join(hit)}")
        why = patch_policy.patch_errors(patch, repo_root, allowed)
        if why:
            return finished("refused", "patch refused: " + "; ".join(why))

    worktree, branch = make_worktree(repo_root, Path(spec.worktree), branch)
    try:
        if patch and patch.strip():
            before = protected_hashes(worktree, protected)
            text = patch if patch.endswith("\n") else patch + "\n"
            check = git(worktree, "apply", "--check", "-", input=text, check=False)
            if check.returncode != 0:
                remove_worktree(repo_root, worktree)
                return finished("invalid", "patch does not apply (git apply --check): "
                                + check.stderr.strip()[:1000], check.stderr)
            git(worktree, "apply", "-", input=text)
            after = protected_hashes(worktree, protected)
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            if changed:
                remove_worktree(repo_root, worktree)
                return finished("refused", "patch changed protected files (hash check after "
                                f"applying): {', '.join(changed)}")
            git(worktree, "add", "-A")
            git(worktree, "-c", "user.name=tengen", "-c", "user.email=tengen@localhost",
                "commit", "-q", "--no-verify", "--allow-empty", "-m",
                spec.commit_message or f"node {node_id}")
            names = git(worktree, "diff", "--name-status", "--no-renames", "HEAD~1", "HEAD",
                        check=False).stdout
            why = patch_policy.changed_path_errors(names, repo_root, allowed)
            types = git(worktree, "diff", "--raw", "HEAD~1", "HEAD", check=False).stdout
            if re.search(r"^:\d+ 120000 ", types, re.M):
                why.append("the commit creates a symbolic link")
            if why:
                remove_worktree(repo_root, worktree)
                return finished("refused", "patch refused after applying (what the commit "
                                "changed): " + "; ".join(why))
        if spec.referee_pin is not None:
            from autoresearch.referee_pin import changed_vs_pin
            moved = changed_vs_pin(spec.referee_pin, worktree)
            if moved:
                remove_worktree(repo_root, worktree)
                return finished("refused", "the worktree's referee files differ from the pinned "
                                f"referee: {', '.join(moved[:10])}")
    except Exception:
        remove_worktree(repo_root, worktree)
        raise
    cmd = [python, "-m", spec.job.module, *spec.overrides, f"hydra.run.dir={run_dir}"]
    return PreparedNode(repo_root=repo_root, node_id=node_id, run_dir=run_dir, worktree=worktree,
                        branch=branch, command=cmd)
