"""Random-playout throughput of the numba engine and of the plain-Python reference.

Rates are per second of this process's CPU time (``time.process_time``), which on a machine
shared with other work estimates what one idle core does. The numba rates are the best of
~0.25 s chunks (as ``timeit`` reports the minimum: other processes only ever slow a chunk
down); the chunks' mean (``*_mean``) and wall-clock rates (``*_wall``) are reported too, with
the load average. A playout starts from the empty board and plays uniformly random legal moves that do not fill
the mover's own single-point eye until two passes (capped at 3*size*size moves), then scores
it (Tromp-Taylor). Single thread; numba is warmed up before timing. Prints one JSON object.

    python benchmarks/engine.py [--seconds 3] [--python-seconds 5]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time

from go_core.game import board_kernels as K
from go_core.game.reference_board import ReferenceBoard


def numba_rate(size: int, seconds: float, seed: int = 1, chunk_s: float = 0.25) -> dict:
    """Time chunks of about ``chunk_s`` CPU seconds for ``seconds`` in all; the best chunk (as
    ``timeit`` takes the minimum) estimates an undisturbed core, the mean is reported too."""
    max_moves = 3 * size * size
    st = K.new_state(size, K.default_cap(size, max_moves))
    K.playout_benchmark(st, 10, seed, max_moves, 7.0)  # compile / warm up
    c0 = time.process_time()
    K.playout_benchmark(st, 50, seed, max_moves, 7.0)
    n = max(10, int(50 * chunk_s / max(time.process_time() - c0, 1e-6)))
    games = moves = bwins = 0
    best = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    while time.process_time() - c0 < seconds:
        c1 = time.process_time()
        m, w = K.playout_benchmark(st, n, seed + games, max_moves, 7.0)
        best = max(best, n / max(time.process_time() - c1, 1e-9))
        games, moves, bwins = games + n, moves + int(m), bwins + int(w)
    cpu = time.process_time() - c0
    wall = time.perf_counter() - t0
    return {"playouts": games, "cpu_s": cpu, "playouts_per_s": best,
            "moves_per_s": best * moves / games, "moves_per_playout": moves / games,
            "playouts_per_s_mean": games / cpu, "playouts_per_s_wall": games / wall,
            "black_win_rate_komi7": bwins / games}


def python_rate(size: int, seconds: float, seed: int = 1) -> dict:
    rng = random.Random(seed)
    empty = ReferenceBoard(size, komi=7.0)
    games = moves = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while time.process_time() - c0 < seconds or games == 0:
        final = empty.random_playout(rng)
        final.score()
        games += 1
        moves += final.move_number
    cpu = time.process_time() - c0
    wall = time.perf_counter() - t0
    return {"playouts": games, "cpu_s": cpu, "playouts_per_s": games / cpu,
            "moves_per_s": moves / cpu, "moves_per_playout": moves / games,
            "playouts_per_s_wall": games / wall}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="CPU seconds timed per numba size")
    ap.add_argument("--python-seconds", type=float, default=5.0, help="CPU seconds timed for the reference")
    args = ap.parse_args(argv)
    n9 = numba_rate(9, args.seconds)
    n19 = numba_rate(19, args.seconds)
    p9 = python_rate(9, args.python_seconds)
    out = {
        "playouts_per_s_9x9": round(n9["playouts_per_s"], 1),
        "playouts_per_s_19x19": round(n19["playouts_per_s"], 1),
        "python_playouts_per_s_9x9": round(p9["playouts_per_s"], 2),
        # mean against mean (the reference's rate is a mean over its whole run)
        "speedup_9x9": round(n9["playouts_per_s_mean"] / p9["playouts_per_s"], 1),
        "moves_per_s_9x9": round(n9["moves_per_s"]),
        "moves_per_s_19x19": round(n19["moves_per_s"]),
        "python_moves_per_s_9x9": round(p9["moves_per_s"]),
        "moves_per_playout_9x9": round(n9["moves_per_playout"], 1),
        "moves_per_playout_19x19": round(n19["moves_per_playout"], 1),
        "python_moves_per_playout_9x9": round(p9["moves_per_playout"], 1),
        "playouts_per_s_9x9_mean": round(n9["playouts_per_s_mean"], 1),
        "playouts_per_s_19x19_mean": round(n19["playouts_per_s_mean"], 1),
        "playouts_per_s_9x9_wall": round(n9["playouts_per_s_wall"], 1),
        "playouts_per_s_19x19_wall": round(n19["playouts_per_s_wall"], 1),
        "python_playouts_per_s_9x9_wall": round(p9["playouts_per_s_wall"], 2),
        "black_win_rate_komi7_9x9": round(n9["black_win_rate_komi7"], 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
