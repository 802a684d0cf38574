"""Rating speed: games per minute of a candidate against each ladder rung on this machine.

    python benchmarks/rating_games.py [--games 4] [--rungs random,gnugo-L10] [--checkpoint P] [--rating default]

The candidate is our random player unless --checkpoint is given (then the rating config's
candidate_player / candidate_visits). Prints one JSON object: per rung games_per_min, seconds,
mean plies per game and failures, plus the machine's load average at the start and end (the
machine may be shared: timings are wall clock).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.rate_checkpoint import as_rating_config, candidate_player, load_default_rating_dict  # noqa: E402
from go_core.arena.rungs import our_player_command, repo_env, rung_player  # noqa: E402
from go_core.arena.match import PlayerSpec, play_match  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--games", type=int, default=4, help="games per rung")
    p.add_argument("--rungs", default=None, help="comma-separated rung names (default: all)")
    p.add_argument("--checkpoint", default=None, help="rate this checkpoint instead of the random player")
    p.add_argument("--rating", default="default", help="rating config option in conf/rating/")
    p.add_argument("--workers", type=int, default=None, help="games at once (default rating.workers)")
    p.add_argument("--board-size", type=int, default=9)
    args = p.parse_args(argv)
    d = load_default_rating_dict(args.rating)
    if args.workers:
        d["workers"] = args.workers
    cfg = as_rating_config(d)
    if args.checkpoint:
        cand = candidate_player(cfg, args.checkpoint, name="candidate")
    else:
        cand = PlayerSpec("candidate-random", our_player_command("random"), env=repo_env())
    names = args.rungs.split(",") if args.rungs else [r.name for r in cfg.rungs]
    load0 = os.getloadavg()
    out = {"host": socket.gethostname(), "cpus": os.cpu_count(), "platform": platform.platform(),
           "board_size": args.board_size, "games_per_rung": args.games, "workers": cfg.workers,
           "candidate": args.checkpoint or "random", "rungs": {}}
    t_all = time.monotonic()
    for name in names:
        rung = cfg.rung(name)
        res = play_match(cand, rung_player(rung), cfg.match_config(args.games, args.board_size, 7.0))
        plies = [len(g.moves) for g in res.games]
        out["rungs"][name] = {
            "games_per_min": round(60.0 * len(res.games) / max(res.seconds, 1e-9), 2),
            "seconds": round(res.seconds, 1),
            "mean_plies": round(sum(plies) / len(plies), 1),
            "candidate_score": res.win_rate(cand.name).wins,
            "reasons": res.reasons(),
        }
    out["total_seconds"] = round(time.monotonic() - t_all, 1)
    out["loadavg_start"] = [round(x, 2) for x in load0]
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
