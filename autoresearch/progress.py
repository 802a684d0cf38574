"""What `research run` shows while nodes run: a live line per running node, and one line per event.

The job writes `progress.json` in its run directory (contract: experiments/rundir.py): its phase
(warm start, self-play iteration k with games done of n, training, rating), elapsed time, an
estimate of what is left and sims/s. On a terminal the console keeps one line per running node at
the bottom of the screen, redrawn about once a second, with events (a node started, finished,
compared) printed above it. When the output is not a terminal (CI, a log file) it stays plain:
one line per event, and one line per phase change of a node instead of a redrawn line.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

from experiments.rundir import read_progress as _read

REDRAW_S = 1.0            # the live lines are redrawn at most this often


def read_progress(run_dir: Path | str | None) -> dict[str, Any] | None:
    """The job's progress.json (contract: experiments/rundir.py), or None while there is none."""
    if not run_dir:
        return None
    data = _read(Path(run_dir))
    return data if isinstance(data, dict) else None


def _clock(seconds: float | None) -> str:
    if seconds is None or not isinstance(seconds, (int, float)) or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def describe_phase(p: dict[str, Any]) -> str:
    """`self-play iteration 2: 14/32 games` and the like, from a progress.json."""
    phase = str(p.get("phase") or "starting")
    if phase == "selfplay":
        done, total = _num(p.get("games_done")), _num(p.get("games_total"))
        games = f": {done:.0f}/{total:.0f} games" if done is not None and total else ""
        return f"self-play iteration {p.get('iteration', '?')}{games}"
    if phase == "training":
        return f"training iteration {p.get('iteration', '?')}"
    if phase == "rating":
        done, total = _num(p.get("games_done")), _num(p.get("games_total"))
        return f"rating game {done:.0f} of {total:.0f}" if done is not None and total else "rating"
    return {"warm_start": "warm start", "done": "done"}.get(phase, phase)


def progress_line(node_id: int | str, p: dict[str, Any] | None, started_at: float | None,
                  now: float | None = None) -> str:
    """One running job's line; `node_id` a node's id, or a label such as "starting point"."""
    now = time.time() if now is None else now
    who = f"node {node_id}" if isinstance(node_id, int) else node_id
    elapsed = now - started_at if started_at else _num((p or {}).get("elapsed_s"))
    if p is None:
        return f"  {who}: starting  {_clock(elapsed)} elapsed"
    parts = [f"  {who}: {describe_phase(p)}", f"{_clock(elapsed)} elapsed"]
    eta = _num(p.get("eta_s"))
    if eta is not None:
        parts.append(f"~{_clock(eta)} left")
    sims = _num(p.get("sims_per_s"))
    if sims:
        parts.append(f"{sims:.0f} sims/s")
    games, budget = _num(p.get("games")), _num(p.get("games_budget"))
    if games is not None and budget:
        parts.append(f"{games:.0f}/{budget:.0f} games in all")
    return ", ".join(parts)


class Console:
    """Events as lines; running nodes as live lines on a terminal, phase changes as lines elsewhere."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self._shown = 0                   # live lines now on the screen
        self._last_draw = 0.0
        self._phases: dict[int, tuple] = {}

    def event(self, msg: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self._clear()
        self.stream.write(f"[{stamp}] {msg}\n")
        self.stream.flush()
        self._last_draw = 0.0             # redraw the live lines at the next update

    def update(self, nodes: list[tuple[int | str, Path | None, float | None]]) -> None:
        """`nodes`: (node id or label, run dir, started at) of each running job."""
        now = time.time()
        if self.live:
            if now - self._last_draw < REDRAW_S and self._shown == len(nodes):
                return
            lines = [progress_line(nid, read_progress(rd), t0, now) for nid, rd, t0 in nodes]
            self._clear()
            for line in lines:
                self.stream.write(line[: self._width()] + "\n")
            self._shown = len(lines)
            self._last_draw = now
            self.stream.flush()
            return
        for nid, rd, t0 in nodes:
            p = read_progress(rd)
            if p is None:
                continue
            key = (p.get("phase"), p.get("iteration"))
            if self._phases.get(nid) != key:
                self._phases[nid] = key
                self.event(progress_line(nid, p, t0, now).strip())

    def _clear(self) -> None:
        if self.live and self._shown:
            self.stream.write("\x1b[1A\x1b[2K" * self._shown)
            self._shown = 0

    @staticmethod
    def _width() -> int:
        import shutil
        return max(40, shutil.get_terminal_size((120, 20)).columns - 1)


def failure_line(error: str | None) -> str:
    """The exception's own message: the last non-empty line of a traceback (not its first)."""
    lines = [ln.strip() for ln in (error or "").strip().splitlines() if ln.strip()]
    if not lines:
        return "no error message"
    last = lines[-1]
    if last.startswith("Traceback") and len(lines) == 1:
        return "the job printed only the start of a traceback (see its log)"
    return last[:300]
