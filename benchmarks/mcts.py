"""MCTS speed in self-play, next to KataGo on the same machine in the same run.

    python benchmarks/mcts.py                       # 64 games x 64 sims, b6c96-sized net, 9x9
    python benchmarks/mcts.py --games 1024 --leaves 16 --device cuda

Prints one JSON object:
- `sims_per_s`: simulations per second of `BatchedMCTS.search_many` over `--games` games at once
  (self-play style: positions a few random moves in, root noise, `--leaves` leaves per game per
  forward pass, tree reuse between the `--moves` moves searched), with a random-weight net of
  `--blocks` x `--channels` (speed does not depend on the weights);
- `net_evals_per_s`: raw batched forward passes of that net on positions already encoded (the
  ceiling for sims_per_s), at the batch size the search uses, as the evaluator runs it (BatchNorm
  folded, channels-last); `net_evals_per_s_unfused` the same net as trained (default layout);
- `katago_visits_per_s`: KataGo (b6c96 net, found by `go_core.arena.engines`) `genmove` at
  `--katago-visits` maxVisits on 9x9, fresh positions, NN cache cleared before each move;
- `ratio_vs_katago`, `device`, `gpu_util_pct` (nvidia-smi sampled during the search, on CUDA),
  `uptime` (load average: the machine is shared), and the settings used.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from go_core.game.board import Board  # noqa: E402
from go_core.learn.evaluators import NetEvaluator  # noqa: E402
from go_core.learn.features import encode_numpy  # noqa: E402
from go_core.learn.mcts import BatchedMCTS  # noqa: E402
from go_core.learn.mcts_config import MCTSConfig  # noqa: E402
from go_core.learn.search_tree import Tree  # noqa: E402
from go_core.learn.net import (NetConfig, PolicyValueNet, autocast, fuse_for_inference, select_device,  # noqa: E402
                          to_inference_layout)


def opening(size: int, moves: int, rng: np.random.Generator) -> Board:
    b = Board(size, komi=7.0)
    for _ in range(moves):
        legal = np.flatnonzero(b.legal_mask()[:-1])
        b.play(int(rng.choice(legal)))
    return b


class GPUSampler:
    """nvidia-smi utilization.gpu sampled every 0.2 s while running (None without nvidia-smi)."""

    def __init__(self):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu",
                                      "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                self.samples.append(float(out.split()[0]))
            except Exception:  # noqa: BLE001 - no nvidia-smi: no samples
                return
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=6)

    @property
    def mean(self):
        return round(float(np.mean(self.samples)), 1) if self.samples else None


def bench_net(net, device, size, batch, seconds, rng, inference_layout: bool = True) -> float:
    """Evaluations per second of `net` on encoded positions, in batches of `batch`; with
    `inference_layout` the net is the evaluator's (BN folded, channels-last), else as trained."""
    boards = [opening(size, int(rng.integers(0, 30)), rng) for _ in range(min(batch, 256))]
    x = encode_numpy([boards[i % len(boards)] for i in range(batch)])
    xt = torch.from_numpy(x).to(device)
    if inference_layout:
        net, xt = fuse_for_inference(net), to_inference_layout(xt)
    with torch.inference_mode(), autocast(device):
        for _ in range(2):
            net(xt)
        if device.type == "cuda":
            torch.cuda.synchronize()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds or n < 3:
            logits, values = net(xt)
            logits.float().cpu()
            n += 1
        dt = time.perf_counter() - t0
    return n * batch / dt


def bench_mcts(net, device, args, rng):
    cfg = MCTSConfig(leaves_per_game=args.leaves)
    evaluator = NetEvaluator(net, device, max_batch=args.max_batch)
    searcher = BatchedMCTS(evaluator, cfg, rng)
    # warm-up: compile the numba kernels, first CUDA calls
    warm = [Tree(opening(args.size, 4, rng), cfg) for _ in range(4)]
    searcher.search_many(warm, 16, True)
    trees = [Tree(opening(args.size, int(rng.integers(0, 20)), rng), cfg) for _ in range(args.games)]
    sims0, evals0, rounds0 = searcher.simulations, searcher.evaluations, searcher.rounds
    with GPUSampler() as gpu:
        t0 = time.perf_counter()
        for _ in range(args.moves):
            live = [t for t in trees if not t.board.is_over]
            searcher.search_many(live, args.sims, True)
            for t in live:
                t.advance(t.pick_move(1.0, rng))
        dt = time.perf_counter() - t0
    sims = searcher.simulations - sims0
    rounds = searcher.rounds - rounds0
    return {
        "sims_per_s": sims / dt,
        "search_seconds": dt,
        "simulations": sims,
        "mean_batch": (searcher.evaluations - evals0) / max(rounds, 1),
        "gpu_util_pct": gpu.mean if device.type == "cuda" else None,
    }


def bench_katago(args, rng):
    from go_core.arena import engines
    from go_core.arena.gtp_client import GTPClient

    try:
        extra = {}
        if args.katago_threads > 2:  # engines caps threads at 2 (shared CPUs); a GPU wants more
            extra = {"numSearchThreads": args.katago_threads,
                     "nnMaxBatchSize": max(16, args.katago_threads)}
        cmd = engines.katago_command(model=args.katago_model, visits=args.katago_visits,
                                     threads=min(args.katago_threads, 2), extra=extra)
    except Exception as e:  # noqa: BLE001 - EngineNotFound etc.: report, do not fail the benchmark
        return None, f"{type(e).__name__}: {e}"
    try:
        with GTPClient(cmd, timeout_s=600) as kg:
            kg.send("boardsize 9")
            kg.send("clear_board")
            kg.send("genmove b", timeout_s=600)  # first start may tune OpenCL (~50 s, cached)
            total, n = 0.0, 0
            for i in range(args.katago_moves):
                kg.send("clear_board")
                b = opening(9, 2 + i % 5, rng)
                for j, m in enumerate(b.history):
                    from go_core.game.coords import move_to_gtp
                    kg.send(f"play {'bw'[j % 2]} {move_to_gtp(m, 9)}")
                try:
                    kg.send("clear_cache")
                except Exception:  # noqa: BLE001 - older KataGo: no clear_cache
                    pass
                colour = "bw"[len(b.history) % 2]
                t0 = time.perf_counter()
                kg.send(f"genmove {colour}", timeout_s=600)
                total += time.perf_counter() - t0
                n += 1
        return args.katago_visits * n / total, None
    except Exception as e:  # noqa: BLE001
        return None, f"{type(e).__name__}: {e}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--games", type=int, default=64, help="games searched at once")
    p.add_argument("--sims", type=int, default=64, help="simulations per game per move")
    p.add_argument("--moves", type=int, default=2, help="moves searched per game (tree reuse between)")
    p.add_argument("--leaves", type=int, default=8, help="leaves per game per forward pass")
    p.add_argument("--max-batch", type=int, default=4096, help="largest forward pass")
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--channels", type=int, default=96)
    p.add_argument("--size", type=int, default=9)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    p.add_argument("--net-seconds", type=float, default=5.0)
    p.add_argument("--katago-visits", type=int, default=200)
    p.add_argument("--katago-moves", type=int, default=5)
    p.add_argument("--katago-threads", type=int, default=2,
                   help="KataGo numSearchThreads (2 on the shared CPU machines; more on a GPU)")
    p.add_argument("--katago-model", default=None)
    p.add_argument("--no-katago", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    device = select_device(args.device)
    torch.manual_seed(args.seed)
    net = PolicyValueNet(NetConfig(blocks=args.blocks, channels=args.channels)).to(device).eval()

    result = {"device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
              "torch_threads": torch.get_num_threads(), "games": args.games, "sims": args.sims,
              "moves": args.moves, "leaves_per_game": args.leaves,
              "net": f"b{args.blocks}c{args.channels}", "board": f"{args.size}x{args.size}"}
    result.update(bench_mcts(net, device, args, rng))
    result["net_evals_per_s"] = bench_net(net, device, args.size, round(result["mean_batch"]),
                                          args.net_seconds, rng)
    result["net_evals_per_s_unfused"] = bench_net(net, device, args.size, round(result["mean_batch"]),
                                                  args.net_seconds, rng, inference_layout=False)
    result["net_batch"] = round(result["mean_batch"])
    if args.no_katago:
        result["katago_visits_per_s"], result["katago_error"] = None, "skipped (--no-katago)"
    else:
        result["katago_visits_per_s"], result["katago_error"] = bench_katago(args, rng)
        result["katago_visits"] = args.katago_visits
    kv = result["katago_visits_per_s"]
    result["ratio_vs_katago"] = result["sims_per_s"] / kv if kv else None
    try:
        result["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        result["uptime"] = os.getloadavg()
    for k, v in list(result.items()):
        if isinstance(v, float):
            result[k] = round(v, 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
