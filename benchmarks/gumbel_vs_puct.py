"""Gumbel root search against PUCT, the same checkpoint, at 4, 8, 16 and 32 visits per move.

Why: Gumbel search (Danihelka et al., ICLR 2022) is meant to keep improving on the net's policy
at visit counts where PUCT mostly echoes it. This measures that for a Tengen checkpoint with the
project's own head-to-head: two `go_core.learn.batch_player --player mcts` processes (A with
`--root gumbel`, B with `--root puct`, one torch thread each), colour-swapped pairs from the
shipped opening book, Tromp-Taylor scoring by our engine (`go_core.arena.head_to_head`), the Elo
difference A - B with its 95% interval from the pentanomial pair counts
(`go_core.arena.sprt.estimate`), and the verdict of the referee's games-only sequential test
(`sequential_test`, which also stops a comparison once it has decided). Both play at temperature 0
without noise (Gumbel: the top-m moves by prior, then Sequential Halving on their values).

    python benchmarks/gumbel_vs_puct.py --checkpoint RUN/checkpoints/latest.pt \
        [--visits 4 8 16 32] [--pairs 20] [--gumbel-m 16] [--pairs-at-once 32] [--threads 1]

Without `--checkpoint` a freshly initialised b2c32 net is used (the output says so): that only
measures search on a random net, not a strength claim. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from go_core.arena.head_to_head import BatchPlayerSpec, play_head_to_head  # noqa: E402
from go_core.arena.sprt import estimate, mde_elo, pentanomial, sequential_test  # noqa: E402
from go_core.learn.net import NetConfig, PolicyValueNet, save_checkpoint  # noqa: E402


def player(checkpoint: str, visits: int, root: str, a) -> list[str]:
    return [sys.executable, "-m", "go_core.learn.batch_player", "--player", "mcts", "--checkpoint", checkpoint,
            "--visits", str(visits), "--root", root, "--gumbel-m", str(a.gumbel_m), "--device", a.device,
            "--threads", str(a.threads), "--seed", str(a.seed)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default=None, help="a .pt from training (default: a fresh b2c32 net)")
    p.add_argument("--visits", type=int, nargs="+", default=[4, 8, 16, 32])
    p.add_argument("--pairs", type=int, default=20, help="colour-swapped game pairs per visit count")
    p.add_argument("--gumbel-m", type=int, default=16)
    p.add_argument("--pairs-at-once", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="torch threads per player process")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-moves", type=int, default=0, help="move cap per game (0: head_to_head's 3*size^2)")
    p.add_argument("--delta", type=float, default=100.0,
                   help="Elo difference the verdict's sequential test is powered for (the referee's verdict.delta_elo)")
    a = p.parse_args(argv)

    t0 = time.perf_counter()
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        ck = a.checkpoint
        if ck is None:
            torch.manual_seed(a.seed)
            ck = str(Path(tmp) / "fresh_b2c32.pt")
            save_checkpoint(ck, PolicyValueNet(NetConfig(blocks=2, channels=32, gpool_every=2, gpool_channels=8,
                                                         policy_channels=16, value_channels=16, value_hidden=32)),
                            board_size=9)
        for v in a.visits:
            res = play_head_to_head(BatchPlayerSpec(player(ck, v, "gumbel", a), cwd=str(ROOT), name=f"gumbel{v}"),
                                    BatchPlayerSpec(player(ck, v, "puct", a), cwd=str(ROOT), name=f"puct{v}"),
                                    pairs=a.pairs, pairs_at_once=a.pairs_at_once, seed=a.seed + v,
                                    sgf_dir=Path(tmp) / f"sgf{v}", timeout_s=900, start_timeout_s=600,
                                    max_moves=a.max_moves or None,
                                    should_stop=lambda done: sequential_test(
                                        pentanomial(x.score_a for x in done), a.delta, a.pairs).outcome is not None)
            est = estimate(res.pentanomial)
            test = sequential_test(res.pentanomial, a.delta, a.pairs)
            results[str(v)] = {"pentanomial": res.pentanomial, "pairs": len(res.pairs), "games": res.games,
                               "wins_draws_losses": list(res.wins_draws_losses), "score": res.score_rate,
                               "elo": est.elo, "elo_ci95": list(est.ci95), "failures": len(res.failures),
                               "verdict": test.outcome or "inconclusive", "verdict_reason": test.reason,
                               "mde_elo": round(mde_elo(est.se), 1),
                               "games_per_min": res.games_per_min}
            print(f"visits {v}: {results[str(v)]}", file=sys.stderr, flush=True)
    print(json.dumps({
        "benchmark": "gumbel_vs_puct", "board": 9, "checkpoint": a.checkpoint or "fresh b2c32 (untrained)",
        "a": "mcts --root gumbel", "b": "mcts --root puct", "gumbel_m": a.gumbel_m,
        "elo_is": "gumbel minus puct, 95% interval from pentanomial pair counts (pairs are the units)",
        "verdict_is": f"the referee's games-only sequential test (go_core.arena.sprt.sequential_test, delta "
                      f"{a.delta:g} Elo, alpha 0.05, beta 0.2), stopping early: better = gumbel stronger",
        "pentanomial_is": "pairs with gumbel scoring 0, 0.5, 1, 1.5, 2 points",
        "by_visits": results, "device": a.device, "threads_per_player": a.threads,
        "wall_s": time.perf_counter() - t0, "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
