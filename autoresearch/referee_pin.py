"""The pinned referee: a read-only copy of what rates nodes, taken when a question starts.

A node may change the learner; nothing it does may change what rates it. So at question start
the referee's files are copied out of git from the question's start commit (not from the
working tree, and not from HEAD later: a job could move it) into
`WORKSPACE/referee/<question_id>/`, made read-only, with a manifest of sha256 hashes. Before
each use `verify_pin` re-hashes every file and raises on any change, addition or removal:

    pin = pin_referee(repo_root, commit, Workspace(w).referee_pin_dir(qid))
    verify_pin(pin)        # before every rating; the referee runs with cwd/PYTHONPATH = pin
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

from autoresearch.safe_git import git_argv

# What rates a node (DESIGN.md, "The referee"): rules, arena (engines, match, Elo, ladder,
# head-to-head, opening book, the KataGo net), the rating entry points and their configs.
REFEREE_PATHS: tuple[str, ...] = (
    "go_core/__init__.py",
    "go_core/game",
    "go_core/arena",
    "experiments/__init__.py",
    "experiments/rate_checkpoint.py",
    "experiments/rundir.py",
    "conf/rating",
    "conf/budget",
    "conf/board",
    "conf/rate_checkpoint.yaml",
)
MANIFEST = "MANIFEST.sha256.json"


class PinError(RuntimeError):
    """The pinned referee is missing or was changed after it was pinned."""


def _git(repo: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    cp = subprocess.run(git_argv(*args), cwd=repo,
                        capture_output=True, text=not binary)
    if cp.returncode != 0:
        err = cp.stderr if isinstance(cp.stderr, str) else cp.stderr.decode(errors="replace")
        raise PinError(f"git {' '.join(args[:3])} failed in {repo}: {err.strip()[:500]}")
    return cp


def pin_referee(repo_root: Path | str, commit: str, dest: Path | str,
                paths: tuple[str, ...] = REFEREE_PATHS) -> Path:
    """Copy `paths` at `commit` into `dest` (read-only) with a manifest; return `dest`.

    Idempotent: if `dest` already holds a valid pin of the same commit it is verified and kept
    (a resumed question keeps its referee)."""
    repo_root, dest = Path(repo_root), Path(dest)
    commit = _git(repo_root, "rev-parse", "--verify", f"{commit}^{{commit}}").stdout.strip()
    if (dest / MANIFEST).exists():
        manifest = verify_pin(dest)
        if manifest["commit"] != commit:
            raise PinError(f"{dest} holds the referee of commit {manifest['commit'][:12]}, not "
                           f"{commit[:12]}: a question keeps the referee it started with")
        return dest
    listed = _git(repo_root, "ls-tree", "-r", "--name-only", commit, "--", *paths).stdout.split("\n")
    present = [p for p in paths if any(f == p or f.startswith(p + "/") for f in listed if f)]
    if not present:
        raise PinError(f"none of the referee's paths {paths} exist at commit {commit[:12]}")
    tar = _git(repo_root, "archive", "--format=tar", commit, "--", *present, binary=True).stdout
    tmp = dest.with_name(dest.name + ".partial")
    if tmp.exists():
        _make_writable(tmp)
        import shutil
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    files: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        for m in tf.getmembers():
            if m.issym() or m.islnk():
                raise PinError(f"the referee may not contain links: {m.name}")
            if m.isfile():
                data = tf.extractfile(m).read()
                target = tmp / m.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                files[m.name] = hashlib.sha256(data).hexdigest()
    (tmp / MANIFEST).write_text(json.dumps({"commit": commit, "paths": list(present),
                                            "files": files}, indent=1, sort_keys=True))
    _make_readonly(tmp)
    os.replace(tmp, dest)
    return dest


def verify_pin(pin: Path | str) -> dict:
    """Re-hash the pin; raise PinError naming every changed, added or removed file."""
    pin = Path(pin)
    try:
        manifest = json.loads((pin / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise PinError(f"no readable referee manifest in {pin} ({e}): pin it again "
                       f"(autoresearch.referee_pin.pin_referee)") from e
    expected: dict[str, str] = manifest["files"]
    seen: dict[str, str] = {}
    for f in sorted(pin.rglob("*")):
        rel = f.relative_to(pin).as_posix()
        if rel == MANIFEST or f.is_dir():
            continue
        seen[rel] = hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else "not a file"
    changed = sorted(k for k in expected if k in seen and seen[k] != expected[k])
    added = sorted(set(seen) - set(expected))
    removed = sorted(set(expected) - set(seen))
    if changed or added or removed:
        parts = [f"{label}: {', '.join(v[:10])}" for label, v in
                 (("changed", changed), ("added", added), ("removed", removed)) if v]
        raise PinError(f"the pinned referee in {pin} was modified ({'; '.join(parts)}); "
                       f"no node can be rated with it -- start a new question")
    return manifest


def changed_vs_pin(pin: Path | str, tree: Path | str) -> list[str]:
    """Referee files of `tree` (a node's worktree) that differ from the pin (or are missing)."""
    manifest = verify_pin(pin)
    out = []
    tree = Path(tree)
    for rel, digest in manifest["files"].items():
        f = tree / rel
        if not f.is_file() or f.is_symlink() or hashlib.sha256(f.read_bytes()).hexdigest() != digest:
            out.append(rel)
    for top in manifest["paths"]:
        base = tree / top
        if base.is_dir():
            for f in base.rglob("*"):
                rel = f.relative_to(tree).as_posix()
                if (f.is_file() or f.is_symlink()) and rel not in manifest["files"] \
                        and "__pycache__" not in rel:
                    out.append(rel)
    return sorted(set(out))


def _make_readonly(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        os.chmod(dirpath, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP
                 | stat.S_IROTH | stat.S_IXOTH)


def _make_writable(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
