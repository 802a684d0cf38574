"""The reference ladder: fixed opponents of known Elo, calibrated once per machine.

A *rung* is a reference player: `random` (Elo 0 by definition), GNU Go at a level, KataGo with a
net and a visit count (resignation off, so dead stones are played out under Tromp-Taylor), any
GTP command, or a checkpoint of ours (policy or MCTS). Rungs are defined in `conf/eval/ladder/`.

`calibrate` plays neighbouring rungs against each other, fits Bradley–Terry Elo (random = 0) and
caches the rung Elos per machine in a JSON file (machine, date, games, the rung definitions).
`evaluate_candidate` then rates a new player adaptively: it starts at the middle rung, and after
each batch of games moves to the unplayed rung closest to the candidate's current estimate, so
only rungs near its strength are played; the candidate's Elo is fitted with the rung Elos fixed
(their calibration uncertainty propagated into its interval).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import socket
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from go_core.arena import engines
from go_core.arena.elo import fit_elo
from go_core.arena.match import MatchGame, MatchConfig, PlayerSpec, play_match
from go_core.arena.stats import win_rate

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
class EvalConfig:
    """How a checkpoint is rated (the `eval` config group)."""
    rungs: list[RungConfig] = field(default_factory=list)  # the ladder, weakest first
    reference: str = "katago-b6c96-v1"  # rung that gives the headline winrate_vs_ref
    games_vs_reference: int = 8         # games against the reference (colours alternate; even)
    games_per_rung: int = 4             # games per adaptive step against other rungs (even)
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
    save_sgf: bool = True               # save every evaluation game as SGF in the run's games/
    seed: int = 0                       # seeds openings and random moves
    at_end: bool = True                 # training runs evaluate their final checkpoint (experiments/train.py)
    every_iters: int = 0                # also a quick Elo every this many iterations (experiments/iteration_eval.py; 0: off)
    every_games: int = 4                # games of that quick Elo, against the one rung nearest the last estimate
    every_player: str = "policy"        # policy | mcts: how the checkpoint plays in the quick Elo (policy is cheap)
    every_start_elo: float = 200.0      # the first quick Elo plays the rung nearest this (later: the last estimate)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "EvalConfig":
        """Build from a plain dict (Hydra's eval group), refusing unknown keys by name."""
        d = dict(d)
        known = {f.name for f in fields(EvalConfig)}
        ladder = d.pop("ladder", None)
        if ladder is not None:  # conf/eval/default.yaml pulls conf/eval/ladder/*.yaml in as `ladder`
            d.setdefault("rungs", ladder.get("rungs", []))
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown eval config keys {unknown}; known: {sorted(known)}")
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
        cfg = EvalConfig(**d)
        names = [r.name for r in rungs]
        if len(set(names)) != len(names):
            raise ValueError(f"ladder rung names must be unique, got {names}")
        if rungs and cfg.reference not in names:
            raise ValueError(f"eval.reference {cfg.reference!r} is not a rung of the ladder {names}")
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


def _repo_env() -> dict[str, str]:
    """Environment for our own GTP subprocesses: this checkout importable, threads kept to one."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def rung_player(rung: RungConfig) -> PlayerSpec:
    """The GTP command line of a rung (raises EngineNotFound naming what to install)."""
    if rung.kind == "random":
        argv, env = our_player_command("random"), _repo_env()
    elif rung.kind == "gnugo":
        # Tromp-Taylor needs dead stones captured before passing, and positional superko.
        argv, env = engines.gnugo_command(rung.level) + ["--capture-all-dead", "--positional-superko"], None
    elif rung.kind == "katago":
        argv, env = engines.katago_command(model=rung.model, visits=rung.visits), engines.katago_env()
    elif rung.kind == "checkpoint":
        if not rung.checkpoint or not Path(rung.checkpoint).is_file():
            raise FileNotFoundError(f"rung {rung.name!r}: checkpoint {rung.checkpoint!r} does not exist")
        argv, env = our_player_command(rung.player, rung.checkpoint, rung.visits), _repo_env()
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


# --------------------------------------------------------------------------- calibration cache
def default_cache_path() -> Path:
    base = os.environ.get("TENGEN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tengen")
    return Path(base) / f"ladder-{socket.gethostname()}.json"


def cache_path(cfg: EvalConfig) -> Path:
    return Path(os.path.expanduser(cfg.cache_path)) if cfg.cache_path else default_cache_path()


def _read_cache(cfg: EvalConfig) -> dict[str, Any]:
    path = cache_path(cfg)
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def load_calibration(cfg: EvalConfig, board_size: int | None = None,
                     komi: float | None = None) -> dict[str, Any] | None:
    """The cached calibration of this machine, or None. The cache is keyed by board size, komi and
    each rung's full definition: a calibration made for another board or komi is not used, and
    rungs whose definition changed are dropped."""
    data = _read_cache(cfg)
    if not data or not _same_game(data, board_size, komi):
        return None
    rungs = {}
    for r in cfg.rungs:
        entry = data.get("rungs", {}).get(r.name)
        if entry and entry.get("signature") == rung_signature(r):
            rungs[r.name] = entry
    data["rungs"] = rungs
    return data


def _same_game(data: dict[str, Any], board_size: int | None, komi: float | None) -> bool:
    return ((board_size is None or data.get("board_size") in (None, board_size))
            and (komi is None or data.get("komi") is None or float(data["komi"]) == float(komi)))


def ladder_elos(cfg: EvalConfig, board_size: int | None = None,
                komi: float | None = None) -> tuple[dict[str, float], dict[str, float], str]:
    """Rung Elos and their standard errors: from this machine's calibration for this board and
    komi where there is one, else the config's `elo_default` (sd 150, flagged by the returned
    source "defaults")."""
    cal = load_calibration(cfg, board_size, komi)
    elos, sds, sources = {}, {}, set()
    for r in cfg.rungs:
        if cal and r.name in cal["rungs"]:
            elos[r.name] = float(cal["rungs"][r.name]["elo"])
            sds[r.name] = float(cal["rungs"][r.name]["stderr"])
            sources.add("calibration")
        elif r.kind == "random":
            elos[r.name], sds[r.name] = 0.0, 0.0
        elif r.elo_default is not None:
            elos[r.name], sds[r.name] = float(r.elo_default), 150.0
            sources.add("defaults")
    source = "+".join(sorted(sources)) or "defaults"
    return elos, sds, source


def calibrate(cfg: EvalConfig, board_size: int = 9, komi: float = 7.0, games: int | None = None,
              rung_names: list[str] | None = None, sgf_dir: str | None = None,
              log: Callable[[str], None] = print, write_cache: bool = True) -> dict[str, Any]:
    """Play neighbouring rungs (and rungs two apart) `games` games per pair, fit the rung Elos
    (random = 0) and cache them with the machine, date and every game.

    Incremental and resumable: games already cached for unchanged rung definitions count towards
    `games` (a pair is only topped up), and the cache is rewritten after every pair. Calibrating
    again with a larger `games` narrows the intervals.
    """
    games = games or cfg.calibration_games
    rungs = [cfg.rung(n) for n in rung_names] if rung_names else list(cfg.rungs)
    names = [r.name for r in rungs]
    anchor = next((r.name for r in cfg.rungs if r.kind == "random"), None)
    if anchor is None:
        raise ValueError(f"calibration needs a random rung (Elo 0) in the ladder {[r.name for r in cfg.rungs]}")
    pairs = [(names[i], names[i + 1]) for i in range(len(names) - 1)]
    if cfg.calibration_skip_pairs:
        pairs += [(names[i], names[i + 2]) for i in range(len(names) - 2)]
    with _calibration_lock(cfg):
        return _calibrate(cfg, board_size, komi, games, rungs, names, anchor, pairs, sgf_dir, log,
                          write_cache)


def _calibration_lock(cfg: EvalConfig):
    """One calibration at a time per cache file (the cache is written only by calibrate)."""
    import contextlib
    import fcntl

    @contextlib.contextmanager
    def held():
        path = cache_path(cfg)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
    return held()


def _calibrate(cfg, board_size, komi, games, rungs, names, anchor, pairs, sgf_dir, log,
               write_cache) -> dict[str, Any]:
    old = _read_cache(cfg)
    if old and not _same_game(old, board_size, komi):
        log(f"[ladder] the cache holds a {old.get('board_size')}x{old.get('board_size')} komi "
            f"{old.get('komi')} calibration: starting a new one for {board_size}x{board_size} komi {komi}")
        old = {}
    sigs = {r.name: rung_signature(r) for r in cfg.rungs}
    valid = {n for n, sig in old.get("signatures", {}).items() if sigs.get(n) == sig}
    records: list[list] = [g for g in old.get("games", []) if g[0] in valid and g[1] in valid]
    t0 = time.monotonic()
    data: dict[str, Any] = {}
    for a, b in pairs:
        have = sum(1 for g in records if {g[0], g[1]} == {a, b})
        need = games - have
        if need <= 0:
            log(f"[ladder] {a} vs {b}: {have} games on record, none needed")
            continue
        need += need % 2  # colours balanced
        log(f"[ladder] {a} vs {b}: {need} games ({have} on record)")
        valid |= {a, b}

        def save(g: MatchGame) -> None:  # after every game: an interrupted calibration resumes
            records.append([g.black, g.white, g.black_score, g.reason])
            if write_cache:  # the games only; the fit is refreshed after each pair
                progress = dict(data or old)
                progress.update(games=records, signatures={n: sigs[n] for n in sorted(valid) if n in sigs})
                progress.setdefault("rungs", {})
                _write_cache(cfg, progress)

        res = play_match(rung_player(cfg.rung(a)), rung_player(cfg.rung(b)),
                         cfg.match_config(need, board_size, komi), sgf_dir=sgf_dir, first_index=have,
                         on_game=save)
        wr = res.win_rate(a)
        log(f"[ladder]   {a} scored {wr.wins:g}/{wr.games} ({res.seconds:.0f} s; {res.reasons()})")
        data = _calibration_data(cfg, records, anchor, sigs, valid, board_size, komi, games,
                                 time.monotonic() - t0 + old.get("seconds", 0.0))
        if write_cache:
            _write_cache(cfg, data)
    if not data:  # nothing new played: refit what is on record
        data = _calibration_data(cfg, records, anchor, sigs, valid, board_size, komi, games,
                                 old.get("seconds", 0.0))
        if write_cache and records:
            _write_cache(cfg, data)
    if write_cache:
        data["cache_path"] = str(cache_path(cfg))
    return data


def _write_cache(cfg: EvalConfig, data: dict[str, Any]) -> None:
    path = cache_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({k: v for k, v in data.items() if k != "fit"}, indent=1))
    os.replace(tmp, path)


def _calibration_data(cfg: EvalConfig, records: list[list], anchor: str, sigs: dict[str, Any],
                      valid: set[str], board_size: int, komi: float, games: int,
                      seconds: float) -> dict[str, Any]:
    """Fit the rungs connected to the anchor by games on record; the cache's content."""
    reach, frontier = {anchor}, [anchor]   # players linked to the anchor through games
    while frontier:
        p = frontier.pop()
        for b, w, _, _ in records:
            for x, y in ((b, w), (w, b)):
                if x == p and y not in reach:
                    reach.add(y)
                    frontier.append(y)
    used = [(b, w, s) for b, w, s, _ in records if b in reach and w in reach]
    rungs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if used:
        fit = fit_elo(used, anchors={anchor: 0.0}, prior_draws=cfg.prior_draws)
        rungs = {n: {"elo": round(fit.ratings[n], 1), "ci95": [round(x, 1) for x in fit.ci95[n]],
                     "stderr": round(fit.stderr[n], 1), "games": fit.games_by_player.get(n, 0),
                     "signature": sigs[n]} for n in fit.ratings}
        order = sorted(fit.ratings, key=fit.ratings.get)
        gaps = []
        for lo_name, hi_name in zip(order, order[1:]):
            d, (g_lo, g_hi) = fit.gap(hi_name, lo_name)
            gaps.append({"from": lo_name, "to": hi_name, "gap": round(d, 1),
                         "ci95": [round(g_lo, 1), round(g_hi, 1)]})
        extra = {"neighbour_gaps": gaps, "colour_advantage": round(fit.colour_advantage, 1),
                 "colour_ci95": [round(x, 1) for x in fit.colour_ci95], "separated": fit.separated,
                 "fit": fit}
    return {
        "machine": {"hostname": socket.gethostname(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "board_size": board_size, "komi": komi, "games_per_pair": games,
        "seconds": round(seconds, 1),
        "rungs": rungs,
        "prior_draws": cfg.prior_draws,
        **extra,
        "pairs": _pair_table(records),
        "signatures": {n: sigs[n] for n in sorted(valid) if n in sigs},
        "games": records,
    }


def _pair_table(records: list[list]) -> list[dict[str, Any]]:
    out: dict[tuple[str, str], list[float]] = {}
    for b, w, s, _ in records:
        a, c = sorted((b, w))
        out.setdefault((a, c), []).append(s if b == a else 1.0 - s)
    return [{"a": a, "b": c, "score_a": sum(v), "games": len(v)} for (a, c), v in sorted(out.items())]


def calibration_table(data: dict[str, Any]) -> str:
    """The cached calibration as a text table, weakest rung first."""
    lines = [f"ladder calibration on {data.get('machine', {}).get('hostname')} at {data.get('date')} "
             f"({data.get('board_size')}x{data.get('board_size')}, komi {data.get('komi')}, "
             f"{data.get('games_per_pair')} games per pair)",
             f"{'rung':<24} {'elo':>7} {'95% interval':>18} {'games':>6}"]
    for name, r in sorted(data["rungs"].items(), key=lambda kv: kv[1]["elo"]):
        lo, hi = r["ci95"]
        lines.append(f"{name:<24} {r['elo']:>7.0f} {f'[{lo:.0f}, {hi:.0f}]':>18} {r['games']:>6}")
    for g in data.get("neighbour_gaps", []):
        lo, hi = g["ci95"]
        sep = "ordered" if lo > 0 else "not separated"
        lines.append(f"  gap {g['from']} -> {g['to']}: {g['gap']:+.0f} [{lo:+.0f}, {hi:+.0f}] ({sep})")
    if "colour_advantage" in data:
        lo, hi = data["colour_ci95"]
        lines.append(f"colour advantage (black, Elo): {data['colour_advantage']:.0f} [{lo:.0f}, {hi:.0f}]")
    for p in data.get("pairs", []):
        lines.append(f"  {p['a']} vs {p['b']}: {p['a']} scored {p['score_a']:g}/{p['games']}")
    if data.get("separated"):
        lines.append("separated by perfect results (gaps between groups rest on the prior of "
                     f"{data.get('prior_draws')} virtual draw per pair): "
                     + " | ".join(", ".join(g) for g in data["separated"]))
    return "\n".join(lines)


# --------------------------------------------------------------------------- adaptive evaluation
def evaluate_candidate(candidate: PlayerSpec, cfg: EvalConfig, board_size: int = 9, komi: float = 7.0,
                       sgf_dir: str | None = None, log: Callable[[str], None] = print,
                       max_rungs: int | None = None, games_per_rung: int | None = None,
                       games_vs_reference: int | None = None, start: str | None = None,
                       start_elo: float | None = None,
                       anchors: tuple[dict, dict, str] | None = None) -> dict[str, Any]:
    """Rate `candidate` against the ladder (see the module docstring); returns the metrics dict.

    `anchors` (rung Elos, their sds, where they came from): the scale a question started with, so
    a parent and its child are rated on the same scale even if the ladder is recalibrated between
    them; None reads this machine's calibration for `board_size` and `komi`.

    The walk starts at the middle rung (or the reference, `start`), or at the rung closest to
    `start_elo` when a prior estimate is known; the reference always gets `games_vs_reference`.

    Keys: winrate_vs_ref, winrate_ci95, games_vs_ref, elo, elo_ci95, reference, rungs (per rung:
    elo of the rung, games, score, win rate and interval), colour_advantage, ladder_source,
    failures (games lost by a crash/timeout/illegal move of either side), games (all records).
    """
    elos, sds, source = anchors if anchors is not None else ladder_elos(cfg, board_size, komi)
    playable = [r for r in cfg.rungs if r.name in elos]
    if cfg.reference not in elos:
        raise ValueError(f"reference rung {cfg.reference!r} has no Elo: calibrate the ladder "
                         "(`research ladder calibrate`) or give it elo_default in conf/eval/ladder/")
    if candidate.name in elos:
        raise ValueError(f"candidate name {candidate.name!r} clashes with a rung name")
    max_rungs = max_rungs or cfg.max_rungs
    per_rung = games_per_rung or cfg.games_per_rung
    n_ref = cfg.games_vs_reference if games_vs_reference is None else games_vs_reference
    order = sorted(playable, key=lambda r: elos[r.name])
    start = start or cfg.start
    if start_elo is not None:  # a prior estimate (e.g. the parent run's Elo) beats the middle
        first = min(order, key=lambda r: abs(elos[r.name] - start_elo))
    elif start == "middle":
        first = order[len(order) // 2]
    elif start == "reference":
        first = cfg.rung(cfg.reference)
    else:
        raise ValueError(f"eval.start must be middle or reference, got {start!r}")
    played: dict[str, list[MatchGame]] = {}
    all_games: list[MatchGame] = []

    def play(rung: RungConfig, n: int) -> None:
        if n <= 0:
            return
        already = len(played.get(rung.name, []))
        res = play_match(candidate, rung_player(rung), cfg.match_config(n, board_size, komi),
                         sgf_dir=sgf_dir, first_index=already)
        played.setdefault(rung.name, []).extend(res.games)
        all_games.extend(res.games)
        wr = res.win_rate(candidate.name)
        log(f"[eval] vs {rung.name} (Elo {elos[rung.name]:.0f}): {wr.wins:g}/{wr.games} "
            f"in {res.seconds:.0f} s {res.reasons()}")

    def estimate() -> float:
        fit = fit_elo([(g.black, g.white, g.black_score) for g in all_games],
                      anchors={n: elos[n] for n in played}, prior_draws=cfg.prior_draws)
        return fit.ratings[candidate.name]

    rung = first
    while True:
        play(rung, n_ref if rung.name == cfg.reference else per_rung)
        if len(played) >= max_rungs:
            break
        est = estimate()
        rest = [r for r in order if r.name not in played]
        # A clean sweep says which way to go even where the prior-pulled estimate does not.
        score = sum(g.score_for(candidate.name) for g in all_games)
        if score == 0:      # lost everything: only weaker rungs can tell more
            rest = [r for r in rest if elos[r.name] < min(elos[n] for n in played)]
        elif score == len(all_games):
            rest = [r for r in rest if elos[r.name] > max(elos[n] for n in played)]
        if not rest:
            break
        rung = min(rest, key=lambda r: abs(elos[r.name] - est))
    if cfg.reference not in played or len(played[cfg.reference]) < n_ref:
        play(cfg.rung(cfg.reference), n_ref - len(played.get(cfg.reference, [])))

    own = [g for g in all_games if g.failure and g.winner != candidate.name]
    if all_games and len(own) == len(all_games):
        raise RuntimeError(f"the candidate {candidate.name!r} failed in every game ({own[0].reason}): "
                           f"{own[0].detail[-1500:]}")
    anchors = {n: elos[n] for n in played}
    fit = fit_elo([(g.black, g.white, g.black_score) for g in all_games], anchors=anchors,
                  anchor_sd={n: sds[n] for n in played}, prior_draws=cfg.prior_draws)
    ref_games = played.get(cfg.reference, [])
    ref_wr = win_rate(g.score_for(candidate.name) for g in ref_games)
    per_rung_out = {}
    for name, gs in played.items():
        wr = win_rate(g.score_for(candidate.name) for g in gs)
        per_rung_out[name] = {"rung_elo": round(elos[name], 1), "games": wr.games, "score": wr.wins,
                              "winrate": wr.rate, "winrate_ci95": list(wr.ci95)}
    failures = [{"game": g.index, "black": g.black, "white": g.white, "reason": g.reason,
                 "detail": g.detail[:300]} for g in all_games if g.failure]
    lo, hi = fit.ci95[candidate.name]
    total = sum(g.score_for(candidate.name) for g in all_games)
    # With no win (or no loss) at all the data give only a bound: the estimate and its interval
    # then rest on the prior's virtual draws, and the truth may lie below (above) them.
    bound = "upper" if total == 0 else "lower" if total == len(all_games) else None
    return {
        "winrate_vs_ref": ref_wr.rate,
        "winrate_ci95": list(ref_wr.ci95),
        "games_vs_ref": ref_wr.games,
        "elo": round(fit.ratings[candidate.name], 1),
        "elo_ci95": [round(lo, 1), round(hi, 1)],
        "reference": cfg.reference,
        "rungs": per_rung_out,
        "colour_advantage": round(fit.colour_advantage, 1),
        "ladder_source": source,
        "games": len(all_games),
        "failures": failures,
        "elo_separated": fit.separated,
        "elo_bound": bound,
    }
