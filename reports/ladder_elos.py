"""The reference ladder's Elo values (random = 0, GNU Go levels, KataGo at several visit counts).

The referee (`go_core/arena/calibration.py`, `research ladder calibrate`) measures the ladder once
per machine and caches it as JSON (`$TENGEN_CACHE/ladder-<hostname>.json`, default
`~/.cache/tengen/`); a report only reads that cache. Accepted shapes (rung -> Elo and its 95% interval):

    {"random": {"elo": 0, "ci95": [0, 0]}, "gnugo-1": {"elo": 650, "ci95": [600, 700]}, ...}
    {"rungs": {...same...}}  or  {"rungs": [{"name": "gnugo-1", "elo": 650, "ci95": [..]}, ...]}
    {"gnugo-1": [650, 600, 700]}  or  {"gnugo-1": 650}
"""
from __future__ import annotations

import glob
import json
import os
import socket
from pathlib import Path
from typing import Any

Ladder = dict[str, dict[str, Any]]   # rung -> {"elo": float, "ci95": [lo, hi] | None}

LADDER_ENV = "TENGEN_LADDER_CACHE"


def normalise_ladder(raw: Any) -> Ladder:
    """Any accepted shape -> {rung: {"elo", "ci95"}}, sorted by Elo; unreadable rungs dropped."""
    if isinstance(raw, dict) and "rungs" in raw:
        raw = raw["rungs"]
    if isinstance(raw, list):
        raw = {str(r.get("name") or r.get("rung") or r.get("id")): r
               for r in raw if isinstance(r, dict)}
    if not isinstance(raw, dict):
        return {}
    out: Ladder = {}
    for name, v in raw.items():
        elo, ci = None, None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            elo = float(v)
        elif isinstance(v, (list, tuple)) and len(v) == 3:
            elo, ci = float(v[0]), [float(v[1]), float(v[2])]
        elif isinstance(v, dict) and isinstance(v.get("elo"), (int, float)):
            elo = float(v["elo"])
            c = v.get("ci95") or v.get("elo_ci95")
            if isinstance(c, (list, tuple)) and len(c) == 2:
                ci = [float(c[0]), float(c[1])]
        if elo is not None:
            out[str(name)] = {"elo": elo, "ci95": ci}
    return dict(sorted(out.items(), key=lambda kv: kv[1]["elo"]))


def ladder_candidates(workspace_root: Path | None = None) -> list[Path]:
    """Where a ladder cache may be, most specific first."""
    paths: list[Path] = []
    if os.environ.get(LADDER_ENV):
        paths.append(Path(os.environ[LADDER_ENV]))
    if workspace_root is not None:
        root = Path(workspace_root)
        paths += [root / "ladder.json", root / "ladder_cache.json"]
    # go_core.arena.calibration caches this machine's calibration as $TENGEN_CACHE/ladder-<hostname>.json
    # (default ~/.cache/tengen/); prefer this machine's file, then any other one found there.
    folders = [Path(os.environ["TENGEN_CACHE"])] if os.environ.get("TENGEN_CACHE") else []
    folders += [Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tengen",
                Path.home() / ".cache" / "tengen"]
    host = socket.gethostname()
    for folder in folders:
        paths.append(folder / f"ladder-{host}.json")
        paths += [Path(p) for p in sorted(glob.glob(str(folder / "ladder*.json")))]
    return list(dict.fromkeys(paths))


def load_ladder(source: Any = None, workspace_root: Path | None = None) -> Ladder:
    """The ladder from a dict, a JSON file, or the first cache found; {} when there is none."""
    if isinstance(source, dict):
        return normalise_ladder(source)
    candidates = [Path(source)] if source is not None else ladder_candidates(workspace_root)
    for path in candidates:
        if path.is_file():
            try:
                ladder = normalise_ladder(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError):
                continue
            if ladder:
                return ladder
    return {}
