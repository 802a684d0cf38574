"""Health checks on what a node's job recorded: its self-play sample (`selfplay_sample.jsonl`,
contract in experiments/rundir.py) replayed with the referee's rules engine, and its metrics.

- value_targets: every value target is the outcome of its game for the player to move, the
  outcome being the Tromp-Taylor score of the replayed moves with the game's komi (or the
  resignation). A sign flip, a colour mix-up or a wrong komi in the learner shows here.
- policy_targets: every policy target sums to 1 and puts no mass on a move the rules refuse.
- komi_colour: the games were played with the run's komi, and the share of black wins over the
  job's self-play (metrics.jsonl) is not outside [lo, hi] beyond chance: an exact one-sided
  binomial test against the nearer edge at level `alpha`, so a run whose true share is inside
  the band is flagged with probability at most `alpha` (the false-alarm rate).
- throughput: the self-play simulations per second the job logged are within the range the
  config states for its device.

These run in the harness, with the harness's go_core/game (the referee's rules; a node cannot
patch it: autoresearch/patch_policy.py). A missing or malformed sample is a failed check: the
node's code writes it, so a node could remove it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from autoresearch.health import HealthFlag

TOLERANCE = 1e-3     # float32 targets written as JSON: sums and values within this are exact


def read_sample(run_dir: Path | str) -> tuple[list[dict], str | None]:
    """(games, why not): the sample's games, or the reason it cannot be used."""
    from experiments.rundir import SELFPLAY_SAMPLE
    path = Path(run_dir) / SELFPLAY_SAMPLE
    if not path.is_file() or path.is_symlink():
        return [], f"no {SELFPLAY_SAMPLE} in the run directory (the job must write it)"
    games = []
    for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        try:
            g = json.loads(line)
        except json.JSONDecodeError:
            return [], f"{SELFPLAY_SAMPLE} line {i} is not JSON"
        why = _malformed(g)
        if why:
            return [], f"{SELFPLAY_SAMPLE} line {i}: {why}"
        games.append(g)
    if not games:
        return [], f"{SELFPLAY_SAMPLE} holds no game"
    return games, None


def _malformed(g: Any) -> str | None:
    if not isinstance(g, dict):
        return "not an object"
    for key, kind in (("size", int), ("komi", (int, float)), ("moves", list), ("resigned", int),
                      ("value", list), ("policy", list)):
        if not isinstance(g.get(key), kind) or isinstance(g.get(key), bool):
            return f"'{key}' missing or not a {getattr(kind, '__name__', 'number')}"
    n = len(g["moves"]) + (1 if g["resigned"] else 0)
    if len(g["value"]) != n or len(g["policy"]) != n:
        return (f"{len(g['value'])} value and {len(g['policy'])} policy targets for {n} positions "
                f"(one per position)")
    if not 2 <= g["size"] <= 19 or g["resigned"] not in (0, 1, 2):
        return "size or resigned out of range"
    return None


def _replay(g: dict):
    """The referee's Board after each move: yields (board before the move, move or None)."""
    from go_core.game.board import Board
    board = Board(g["size"], float(g["komi"]))
    for m in g["moves"]:
        yield board, int(m)
        board.play(int(m))
    yield board, None


def _replayed(run_dir: Path | str, name: str) -> tuple[list[dict], list[list], HealthFlag | None]:
    """The run's sample games, each replayed by the referee's engine as [(board before the move,
    move), ..., (final board, None)]; or a failed flag: the sample is missing or malformed, or the
    referee refuses one of its moves."""
    from go_core.game.board import IllegalMoveError
    games, why = read_sample(run_dir)
    if why:
        return [], [], HealthFlag(name, False, why)
    out = []
    for g in games:
        try:
            out.append([(b.copy(), m) for b, m in _replay(g)])
        except IllegalMoveError as e:
            return [], [], HealthFlag(name, False, f"game {g.get('game')}: the referee refuses a move ({e})")
    return games, out, None


def value_targets(run_dir: Path | str) -> HealthFlag:
    from go_core.game.board import opponent
    name = "value_targets"
    games, replays, failed = _replayed(run_dir, name)
    if failed:
        return failed
    checked = 0
    for g, boards in zip(games, replays):
        final = boards[-1][0]
        if g["resigned"]:
            winner = opponent(g["resigned"])
        else:
            s = final.score()
            winner = 1 if s > 0 else 2 if s < 0 else 0
        positions = [b for b, _ in boards][: len(g["value"])]
        for i, (b, v) in enumerate(zip(positions, g["value"])):
            want = 0.0 if winner == 0 else (1.0 if b.to_play == winner else -1.0)
            if not isinstance(v, (int, float)) or abs(v - want) > TOLERANCE:
                score = "resigned" if g["resigned"] else f"Tromp-Taylor score {final.score():+.1f}"
                return HealthFlag(name, False,
                                  f"game {g.get('game')} position {i}: value target {v} but the "
                                  f"game's outcome for the player to move is {want:+.0f} ({score}, "
                                  f"komi {g['komi']})")
            checked += 1
    return HealthFlag(name, True, f"{checked} value targets of {len(games)} games match the "
                                  f"referee's Tromp-Taylor outcome")


def policy_targets(run_dir: Path | str) -> HealthFlag:
    name = "policy_targets"
    games, replays, failed = _replayed(run_dir, name)
    if failed:
        return failed
    checked = 0
    for g, steps in zip(games, replays):
        for i, target in enumerate(g["policy"]):
            if target is None:
                continue
            board = steps[i][0]
            legal = board.legal_mask()
            try:
                pairs = [(int(m), float(p)) for m, p in target]
            except (TypeError, ValueError):
                return HealthFlag(name, False, f"game {g.get('game')} position {i}: malformed policy")
            total = sum(p for _, p in pairs)
            bad = [m for m, p in pairs if p > 0 and not (0 <= m < len(legal) and legal[m])]
            if bad:
                return HealthFlag(name, False, f"game {g.get('game')} position {i}: policy mass on "
                                               f"move(s) {bad[:5]} the rules refuse")
            if any(p < 0 for _, p in pairs) or abs(total - 1.0) > TOLERANCE:
                return HealthFlag(name, False, f"game {g.get('game')} position {i}: policy target "
                                               f"sums to {total:.4f}, not 1")
            checked += 1
    if not checked:
        return HealthFlag(name, False, "the sample has no policy target to check")
    return HealthFlag(name, True, f"{checked} policy targets sum to 1 over legal moves only")


def binomial_tail(k: int, n: int, p: float, upper: bool) -> float:
    """P(X >= k) (upper) or P(X <= k) for X ~ Binomial(n, p), exactly."""
    ks = range(k, n + 1) if upper else range(0, k + 1)
    return min(1.0, sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in ks))


def komi_colour(run_dir: Path | str, komi: float, band: tuple[float, float],
                alpha: float) -> HealthFlag:
    from experiments.rundir import read_metrics
    name = "komi_colour"
    games, why = read_sample(run_dir)
    if why:
        return HealthFlag(name, False, why)
    wrong = [g for g in games if abs(float(g["komi"]) - komi) > 1e-9]
    if wrong:
        return HealthFlag(name, False, f"game {wrong[0].get('game')} was played with komi "
                                       f"{wrong[0]['komi']}; the run's komi is {komi}")
    n = black = 0
    for row in read_metrics(Path(run_dir)):
        g, share = row.get("games"), row.get("black_winrate")
        if isinstance(g, int) and isinstance(share, (int, float)) and g > 0:
            n += g
            black += round(share * g)
    if n == 0:
        return HealthFlag(name, None, "metrics.jsonl logs no games with black_winrate")
    lo, hi = band
    p_low = binomial_tail(black, n, lo, upper=False)
    p_high = binomial_tail(black, n, hi, upper=True)
    text = f"black won {black}/{n} self-play games with komi {komi}"
    if p_low < alpha or p_high < alpha:
        edge, pv = (lo, p_low) if p_low < p_high else (hi, p_high)
        return HealthFlag(name, False, f"{text}: outside [{lo}, {hi}] beyond chance (p = {pv:.2g} "
                                       f"against {edge}, false-alarm rate {alpha}); a colour or "
                                       f"komi bug in self-play?")
    return HealthFlag(name, True, f"{text}: consistent with [{lo}, {hi}] (level {alpha})")


def throughput(run_dir: Path | str, device: str, ranges: dict[str, list[float]]) -> HealthFlag:
    from experiments.rundir import read_metrics
    name = "throughput"
    kind = "cuda" if str(device).startswith("cuda") else str(device or "cpu").split(":")[0]
    if kind not in ranges:
        return HealthFlag(name, None, f"no expected range for device '{device}' in the config")
    rates = [r["sims_per_s"] for r in read_metrics(Path(run_dir))
             if isinstance(r.get("sims_per_s"), (int, float)) and r.get("games")]
    if not rates:
        return HealthFlag(name, False, "metrics.jsonl logs no self-play sims_per_s")
    lo, hi = ranges[kind]
    mean = sum(rates) / len(rates)
    text = (f"{mean:.0f} simulations/s on {kind} (mean of {len(rates)} iterations, range "
            f"{min(rates):.0f}-{max(rates):.0f}); expected {lo:g}-{hi:g}")
    return HealthFlag(name, lo <= mean <= hi, text)
