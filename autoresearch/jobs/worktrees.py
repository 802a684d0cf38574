"""Git worktrees: every node runs in its own worktree, on its own branch, from HEAD.

Every git call of the harness runs with hooks and fsmonitor disabled (autoresearch/safe_git.py);
`git worktree` changes are serialised per repository (worktree_lock).
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

from autoresearch.jobs.spec import SandboxError
from autoresearch.safe_git import GIT_SAFE


def git(cwd: Path, *args: str, check: bool = True, input: str | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess:
    try:
        cp = subprocess.run(["git", *GIT_SAFE, *args], cwd=cwd, capture_output=True, text=True,
                            input=input, timeout=timeout)
    except FileNotFoundError as e:
        raise SandboxError("git is not installed: install it (apt-get install git)") from e
    if check and cp.returncode != 0:
        raise SandboxError(f"git {' '.join(args)} failed in {cwd}: {cp.stderr.strip()}")
    return cp


def repo_toplevel(path: Path) -> Path:
    cp = git(Path(path), "rev-parse", "--show-toplevel", check=False)
    if cp.returncode != 0:
        raise SandboxError(f"{path} is not inside a git repository; the sandbox makes a worktree "
                           f"per node from HEAD, so run from a clone of the project")
    return Path(cp.stdout.strip())


def checked_out_branches(repo_root: Path) -> dict[str, Path]:
    """branch name -> the worktree that has it checked out."""
    cp = git(repo_root, "worktree", "list", "--porcelain", check=False)
    out: dict[str, Path] = {}
    path = None
    for line in cp.stdout.splitlines():
        if line.startswith("worktree "):
            path = Path(line[len("worktree "):])
        elif line.startswith("branch refs/heads/") and path is not None:
            out[line[len("branch refs/heads/"):]] = path
    return out


def make_worktree(repo_root: Path, path: Path, branch: str) -> tuple[Path, str]:
    """A fresh worktree at `path` on `branch`, reset to the repo's HEAD (replacing leftovers).

    If `branch` is checked out in another worktree (another workspace researching the same
    repository runs a node with the same id), the branch is `<branch>-<tag>` instead, the tag
    naming this worktree's folder. Returns the worktree and the branch used.
    """
    path = Path(path)
    if path.exists():
        remove_worktree(repo_root, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with worktree_lock(repo_root):
        git(repo_root, "worktree", "prune", check=False)
        busy = checked_out_branches(repo_root)
        if branch in busy and busy[branch].resolve() != path.resolve():
            branch = f"{branch}-{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"
        git(repo_root, "worktree", "add", "--force", "-B", branch, str(path), "HEAD")
    return path, branch


def remove_worktree(repo_root: Path, path: Path) -> None:
    """Remove the worktree; its branch (with the node's commit) stays."""
    with worktree_lock(repo_root):
        git(repo_root, "worktree", "remove", "--force", str(path), check=False)
        if Path(path).exists():
            shutil.rmtree(path, ignore_errors=True)
        git(repo_root, "worktree", "prune", check=False)


@contextmanager
def worktree_lock(repo_root: Path):
    """One `git worktree` change at a time per repository, across processes: sweep workers are
    processes, and a `worktree prune` or `add` racing another `add` fails it ("failed to read
    .git/worktrees/N/commondir", seen with two SLURM sweep workers)."""
    import fcntl

    git_dir = Path(repo_root) / ".git"
    if not git_dir.is_dir():          # the repository is itself a worktree: no shared lock file
        yield
        return
    with open(git_dir / "tengen-worktrees.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

