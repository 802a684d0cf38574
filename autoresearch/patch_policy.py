"""Which files a code patch may touch: the learner's side only (an ALLOW-list).

A node may change the learner -- net, features, search, self-play, training -- and nothing that
rates it, launches it or is imported before its code runs. Everything not allowed below is
refused with the reason, so a new kind of file is refused until someone decides it is safe:

    patch_errors(patch, repo_root)          # before anything is applied (the diff's own paths)
    changed_path_errors(changes, repo_root) # after applying: `git diff --name-status` of the commit

Besides the folder, a path is refused if Python would run it on its own (`sitecustomize.py`,
`usercustomize.py`, `*.pth`, `conftest.py`) or if a new module would shadow another one
(`go_core/learn/torch.py`, `numpy.py`...); symlinks and binary patches are refused too.
"""
from __future__ import annotations

import fnmatch
import posixpath
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from autoresearch.safe_git import git_argv

# The learner: what a node may change (DESIGN.md's table). Globs; `**` means anything below.
LEARNER_PATHS: tuple[str, ...] = (
    "go_core/learn/**",
    "experiments/train.py",
    "experiments/training_run.py",
    "conf/model/**",
    "conf/mcts/**",
    "conf/selfplay/**",
    "conf/train/**",
)
# Files Python or pytest execute by their name alone, wherever they are.
AUTORUN_NAMES: tuple[str, ...] = ("sitecustomize.py", "usercustomize.py", "conftest.py", "*.pth",
                                  "__editable__*", "*.so", "*.pyd")


def _match(path: str, pattern: str) -> bool:
    if pattern.endswith("/**"):
        return path.startswith(pattern[:-2])
    return fnmatch.fnmatchcase(path, pattern)


def normalise(path: str) -> str | None:
    """The repo-relative path, or None if it is absolute or climbs out (`..`)."""
    if not path or path.startswith("/") or "\\" in path or "\0" in path:
        return None
    norm = posixpath.normpath(path)
    if norm.startswith("../") or norm == ".." or norm == ".":
        return None
    return norm


def path_error(path: str, *, new: bool, repo_root: Path | None = None,
               allowed: tuple[str, ...] = LEARNER_PATHS) -> str | None:
    """Why a patch may not touch `path` (None: it may). `new`: the patch creates it."""
    norm = normalise(path)
    if norm is None:
        return f"{path}: not a path inside the repository"
    name = posixpath.basename(norm)
    if any(fnmatch.fnmatchcase(name, pat) for pat in AUTORUN_NAMES):
        return f"{norm}: Python or pytest would run this file by its name ({name})"
    if not any(_match(norm, pat) for pat in allowed):
        return (f"{norm}: outside the learner (a patch may change only "
                f"{', '.join(allowed)}; the rules, the referee, the harness and the tests are "
                f"fixed for every node)")
    if new and norm.endswith(".py"):
        shadow = shadowed_module(norm, repo_root)
        if shadow:
            return f"{norm}: a new module named like {shadow} would shadow it"
    return None


def shadowed_module(path: str, repo_root: Path | None = None) -> str | None:
    """The module a new file `path` would shadow, if any: a stdlib or installed top-level module,
    or one of the repository's top-level packages/modules, with the same name."""
    stem = posixpath.splitext(posixpath.basename(path))[0]
    if stem == "__init__":
        stem = posixpath.basename(posixpath.dirname(path))
    if stem in _top_level_modules() or (repo_root is not None and stem in _repo_top(str(repo_root))):
        return f"the module '{stem}'"
    return None


@lru_cache(maxsize=1)
def _top_level_modules() -> frozenset[str]:
    names = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
    try:
        from importlib.metadata import packages_distributions
        names |= set(packages_distributions())
    except Exception:
        pass
    return frozenset(names)


@lru_cache(maxsize=8)
def _repo_top(repo_root: str) -> frozenset[str]:
    cp = subprocess.run(git_argv("ls-files"), cwd=repo_root,
                        capture_output=True, text=True)
    tops = set()
    for line in cp.stdout.splitlines():
        first = line.split("/")[0]
        tops.add(first[:-3] if first.endswith(".py") else first)
    return frozenset(tops)


def patch_errors(patch: str, repo_root: Path | None = None,
                 allowed: tuple[str, ...] = LEARNER_PATHS) -> list[str]:
    """The reasons a unified diff may not be applied (checked before `git apply`)."""
    from autoresearch.jobs.protect import patch_paths
    errors: list[str] = []
    if "\0" in patch:
        errors.append("the patch contains a NUL byte")
    if re.search(r"^(GIT binary patch|Binary files .* differ)", patch, re.M):
        errors.append("binary patches are refused: a patch must be a readable text diff")
    if re.search(r"^(new file mode|new mode|old mode|deleted file mode) 120000", patch, re.M):
        errors.append("symlinks are refused: a patch may not create or change a symbolic link")
    new = _new_files(patch)
    paths = patch_paths(patch)
    if not paths and patch.strip():
        errors.append("the patch names no file (not a unified diff?)")
    for p in paths:
        why = path_error(p, new=p in new, repo_root=repo_root, allowed=allowed)
        if why:
            errors.append(why)
    return errors


def _new_files(patch: str) -> set[str]:
    """Files the patch creates: `--- /dev/null` then `+++ b/x`, and git's rename/copy targets."""
    out: set[str] = set()
    lines = patch.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("--- /dev/null") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            tok = lines[i + 1][4:].split("\t")[0].strip().strip('"')
            out.add(tok[2:] if tok.startswith("b/") else tok)
        elif line.startswith(("rename to ", "copy to ")):
            out.add(line.split(" ", 2)[2].strip())
    return out


def changed_path_errors(name_status: str, repo_root: Path | None = None,
                        allowed: tuple[str, ...] = LEARNER_PATHS) -> list[str]:
    """The same check on what a commit really changed (`git diff --name-status -M A B`)."""
    errors = []
    for line in name_status.splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        status = parts[0]
        for i, p in enumerate(parts[1:]):
            new = status.startswith("A") or (status[0] in "RC" and i == 1)
            why = path_error(p, new=new, repo_root=repo_root, allowed=allowed)
            if why:
                errors.append(why)
    return errors
