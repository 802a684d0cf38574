"""A stop (SIGTERM/SIGINT, or SIGALRM from the wall-clock safety limit) ends a training job as
`timeout`, wherever it lands: never as a `crash`, never with a half-written checkpoint.

CI once saw the safety limit fire inside torch.save: the zip writer's clean-up raised its own
RuntimeError over the Stopped, and the job was recorded as a crash."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from experiments.stop import Stopped, request_stop, stop_in, stops_deferred
from tests.test_train_job import MICRO as TRAIN_MICRO

ROOT = Path(__file__).resolve().parents[1]
# the micro job of test_train_job, with the safety limit armed (it is off there)
MICRO = [o for o in TRAIN_MICRO if not o.startswith("budget.wall_clock_s=")] + ["tracking=disabled"]


def _stop(signum, frame):
    request_stop(f"signal {signum}")


def test_a_stop_signal_waits_for_the_end_of_a_deferred_block():
    old = signal.signal(signal.SIGALRM, _stop)
    try:
        done = []
        with pytest.raises(Stopped):
            with stops_deferred():
                os.kill(os.getpid(), signal.SIGALRM)
                for i in range(10_000):    # many bytecodes: the handler would have run by now
                    pass
                done.append(i)
        assert done == [9999], "the block was cut by the signal"
    finally:
        signal.signal(signal.SIGALRM, old)
    with pytest.raises(Stopped):      # outside a deferred block a stop is raised at once
        request_stop("now")
    with pytest.raises(OSError):      # a block that fails by itself: its error goes on ...
        with stops_deferred():
            request_stop("during a failing write")
            raise OSError("disk full")
    with stops_deferred():            # ... and leaves no stale stop behind
        pass


def test_a_stop_hidden_behind_a_clean_up_error_is_found():
    try:
        try:
            raise Stopped("wall-clock safety limit")
        except BaseException:
            raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos")
    except RuntimeError as e:
        hidden = e
    assert isinstance(stop_in(hidden), Stopped) and str(stop_in(hidden)) == "wall-clock safety limit"
    assert stop_in(RuntimeError("a real crash")) is None
    assert stop_in(None) is None


def _compose(*overrides: str):
    from hydra import compose, initialize_config_dir
    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        return compose("config", overrides=list(overrides))


def test_the_safety_limit_firing_inside_torch_save_is_a_timeout_with_a_whole_checkpoint(tmp_path, monkeypatch):
    """The alarm goes off in the middle of the first checkpoint write, and torch.save (like its zip
    writer) answers an exception with a RuntimeError of its own."""
    from experiments import train
    from experiments.rundir import read_summary
    from go_core.learn.net import load_checkpoint

    real_save = torch.save
    fired = []

    def save(obj, f, *a, **k):
        try:
            if not fired:
                fired.append(True)
                os.kill(os.getpid(), signal.SIGALRM)
            return real_save(obj, f, *a, **k)
        except BaseException:
            raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos")

    monkeypatch.setattr(torch, "save", save)
    cfg = _compose(*MICRO, "budget.wall_clock_s=3600")   # arms the SIGALRM handler of the limit
    run = tmp_path / "run"
    code = train.run(cfg, run)
    summary = read_summary(run)
    assert fired, "no checkpoint was written"
    assert (code, summary["status"]) == (124, "timeout"), summary.get("error")
    assert "wall-clock safety limit" in summary["error"]
    net, meta = load_checkpoint(run / "checkpoints" / "latest.pt")   # whole, and resumable
    assert meta["iteration"] >= 1 and "optimizer" in meta
    assert signal.getsignal(signal.SIGALRM) is not None
