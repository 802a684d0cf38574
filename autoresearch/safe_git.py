"""Git as the harness runs it: a repository's own config never runs a command in the harness.

A node's job cannot write the main checkout's `.git` (the sandbox does not show it), but hooks
or an fsmonitor planted there by any other means would run inside `research run` at the next
`git worktree add` or `git commit`. So every git call of the harness goes through `git_argv`.
"""
from __future__ import annotations

GIT_SAFE: tuple[str, ...] = (
    "-c", "core.hooksPath=/dev/null",     # no hooks (post-checkout, pre-commit, ...)
    "-c", "core.fsmonitor=false",         # no fsmonitor command
    "-c", "core.sshCommand=false",        # no ssh command
    "-c", "protocol.ext.allow=never",     # no ext:: remote helpers
)


def git_argv(*args: str) -> list[str]:
    return ["git", *GIT_SAFE, *args]
