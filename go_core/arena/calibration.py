"""Calibration of the reference ladder: rung Elos measured once per machine and cached.

`calibrate` plays neighbouring rungs (and rungs two apart) against each other, fits Bradley–Terry
Elo (random = 0) and caches the rung Elos per machine in a JSON file (machine, date, games, the
rung definitions). `ladder_elos` reads them back for a board and komi (or the rungs' configured
defaults where this machine has no calibration); `calibration_table` prints them.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import platform
import socket
import time
from pathlib import Path
from typing import Any, Callable

from go_core.arena.elo import fit_elo
from go_core.arena.match import MatchGame, play_match
from go_core.arena.rungs import RatingConfig, rung_player, rung_signature


def default_cache_path() -> Path:
    base = os.environ.get("TENGEN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tengen")
    return Path(base) / f"ladder-{socket.gethostname()}.json"


def cache_path(cfg: RatingConfig) -> Path:
    return Path(os.path.expanduser(cfg.cache_path)) if cfg.cache_path else default_cache_path()


def _read_cache(cfg: RatingConfig) -> dict[str, Any]:
    path = cache_path(cfg)
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def load_calibration(cfg: RatingConfig, board_size: int | None = None,
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


def ladder_elos(cfg: RatingConfig, board_size: int | None = None,
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


def calibrate(cfg: RatingConfig, board_size: int = 9, komi: float = 7.0, games: int | None = None,
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


def _calibration_lock(cfg: RatingConfig):
    """One calibration at a time per cache file (the cache is written only by calibrate)."""
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


def _write_cache(cfg: RatingConfig, data: dict[str, Any]) -> None:
    path = cache_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({k: v for k, v in data.items() if k != "fit"}, indent=1))
    os.replace(tmp, path)


def _calibration_data(cfg: RatingConfig, records: list[list], anchor: str, sigs: dict[str, Any],
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
