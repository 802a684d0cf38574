"""Strength of a trained checkpoint, the acceptance check of the training job (issue 3).

    python benchmarks/train_strength.py --checkpoint RUN/checkpoints/best.pt
    python benchmarks/train_strength.py --train          # runs `experiments.train board=9x9 budget=tiny` first

Two batched matches (many games at once, one forward pass per round for all of them; colours
alternate; Tromp-Taylor scoring by our engine; a game stops after 2*size^2 plies and is scored):
1. the net with MCTS (`--visits-vs-random`, most-visited move) against the random player
   (`go_core.arena.players.RandomPlayer`): acceptance wants >= 95 wins in 100 games;
2. the net with MCTS at `--visits` (64) against the same net's raw policy (greedy over legal
   moves): search must help. The first `--opening` plies of each game are random, so the games
   differ although both players are deterministic.

Prints one JSON object: wins, games, win rate and its Wilson 95% interval for each match, the
training job's wall time and status when `--train` ran it, the device, and `targets` (each of
issue 3's targets met or not; the 10-minute training target is only measured here, never asserted
by a test).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoresearch.bwrap import ENV_DEFAULTS  # noqa: E402
from go_core.game.board import BLACK, Board  # noqa: E402
from go_core.learn.evaluators import NetEvaluator  # noqa: E402
from go_core.learn.mcts import BatchedMCTS  # noqa: E402
from go_core.learn.mcts_config import MCTSConfig  # noqa: E402
from go_core.learn.search_tree import Tree  # noqa: E402
from go_core.learn.net import load_checkpoint  # noqa: E402
from go_core.arena.players import RandomPlayer  # noqa: E402
from go_core.learn.selfplay import game_result  # noqa: E402
from go_core.arena.stats import wilson_interval  # noqa: E402


class MCTSSide:
    def __init__(self, evaluator, visits: int, rng, leaves_per_game: int = 1):
        self.visits = visits
        self.cfg = MCTSConfig(dirichlet_eps=0.0, leaves_per_game=leaves_per_game)
        self.search = BatchedMCTS(evaluator, self.cfg, rng)
        self.trees: dict[int, Tree] = {}

    def moves(self, games: list[int], boards: list[Board]) -> list[int]:
        trees = []
        for g in games:
            t = self.trees.get(g)
            if t is None or t.board.history != boards[g].history:
                t = Tree(boards[g], self.cfg)  # the opponent moved: start from the new position
                self.trees[g] = t
            trees.append(t)
        self.search.search_many(trees, self.visits, False)
        return [t.best_move() for t in trees]

    def played(self, g: int, move: int) -> None:
        if g in self.trees:
            self.trees[g].advance(move)


class PolicySide:
    def __init__(self, evaluator):
        self.evaluator = evaluator

    def moves(self, games, boards):
        priors, _ = self.evaluator.evaluate([boards[g] for g in games])
        return [int(np.argmax(p)) for p in priors]

    def played(self, g, move):
        pass


class RandomSide:
    def __init__(self, seed: int):
        self.player = RandomPlayer(seed=seed)

    def moves(self, games, boards):
        return [self.player.genmove(boards[g]) for g in games]

    def played(self, g, move):
        pass


def play_match(a, b, n_games: int, size: int, komi: float, opening: int, rng) -> dict:
    """`a` plays black in even games, white in odd ones; returns a's wins and the results."""
    boards = [Board(size, komi) for _ in range(n_games)]
    a_colour = [BLACK if g % 2 == 0 else 3 - BLACK for g in range(n_games)]
    max_plies = 2 * size * size
    opener = RandomPlayer(seed=int(rng.integers(1 << 30)))
    live = set(range(n_games))
    while live:
        for side, mine in ((a, True), (b, False)):
            games = sorted(g for g in live if (boards[g].to_play == a_colour[g]) == mine)
            if not games:
                continue
            rand = [g for g in games if boards[g].move_number < opening]
            rest = [g for g in games if boards[g].move_number >= opening]
            moves = dict(zip(rest, side.moves(rest, boards))) if rest else {}
            moves.update({g: opener.genmove(boards[g]) for g in rand})
            for g, m in moves.items():
                boards[g].play(m)
                a.played(g, m)
                b.played(g, m)
                if boards[g].is_over or boards[g].move_number >= max_plies:
                    live.discard(g)
    winners = [game_result(bd)[0] for bd in boards]
    wins = sum(1.0 if w == c else 0.5 if w == 0 else 0.0 for w, c in zip(winners, a_colour))
    lo, hi = wilson_interval(wins, n_games)
    return {"wins": wins, "games": n_games, "winrate": wins / n_games, "winrate_ci95": [lo, hi],
            "mean_plies": float(np.mean([bd.move_number for bd in boards])),
            "results": [game_result(bd)[1] for bd in boards]}


def run_training(run_dir: Path, overrides: list[str]) -> dict:
    # OpenMP threads wait passively unless the caller says otherwise: spinning ones slow a training
    # job beside other work several times over (autoresearch/bwrap.ENV_DEFAULTS)
    env = {**ENV_DEFAULTS, **os.environ, "WANDB_MODE": "disabled"}
    cmd = [sys.executable, "-m", "experiments.train", "board=9x9", "budget=tiny", "++rating.at_end=false",
           f"hydra.run.dir={run_dir}", *overrides]
    t = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"command": " ".join(cmd[1:]), "exit_code": proc.returncode, "wall_s": time.time() - t,
            "status": summary["status"], "summary_metrics": summary["metrics"], "compute": summary["compute"],
            "budget_note": summary.get("budget_note")}


def targets(out: dict) -> dict:
    """Issue 3's acceptance, target by target (None where this run did not measure it). The time
    target is a measurement, not a test: it holds on 2 idle cores, and a loaded machine misses it
    without the code being wrong (the work is fixed; only the wall clock stretches)."""
    train, vs_random, vs_policy = out.get("training"), out.get("mcts_vs_random"), out.get("mcts_vs_raw_policy")
    return {"train_tiny_under_600_s": None if train is None else bool(train["status"] == "ok" and train["wall_s"] < 600),
            "mcts_beats_random_95_of_100": None if vs_random is None else bool(vs_random["wins"] >= 95),
            "mcts_beats_raw_policy": None if vs_policy is None else bool(vs_policy["winrate_ci95"][0] > 0.5)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", help="a .pt from a training run (default with --train: its best.pt)")
    p.add_argument("--train", action="store_true", help="run the tiny 9x9 training job first and time it")
    p.add_argument("--run-dir", default="/tmp/tengen_train_strength")
    p.add_argument("--override", action="append", default=[], help="extra Hydra override for --train")
    p.add_argument("--games-vs-random", type=int, default=100)
    p.add_argument("--visits-vs-random", type=int, default=64)
    p.add_argument("--games-vs-policy", type=int, default=40)
    p.add_argument("--visits", type=int, default=64, help="MCTS visits against the raw policy")
    p.add_argument("--opening", type=int, default=4, help="random plies opening each game vs the raw policy")
    p.add_argument("--leaves", type=int, default=1,
                   help="leaves per game per forward pass (the games already fill the batch)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    out: dict = {}
    ckpt = a.checkpoint
    if a.train:
        run_dir = Path(a.run_dir)
        out["training"] = run_training(run_dir, a.override)
        print(json.dumps({"training": out["training"]}), file=sys.stderr, flush=True)
        ckpt = ckpt or str(run_dir / "checkpoints" / "best.pt")
    if not ckpt:
        p.error("give --checkpoint PATH or --train")
    net, meta = load_checkpoint(ckpt, a.device)
    size = int(meta.get("board_size") or 9)
    ev = NetEvaluator(net, a.device)
    rng = np.random.default_rng(a.seed)
    out.update({"checkpoint": ckpt, "board_size": size, "step": meta.get("step"), "device": str(ev.device)})
    t = time.time()
    if a.games_vs_random:
        m = play_match(MCTSSide(ev, a.visits_vs_random, rng, a.leaves), RandomSide(a.seed), a.games_vs_random, size, 7.0, 0, rng)
        m.update(visits=a.visits_vs_random, seconds=time.time() - t)
        out["mcts_vs_random"] = m
        print(json.dumps({"mcts_vs_random": {k: v for k, v in m.items() if k != "results"}}), file=sys.stderr, flush=True)
    t = time.time()
    if a.games_vs_policy:
        m = play_match(MCTSSide(ev, a.visits, rng, a.leaves), PolicySide(ev), a.games_vs_policy, size, 7.0, a.opening, rng)
        m.update(visits=a.visits, seconds=time.time() - t)
        out["mcts_vs_raw_policy"] = m
        print(json.dumps({"mcts_vs_raw_policy": {k: v for k, v in m.items() if k != "results"}}), file=sys.stderr, flush=True)
    t = time.time()
    if a.games_vs_random:
        m = play_match(PolicySide(ev), RandomSide(a.seed + 1), a.games_vs_random, size, 7.0, 0, rng)
        m.update(seconds=time.time() - t)
        out["raw_policy_vs_random"] = m
    for k in ("mcts_vs_random", "mcts_vs_raw_policy", "raw_policy_vs_random"):
        if k in out:
            out[k].pop("results", None)
    out["targets"] = targets(out)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
