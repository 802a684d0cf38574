"""The reference ladder's rungs: what each reference player is, and the command line that starts it.

A *rung* is a reference player: `random` (Elo 0 by definition), GNU Go at a level, KataGo with a
net and a visit count (resignation off, so dead stones are played out under Tromp-Taylor), any
GTP command, or a checkpoint of ours (policy or MCTS). Rungs are defined in `conf/rating/ladder/`;
`RatingConfig` is the schema of the whole `rating` group (the rungs and how a checkpoint is rated).

Their Elo values are measured by `go_core.arena.calibration`; a candidate is rated against them by
`go_core.arena.rating_walk`.
"""
from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from go_core.arena import engines
from go_core.arena.match import MatchConfig, PlayerSpec

RUNG_KINDS = ("random", "gnugo", "katago", "checkpoint", "gtp")


@dataclass
class RungConfig:
    """One reference player of the ladder."""
    name: str                           # unique label, e.g. "gnugo-L10" or "katago-b6c96-v32"
    kind: str                           # random | gnugo | katago | checkpoint | gtp
    level: int = 10                     # GNU Go level (0..10)
    visits: int = 1                     # KataGo visits per move, or MCTS visits of a checkpoint
    model: str | None = None            # KataGo net (.bin.gz); None: $KATAGO_MODEL or the shipped b6c96 net
    checkpoint: str | None = None       # a checkpoint of ours (kind checkpoint)
    player: str = "mcts"                # policy | mcts: how a checkpoint plays
    argv: list[str] | None = None       # kind gtp: any GTP engine's command line
    random_move_prob: float = 0.0       # play a random move instead with this probability (bridge rungs)
    elo_default: float | None = None    # Elo used when this machine has no calibration (from the dev machine)


@dataclass
class RatingConfig:
    """How a checkpoint is rated (the `rating` config group)."""
    rungs: list[RungConfig] = field(default_factory=list)  # the ladder, weakest first
    reference: str = "katago-b6c96-v1"  # rung that gives the headline winrate_vs_ref
    games_vs_reference: int = 4         # games against the reference (colours alternate; even)
    games_per_rung: int = 2             # games per adaptive step against other rungs (even)
    max_rungs: int = 3                  # rungs played in all, the reference included
    start: str = "middle"               # first rung of the adaptive walk: middle | reference
    candidate_player: str = "mcts"      # policy | mcts: how the checkpoint plays
    candidate_visits: int = 16          # MCTS visits per move of the candidate
    move_time_s: float = 30.0           # per-move limit (an engine slower than this loses that game)
    start_timeout_s: float = 300.0      # first answer of a fresh engine (KataGo tunes OpenCL once)
    max_moves_factor: float = 3.0       # move cap = factor * size^2 plies
    random_opening_moves: int = 2       # random plies opening each pair of games
    workers: int = 2                    # games at once
    calibration_games: int = 20         # games per neighbouring pair in `research ladder calibrate`
    calibration_skip_pairs: bool = True # also pair rungs two apart (ties the chain together)
    prior_draws: float = 1.0            # virtual draws per pair in the Elo fit (finite under blowouts)
    cache_path: str | None = None       # calibration cache; None: ~/.cache/tengen/ladder-<host>.json
    save_sgf: bool = True               # save every rating game as SGF in the run's games/
    seed: int = 0                       # seeds openings and random moves
    at_end: bool = True                 # training runs rate their final checkpoint (experiments/train.py)
    every_iters: int = 0                # also a quick Elo every this many iterations (experiments/iteration_rating.py; 0: off)
    every_games: int = 4                # games of that quick Elo, against the one rung nearest the last estimate
    every_player: str = "policy"        # policy | mcts: how the checkpoint plays in the quick Elo (policy is cheap)
    every_start_elo: float = 200.0      # the first quick Elo plays the rung nearest this (later: the last estimate)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "RatingConfig":
        """Build from a plain dict (Hydra's rating group), refusing unknown keys by name."""
        d = dict(d)
        known = {f.name for f in fields(RatingConfig)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown rating config keys {unknown}; known: {sorted(known)}")
        rung_known = {f.name for f in fields(RungConfig)}
        rungs = []
        for r in d.get("rungs") or []:
            bad = sorted(set(r) - rung_known)
            if bad:
                raise ValueError(f"unknown keys {bad} in ladder rung {r.get('name')!r}; known: {sorted(rung_known)}")
            rung = RungConfig(**r)
            if rung.kind not in RUNG_KINDS:
                raise ValueError(f"rung {rung.name!r}: kind must be one of {RUNG_KINDS}, got {rung.kind!r}")
            rungs.append(rung)
        d["rungs"] = rungs
        cfg = RatingConfig(**d)
        names = [r.name for r in rungs]
        if len(set(names)) != len(names):
            raise ValueError(f"ladder rung names must be unique, got {names}")
        if rungs and cfg.reference not in names:
            raise ValueError(f"rating.reference {cfg.reference!r} is not a rung of the ladder {names}")
        if rungs and not any(r.kind == "random" for r in rungs):
            raise ValueError("the ladder needs a `random` rung: it anchors Elo at 0")
        return cfg

    def rung(self, name: str) -> RungConfig:
        for r in self.rungs:
            if r.name == name:
                return r
        raise KeyError(f"no rung {name!r} in the ladder {[r.name for r in self.rungs]}")

    def match_config(self, games: int, board_size: int, komi: float) -> MatchConfig:
        return MatchConfig(games=games, board_size=board_size, komi=komi, move_time_s=self.move_time_s,
                           start_timeout_s=self.start_timeout_s, max_moves_factor=self.max_moves_factor,
                           random_opening_moves=self.random_opening_moves, workers=self.workers,
                           seed=self.seed)


def our_player_command(player: str, checkpoint: str | None = None, visits: int | None = None,
                       device: str | None = None) -> list[str]:
    """argv running one of our players as a GTP engine (`python -m go_core.arena.gtp_server`)."""
    argv = [sys.executable, "-m", "go_core.arena.gtp_server", "--player", player]
    if checkpoint:
        argv += ["--checkpoint", str(checkpoint)]
    if visits is not None and player == "mcts":
        argv += ["--visits", str(int(visits))]
    if device:
        argv += ["--device", device]
    return argv


def repo_env() -> dict[str, str]:
    """Environment for our own GTP subprocesses: this checkout importable, threads kept to one."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def rung_player(rung: RungConfig) -> PlayerSpec:
    """The GTP command line of a rung (raises EngineNotFound naming what to install)."""
    if rung.kind == "random":
        argv, env = our_player_command("random"), repo_env()
    elif rung.kind == "gnugo":
        # Tromp-Taylor needs dead stones captured before passing, and positional superko.
        argv, env = engines.gnugo_command(rung.level) + ["--capture-all-dead", "--positional-superko"], None
    elif rung.kind == "katago":
        argv, env = engines.katago_command(model=rung.model, visits=rung.visits), engines.katago_env()
    elif rung.kind == "checkpoint":
        if not rung.checkpoint or not Path(rung.checkpoint).is_file():
            raise FileNotFoundError(f"rung {rung.name!r}: checkpoint {rung.checkpoint!r} does not exist")
        argv, env = our_player_command(rung.player, rung.checkpoint, rung.visits), repo_env()
    elif rung.kind == "gtp":
        if not rung.argv:
            raise ValueError(f"rung {rung.name!r} of kind gtp needs argv (the engine's command line)")
        argv, env = list(rung.argv), None
    else:
        raise ValueError(f"rung {rung.name!r}: unknown kind {rung.kind!r}; one of {RUNG_KINDS}")
    return PlayerSpec(name=rung.name, argv=argv, env=env, random_move_prob=rung.random_move_prob,
                      reference=True)


def rung_signature(rung: RungConfig) -> dict[str, Any]:
    """What identifies a rung's strength (a calibration is stale when this changes)."""
    d = asdict(rung)
    d.pop("elo_default", None)
    if rung.kind == "katago":
        try:
            d["model"] = engines.find_katago_model(rung.model).name
        except engines.EngineNotFound:
            pass
    return d
