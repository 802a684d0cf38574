"""`Stopped`: a job was asked to stop. Its own module, so that the code a job calls (e.g.
`experiments.iteration_rating`) can match it by class: under `python -m experiments.train` a class
defined in train.py would live in `__main__`, a different class from `experiments.train.Stopped`."""
from __future__ import annotations


class Stopped(BaseException):
    """The job was asked to stop (SIGTERM/SIGINT) or ran past its wall-clock safety limit. A
    BaseException, like KeyboardInterrupt, so that no `except Exception` on the way swallows it."""
