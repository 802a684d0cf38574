"""`Stopped`: a job was asked to stop. Its own module, so that the code a job calls (e.g.
`experiments.iteration_rating`) can match it by class: under `python -m experiments.train` a class
defined in train.py would live in `__main__`, a different class from `experiments.train.Stopped`.

A stop arrives as a signal (SIGTERM/SIGINT from outside, SIGALRM from the wall-clock safety limit)
whose handler raises `Stopped` wherever the main thread happens to be. Two helpers keep that from
turning a stop into a crash:
- `stops_deferred()`: a block that must not be cut (writing a checkpoint) holds the stop back; the
  handlers call `request_stop`, which, inside such a block, only notes the stop, and the block
  raises it as it ends. (Not a signal mask: the kernel hands a process-directed signal to any
  thread that does not block it, and torch's and the progress reporter's threads do not.)
- `stop_in(exc)`: a library that cleans up after the exception and fails doing so (torch.save's zip
  writer raises its own RuntimeError) hides the `Stopped` in the exception's context; this finds it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator


class Stopped(BaseException):
    """The job was asked to stop (SIGTERM/SIGINT) or ran past its wall-clock safety limit. A
    BaseException, like KeyboardInterrupt, so that no `except Exception` on the way swallows it."""


_deferring = 0                      # depth of nested stops_deferred blocks
_pending: Stopped | None = None     # the stop that came during one


def request_stop(message: str) -> None:
    """What a stop signal's handler calls: raise Stopped now, or at the end of the deferred block."""
    global _pending
    if _deferring:
        _pending = _pending or Stopped(message)
        return
    raise Stopped(message)


@contextlib.contextmanager
def stops_deferred() -> Iterator[None]:
    """A block that a stop must not cut; a stop requested meanwhile is raised as the block ends
    (when it ends by an exception of its own, that one goes on and the stop is dropped: the job
    ends either way, and no stale stop is left for a later block)."""
    global _deferring, _pending
    _deferring += 1
    stop = None
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring:
            stop, _pending = _pending, None
    if stop is not None:
        raise stop


def stop_in(exc: BaseException | None) -> Stopped | None:
    """The `Stopped` that `exc` is or that its chain of causes and contexts holds, else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Stopped):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
