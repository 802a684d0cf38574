"""Patch protection: what scores a run must not be editable by the run.

A patch that touches the rules, the scoring, the rating or the ladder is refused before
anything runs, and the protected files are hash-checked in the worktree after the patch is
applied (karpathy/autoresearch's line between `train.py` and `prepare.py`). The learner-side
allow-list is autoresearch/patch_policy.py; this is the deny-list both checks share.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import shlex
from pathlib import Path

# Rules, scoring, rating and the ladder: what scores a run must not be editable by the run.
# The one list; `git apply` paths and worktree hashes are both checked against it.
PROTECTED_PATTERNS: tuple[str, ...] = (
    "go_core/game/board.py",
    "go_core/game/reference_board.py",
    "go_core/arena/match.py",
    "go_core/arena/elo.py",
    "go_core/arena/stats.py",
    "go_core/arena/rungs.py",
    "go_core/arena/calibration.py",
    "go_core/arena/rating_walk.py",
    "go_core/arena/seats.py",
    "experiments/rate_checkpoint.py",
    "experiments/rundir.py",
    "conf/rating/**",
)


def patch_paths(patch: str) -> list[str]:
    """Every file a unified diff touches (old and new names, so a rename counts twice)."""
    paths: set[str] = set()
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            for tok in shlex.split(line[len("diff --git "):], posix=True)[:2]:
                paths.add(_strip_prefix(tok))
        elif line.startswith(("--- ", "+++ ")):
            tok = line[4:].split("\t")[0].strip()
            if tok != "/dev/null":
                paths.add(_strip_prefix(tok))
        elif line.startswith(("rename from ", "rename to ", "copy from ", "copy to ")):
            paths.add(line.split(" ", 2)[2].strip())
    return sorted(p for p in paths if p)


def _strip_prefix(tok: str) -> str:
    tok = tok.strip().strip('"')
    return tok[2:] if tok[:2] in ("a/", "b/") else tok


def is_protected(path: str, patterns: tuple[str, ...] = PROTECTED_PATTERNS) -> bool:
    path = os.path.normpath(path).lstrip("./")
    for pat in patterns:
        if pat.endswith("/**"):
            if path == pat[:-3] or path.startswith(pat[:-2]):
                return True
        elif fnmatch.fnmatchcase(path, pat):
            return True
    return False


def protected_in_patch(patch: str, patterns: tuple[str, ...] = PROTECTED_PATTERNS) -> list[str]:
    return [p for p in patch_paths(patch) if is_protected(p, patterns)]


def patch_sha256(patch: str | None) -> str | None:
    return hashlib.sha256(patch.encode()).hexdigest() if patch and patch.strip() else None


def protected_hashes(root: Path, patterns: tuple[str, ...] = PROTECTED_PATTERNS) -> dict[str, str]:
    """sha256 of every file under `root` matching the protected patterns (absent files omitted)."""
    out: dict[str, str] = {}
    root = Path(root)
    for pat in patterns:
        base = pat[:-3] if pat.endswith("/**") else None
        files = sorted((root / base).rglob("*")) if base else [root / pat]
        for f in files:
            if f.is_file():
                out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out

