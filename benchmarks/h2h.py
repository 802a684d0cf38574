"""Head-to-head throughput: raw-policy b6c96 against itself on 9x9, games per minute.

Two player processes (`go_core.learn.batch_player --player policy`, one torch thread each by
default, so on 2 cores both think at once) play `--pairs` colour-swapped pairs from the shipped
opening book through `play_head_to_head`, `--pairs-at-once` pairs in flight (so each request
carries about that many positions, evaluated in one forward pass). The net is a freshly
initialised b6c96 (conf/model/b6c96.yaml): the same arithmetic per position as a trained one.
A fresh net passes early (games of ~15 moves), so by default its pass is switched off (pass
logit bias -1e4: it passes only when nothing else is legal) and every game is cut at
`--game-length` moves, opening included: 100 by default, above the mean of 70 moves (46-93)
that KataGo b6c96's raw policy took in 12 self-play 9x9 games here (Tromp-Taylor, no
resignation). `--game-length 0` lets the fresh net play (and pass) as it likes. Positions per
second are reported too, so games per minute at other lengths follow. Wall time excludes starting the processes
(reported as `startup_s`). The load average is reported: other work on the machine slows this.

    python benchmarks/h2h.py [--pairs 150] [--pairs-at-once 64] [--threads 1] [--device cpu]

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from go_core.arena.head_to_head import BatchPlayerSpec, play_head_to_head  # noqa: E402
from go_core.learn.net import NetConfig, PolicyValueNet, save_checkpoint  # noqa: E402


def model_config(name: str) -> NetConfig:
    d = yaml.safe_load((ROOT / "conf" / "model" / f"{name}.yaml").read_text())
    d.pop("name", None)
    return NetConfig.from_dict(d)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="b6c96", help="conf/model/<name>.yaml")
    p.add_argument("--pairs", type=int, default=150)
    p.add_argument("--pairs-at-once", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="torch threads per player process")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--game-length", type=int, default=100,
                   help="moves per game (the net never passes); 0: the fresh net plays freely")
    a = p.parse_args(argv)

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(a.seed)
        ck = Path(tmp) / f"{a.model}.pt"
        net = PolicyValueNet(model_config(a.model))
        if a.game_length > 0:
            with torch.no_grad():
                net.p_pass.bias.fill_(-1e4)
        save_checkpoint(ck, net, board_size=9)
        argv_player = [sys.executable, "-m", "go_core.learn.batch_player", "--player", "policy",
                       "--checkpoint", str(ck), "--device", a.device,
                       "--threads", str(a.threads)]
        res = play_head_to_head(BatchPlayerSpec(argv_player + ["--seed", "1"], cwd=str(ROOT), name="A"),
                                BatchPlayerSpec(argv_player + ["--seed", "2"], cwd=str(ROOT), name="B"),
                                pairs=a.pairs, pairs_at_once=a.pairs_at_once, seed=a.seed,
                                sgf_dir=Path(tmp) / "sgf", timeout_s=600, start_timeout_s=600,
                                max_moves=a.game_length or None)
    moves = np.array([g.moves for pr in res.pairs for g in pr.games])
    ends = [g.end for pr in res.pairs for g in pr.games]
    print(json.dumps({
        "benchmark": "h2h", "model": a.model, "player": "policy (raw, argmax)", "board": 9,
        "device": a.device, "threads_per_player": a.threads,
        "games": res.games, "pairs_at_once": a.pairs_at_once,
        "games_at_once": 2 * a.pairs_at_once, "game_length": a.game_length or "free",
        "games_per_min": round(res.games_per_min, 1),
        "positions_per_s": round(float(moves.sum()) / res.wall_s, 1),
        "moves_per_game": round(float(moves.mean()), 1),
        "moves_per_game_sd": round(float(moves.std(ddof=1)), 1) if len(moves) > 1 else None,
        "ends": {e: ends.count(e) for e in sorted(set(ends))},
        "failures": len(res.failures),
        "wall_s": round(res.wall_s, 2), "startup_s": round(res.startup_s, 2),
        "target_games_per_min": 300,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
