"""A tiny git repository with a fake training job (tests/fake_project/), for sandbox and loop tests."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

FAKE_PROJECT = Path(__file__).parent / "fake_project"
JOB_MODULE = "fakejob"


def make_fake_repo(dest: Path) -> Path:
    """Copy the fake project to `dest`, `git init` and commit it; return the repo path."""
    shutil.copytree(FAKE_PROJECT, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "fake project"]):
        subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True)
    return dest


def behaviour_patch(behaviour: str = "ok", bonus: float = 0.0) -> str:
    """A unified diff that changes the fake job's behaviour (what a code proposal would be)."""
    return ("diff --git a/go_core/learn/fake_behaviour.py b/go_core/learn/fake_behaviour.py\n"
            "--- a/go_core/learn/fake_behaviour.py\n+++ b/go_core/learn/fake_behaviour.py\n"
            "@@ -1,3 +1,3 @@\n"
            " # What a code patch edits in the fake project: the job's behaviour and a flat Elo bonus.\n"
            f"-BEHAVIOUR = \"ok\"\n-ELO_BONUS = 0.0\n+BEHAVIOUR = \"{behaviour}\"\n+ELO_BONUS = {bonus}\n")


PROTECTED_PATCH = ("diff --git a/go_core/game/board.py b/go_core/game/board.py\n"
                   "--- a/go_core/game/board.py\n+++ b/go_core/game/board.py\n"
                   "@@ -1,2 +1,2 @@\n \"\"\"Protected: the rules.\"\"\"\n"
                   "-RULES = \"tromp-taylor\"\n+RULES = \"anything-goes\"\n")


def code_patch(repo: Path, code: str) -> str:
    """A patch that appends `code` to the fake learner module (run when the job imports it),
    made with `git diff` so it applies to `repo`'s HEAD."""
    path = Path(repo) / "go_core/learn/fake_behaviour.py"
    old = path.read_text()
    path.write_text(old + "\n" + code.rstrip() + "\n")
    diff = subprocess.run(["git", "diff"], cwd=repo, capture_output=True, text=True).stdout
    path.write_text(old)
    return diff
