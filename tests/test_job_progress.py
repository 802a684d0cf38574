"""Live progress (experiments/progress.py): progress.json follows its contract while a job runs."""
import json
import time

import pytest

from experiments.progress import ProgressReporter
from experiments.rundir import PHASES, read_progress, write_progress


def test_progress_is_rewritten_every_few_seconds_and_at_each_phase(tmp_path):
    sims = [0]
    p = ProgressReporter(tmp_path, games_budget=8, steps_budget=None, elapsed=lambda: 1.0, every_s=0.05)
    p.start()
    assert read_progress(tmp_path)["phase"] == "warm_start" and read_progress(tmp_path)["eta_s"] is None
    p.selfplay(1, 4, lambda: sims[0])
    first = read_progress(tmp_path)
    assert first["phase"] == "selfplay" and first["iteration"] == 1 and first["games_total"] == 4
    sims[0] = 500
    p.game_finished(2)
    deadline = time.time() + 10
    while read_progress(tmp_path)["games_done"] != 2 and time.time() < deadline:   # the heartbeat writes it
        time.sleep(0.02)
    now = read_progress(tmp_path)
    assert now["games_done"] == 2 and now["t"] > first["t"] and now["sims_per_s"] > 0
    assert now["eta_s"] > 0                            # 2 of 8 games done: work is left
    p.training(games=4, steps_planned=3, selfplay_s=1.0)
    for k in (1, 2, 3):
        p.step_done(k)
    p.iteration_done()
    p.close("ok")
    end = read_progress(tmp_path)
    assert end["phase"] == "done" and end["status"] == "ok" and end["steps_done"] == 3 and end["eta_s"] == 0.0
    assert not p.thread.is_alive()
    assert not [f for f in tmp_path.iterdir() if f.name != "progress.json"]   # no temp file left behind


def test_progress_contract_refuses_an_unknown_phase(tmp_path):
    assert "done" in PHASES
    with pytest.raises(ValueError, match="phase"):
        write_progress(tmp_path, {"phase": "thinking"})
    assert read_progress(tmp_path) is None
    (tmp_path / "progress.json").write_text("{half")
    assert read_progress(tmp_path) is None
