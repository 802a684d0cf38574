"""`research ladder calibrate|show`: measure the reference ladder's Elo on this machine, or show it.

    research ladder calibrate [--games N] [--rungs random,gnugo-L10,...] [--rating default|full]
    research ladder show [--json]

Calibration plays neighbouring rungs (and rungs two apart) `--games` games each, fits Bradley–Terry
Elo with random = 0 and caches the result per machine (`~/.cache/tengen/ladder-<hostname>.json`,
or `--cache PATH`); games already cached for unchanged rungs are kept, so calibrating again
narrows the intervals.
"""
from __future__ import annotations

import argparse
import json
import sys

from go_core.arena.calibration import cache_path, calibrate, calibration_table, load_calibration


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="research ladder", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, doc in (("calibrate", "play the rungs against each other and cache their Elo"),
                      ("show", "print the cached calibration of this machine")):
        s = sub.add_parser(name, help=doc)
        s.add_argument("--rating", default="default", help="rating config option in conf/rating/ (default, full)")
        s.add_argument("--cache", default=None, help="calibration cache file (default ~/.cache/tengen/ladder-<host>.json)")
        s.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if name == "calibrate":
            s.add_argument("--games", type=int, default=None, help="games per pair of rungs (default rating.calibration_games)")
            s.add_argument("--rungs", default=None, help="comma-separated rung names (default: all)")
            s.add_argument("--board-size", type=int, default=9)
            s.add_argument("--komi", type=float, default=7.0)
            s.add_argument("--workers", type=int, default=None, help="games at once (default rating.workers)")
            s.add_argument("--no-skip-pairs", action="store_true", help="only neighbouring rungs")
            s.add_argument("--sgf-dir", default=None, help="save calibration games as SGF here")
    return p


def main(argv: list[str] | None = None) -> int:
    from experiments.rate_checkpoint import as_rating_config, load_default_rating_dict

    args = build_parser().parse_args(argv)
    d = load_default_rating_dict(args.rating)
    if args.cache:
        d["cache_path"] = args.cache
    if args.command == "show":
        cfg = as_rating_config(d)
        data = load_calibration(cfg)
        if not data or not data.get("rungs"):
            print(f"no calibration for these rungs at {cache_path(cfg)}; run `research ladder calibrate`",
                  file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps({k: v for k, v in data.items() if k != "games"}, indent=1))
        else:
            print(calibration_table(data))
        return 0
    if args.workers:
        d["workers"] = args.workers
    if args.no_skip_pairs:
        d["calibration_skip_pairs"] = False
    cfg = as_rating_config(d)
    rungs = args.rungs.split(",") if args.rungs else None
    data = calibrate(cfg, board_size=args.board_size, komi=args.komi, games=args.games, rung_names=rungs,
                     sgf_dir=args.sgf_dir, log=lambda m: print(m, flush=True))
    data.pop("fit", None)
    if args.json:
        print(json.dumps({k: v for k, v in data.items() if k != "games"}, indent=1))
    else:
        print(calibration_table(data))
        print(f"cached in {data.get('cache_path')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
