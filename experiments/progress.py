"""Live progress of a training job: `progress.json` in its run directory (contract: rundir.py).

The job tells the reporter what changed (a phase, a game finished, an optimizer step); the
reporter writes at once on a phase change, and a small daemon thread rewrites the file every
`every_s` seconds in between, so that a long self-play round or training phase still shows a
fresh `elapsed_s` and `sims_per_s`. Nothing here changes what the job computes.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from experiments.rundir import write_progress

PROGRESS_EVERY_S = 2.0      # seconds between two writes of progress.json while nothing else changes
DEFAULT_TRAIN_SHARE = 0.3   # share of an iteration's time spent training, until one has been measured


class ProgressReporter:
    """Keeps the job's counters and writes them to `progress.json`."""

    def __init__(self, run_dir: Path, *, games_budget: int | None, steps_budget: int | None,
                 elapsed: Callable[[], float], every_s: float = PROGRESS_EVERY_S):
        self.run_dir = Path(run_dir)
        self.elapsed = elapsed
        self.every_s = every_s
        self.lock = threading.Lock()
        self.state = {"phase": "warm_start", "iteration": 0, "games_done": 0, "games_total": 0,
                      "games_budget": games_budget or None, "games": 0, "steps_done": 0,
                      "steps_budget": steps_budget or None, "sims_per_s": None}
        self.sims: Callable[[], int] | None = None   # the searcher's simulation counter, read by the thread
        self.sims0, self.t_selfplay = 0, 0.0
        self.iter_steps = (0, 0)                     # (done, planned) optimizer steps of this iteration
        self.train_share = DEFAULT_TRAIN_SHARE
        self.t_training, self.selfplay_s = 0.0, 0.0
        self.loop_t0: float | None = None            # when this life's self-play loop began...
        self.loop_work0 = 0.0                        # ...and the work (in games) done before it
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="progress", daemon=True)

    # -- what the job reports
    def start(self) -> None:
        self.write()
        self.thread.start()

    def phase(self, name: str, **fields) -> None:
        with self.lock:
            self.state.update(phase=name, **fields)
        self.write()

    def selfplay(self, iteration: int, games_total: int, sims: Callable[[], int]) -> None:
        if self.loop_t0 is None:
            self.loop_t0, self.loop_work0 = time.time(), float(self.state["games"])
        self.sims, self.sims0, self.t_selfplay = sims, sims(), time.time()
        self.phase("selfplay", iteration=iteration, games_done=0, games_total=games_total)

    def game_finished(self, games_done: int) -> None:
        with self.lock:
            self.state["games_done"] = games_done

    def training(self, games: int, steps_planned: int, selfplay_s: float) -> None:
        self.iter_steps = (0, steps_planned)
        self._sims_rate()
        self.sims = None
        self.t_training, self.selfplay_s = time.time(), selfplay_s
        self.phase("training", games=games, games_done=self.state["games_total"])

    def step_done(self, steps_done: int) -> None:
        with self.lock:
            self.state["steps_done"] = steps_done
            self.iter_steps = (self.iter_steps[0] + 1, self.iter_steps[1])

    def iteration_done(self) -> None:
        train_s = time.time() - self.t_training
        if train_s + self.selfplay_s > 0:
            self.train_share = train_s / (train_s + self.selfplay_s)
        self.iter_steps = (0, 0)

    def close(self, status: str) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        self.phase("done", status=status, eta_s=0.0)

    # -- writing
    def _sims_rate(self) -> None:
        sims = self.sims   # read once: the job may clear it between the test and the call
        if sims is not None:
            dt = time.time() - self.t_selfplay
            with self.lock:
                self.state["sims_per_s"] = (sims() - self.sims0) / dt if dt > 0 else None

    def _work_done(self) -> float:
        """Work done in games: finished iterations' games, plus this iteration's self-play games
        and training steps, weighted by the measured share of time each takes."""
        s = self.state
        if s["phase"] == "selfplay":
            return s["games"] + (1.0 - self.train_share) * s["games_done"]
        if s["phase"] == "training":
            done, planned = self.iter_steps
            g = s["games_total"]
            frac = done / planned if planned else 1.0
            return s["games"] - g + (1.0 - self.train_share) * g + self.train_share * g * frac
        return float(s["games"])

    def _eta(self) -> float | None:
        s = self.state
        if s["phase"] == "done":
            return 0.0
        if self.loop_t0 is None:
            return None
        if s["games_budget"]:
            done, budget = self._work_done(), float(s["games_budget"])
        elif s["steps_budget"]:
            done, budget = float(s["steps_done"]), float(s["steps_budget"])
        else:
            return None
        done_here = done - (self.loop_work0 if s["games_budget"] else 0.0)
        if done_here <= 0:
            return None
        return max(0.0, (time.time() - self.loop_t0) * (budget - done) / done_here)

    def write(self) -> None:
        self._sims_rate()
        with self.lock:
            record = dict(self.state)
            record["eta_s"] = record.get("eta_s") if record["phase"] == "done" else self._eta()
            record["elapsed_s"] = self.elapsed()
            record["t"] = time.time()
            write_progress(self.run_dir, record)

    def _beat(self) -> None:
        while not self.stop.wait(self.every_s):
            try:
                self.write()
            except OSError:
                pass   # a full disk or a removed run dir must not kill the job; the next beat retries
