"""One training run's state and one iteration of it: `TrainingRun` (the net, optimizer, replay
window, counters and RNGs; its checkpoint, written and resumed), and the work each iteration does
-- its self-play games (`plan_iteration`) and optimizer steps (`steps_for_iteration`), fixed by
the budget of work, never by the clock. experiments/train.py is the job around it (signals, the
safety limit, logging, the rating at the end, summary.json). A node may change both files.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import asdict
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from experiments.progress import ProgressReporter
from experiments.rundir import read_metrics


class TrainingRun:
    """Everything the loop carries from one iteration to the next, and its checkpoint."""

    def __init__(self, cfg: DictConfig, run_dir: Path):
        import numpy as np
        import torch
        from go_core.learn.evaluators import NetEvaluator
        from go_core.learn.mcts import BatchedMCTS
        from go_core.learn.net import PolicyValueNet, NetConfig, select_device
        from go_core.learn.replay import ReplayBuffer
        from go_core.learn.training import make_optimizer

        self.cfg = cfg
        self.run_dir = run_dir
        self.ckpt_dir = run_dir / "checkpoints"
        self.games_dir = run_dir / "games"
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.games_dir.mkdir(parents=True, exist_ok=True)
        self.device = select_device(cfg.device)
        if cfg.train.torch_threads > 0:
            torch.set_num_threads(cfg.train.torch_threads)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.torch_gen = torch.Generator().manual_seed(cfg.seed)

        model = {k: v for k, v in OmegaConf.to_container(cfg.model).items() if k != "name"}
        self.net = PolicyValueNet(NetConfig.from_dict(model)).to(self.device)
        self.opt, self.sched = make_optimizer(self.net, cfg.train)
        self.buffer = ReplayBuffer(cfg.train.replay_samples, cfg.train.replay_games or None)
        # the learner's own config classes, as validated (experiments/config.py composes them)
        self.mcts_cfg = OmegaConf.to_object(cfg.mcts)            # go_core.learn.mcts.MCTSConfig
        self.selfplay_cfg = OmegaConf.to_object(cfg.selfplay)    # go_core.learn.selfplay.SelfPlayConfig
        self.evaluator = NetEvaluator(self.net, self.device, max_batch=self.mcts_cfg.max_batch)
        self.searcher = BatchedMCTS(self.evaluator, self.mcts_cfg, self.rng)
        self.iteration = 0
        self.step = 0
        self.games = 0
        self.prior_wall_s = 0.0    # time spent in earlier lives of this run (before a resume)
        self.prior_cpu_s = 0.0
        self.gpu_s = 0.0
        self.resumed_from: int | None = None
        self.warm_start: dict = {}

    # -- checkpoints
    def save(self, wall_s: float, cpu_s: float) -> None:
        """Write checkpoints/latest.pt and best.pt; a stop signal waits until both are written."""
        from experiments.stop import stops_deferred
        with stops_deferred():
            self._save(wall_s, cpu_s)

    def _save(self, wall_s: float, cpu_s: float) -> None:
        import numpy as np
        import torch
        from go_core.learn.net import save_checkpoint
        rng_state = {"numpy": self.rng.bit_generator.state, "torch_gen": self.torch_gen.get_state(),
                     "torch": torch.get_rng_state(), "python": random.getstate(),
                     "np_global": np.random.get_state()}
        if torch.cuda.is_available():
            rng_state["cuda"] = torch.cuda.get_rng_state_all()
        save_checkpoint(self.ckpt_dir / "latest.pt", self.net, board_size=self.cfg.board.size, step=self.step,
                        optimizer=self.opt.state_dict(), scheduler=self.sched.state_dict(),
                        replay=self.buffer.state_dict(), iteration=self.iteration, games=self.games,
                        rng=rng_state, wall_s=wall_s, cpu_s=cpu_s, gpu_s=self.gpu_s,
                        warm_start=self.warm_start, config=OmegaConf.to_container(self.cfg, resolve=True),
                        mcts=asdict(self.mcts_cfg))
        # the search settings travel with the net: a rating plays it with them (mcts_config.search_config_from)
        save_checkpoint(self.ckpt_dir / "best.pt", self.net, board_size=self.cfg.board.size, step=self.step,
                        iteration=self.iteration, games=self.games, mcts=asdict(self.mcts_cfg))

    def resume(self, path: Path) -> None:
        import numpy as np
        import torch
        from go_core.learn.net import check_board_size, load_checkpoint
        net, meta = load_checkpoint(path, self.device)
        check_board_size(meta, self.cfg.board.size, f"checkpoint '{path}'")
        if net.cfg != self.net.cfg:   # NetConfig equality: a field left out while off reads back as off
            raise ValueError(f"checkpoint '{path}' holds a net {meta['model_config']}, but this run's model "
                             f"group asks for {self.net.cfg.__dict__}; resume with the same overrides or "
                             f"use a new hydra.run.dir")
        self.net.load_state_dict(net.state_dict())
        self.opt.load_state_dict(meta["optimizer"])
        self.sched.load_state_dict(meta["scheduler"])
        self.buffer.load_state_dict(meta["replay"])
        self.iteration, self.step, self.games = int(meta["iteration"]), int(meta["step"]), int(meta["games"])
        self.prior_wall_s, self.prior_cpu_s = float(meta["wall_s"]), float(meta["cpu_s"])
        self.gpu_s = float(meta.get("gpu_s", 0.0))
        self.warm_start = meta.get("warm_start", {})
        r = meta["rng"]
        self.rng.bit_generator.state = r["numpy"]
        self.torch_gen.set_state(r["torch_gen"])
        torch.set_rng_state(r["torch"])
        random.setstate(r["python"])
        np.random.set_state(r["np_global"])
        if "cuda" in r and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(r["cuda"])
        self.resumed_from = self.iteration
        # metrics of iterations after the checkpoint were never checkpointed: they will be redone
        kept = [m for m in read_metrics(self.run_dir) if m.get("iteration", 0) <= self.iteration]
        from experiments.rundir import atomic_write_text
        import json
        atomic_write_text(self.run_dir / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in kept))

    def save_sample(self, finished: list, samples) -> None:
        """A few self-play games with their training targets, for the referee's health checks
        (experiments/rundir.py: `selfplay_sample.jsonl`); capped per job, so it stays small."""
        from experiments.rundir import SAMPLE_MAX_GAMES, SELFPLAY_SAMPLE, append_jsonl
        from go_core.learn.selfplay import sample_record
        path = self.run_dir / SELFPLAY_SAMPLE
        have = len(path.read_text().splitlines()) if path.is_file() else 0
        if samples is None:
            return
        for g in finished[: max(0, SAMPLE_MAX_GAMES - have)]:
            append_jsonl(path, sample_record(g, samples))

    # -- one iteration
    def iterate(self, games: int, progress: ProgressReporter | None = None) -> dict:
        """One collect -> train iteration of `games` self-play games; its optimizer steps are
        `steps_for_iteration` (a function of the budget, the config and the samples: never of time)."""
        from go_core.learn.selfplay import play_games, save_sgf
        from go_core.learn.training import train_steps
        cfg = self.cfg
        sp = self.selfplay_cfg
        self.net.eval()
        if progress is not None:
            progress.selfplay(self.iteration + 1, games, lambda: self.searcher.simulations)
        samples, finished, stats = play_games(games, self.searcher, sp, self.rng, size=cfg.board.size,
                                              komi=cfg.board.komi, first_index=self.games,
                                              on_game=progress.game_finished if progress else None)
        self.games += stats.games
        if samples is not None:
            self.buffer.add(samples)
        for g in finished[: sp.sgf_games_per_iteration]:
            save_sgf(g, self.games_dir / f"selfplay_it{self.iteration + 1:04d}_g{g.index:06d}.sgf")
        self.save_sample(finished, samples)
        t_train = time.perf_counter()
        tc = cfg.train
        n_steps = steps_for_iteration(cfg, self.step, self.games, stats.samples)
        if progress is not None:
            progress.training(self.games, n_steps, stats.wall_s)
        # one step at a time, so progress sees each; the same batches and means as train_steps(n)
        totals: dict[str, float] = {}
        for _ in range(n_steps):
            for k, v in train_steps(self.net, self.opt, self.sched, self.buffer, 1, tc.batch_size, tc,
                                    self.device, self.rng, self.torch_gen).items():
                totals[k] = totals.get(k, 0.0) + v
            self.step += 1
            if progress is not None:
                progress.step_done(self.step)
        train = {k: v / max(1, n_steps) for k, v in totals.items()}
        self.net.eval()
        train_s = time.perf_counter() - t_train
        if self.device.type == "cuda":
            self.gpu_s += stats.wall_s + train_s
        self.iteration += 1
        m = stats.as_metrics()
        m.update({"step": self.step, "iteration": self.iteration, "train_steps": n_steps, "train_s": train_s,
                  "policy_loss": train.get("policy_loss"), "value_loss": train.get("value_loss"),
                  "loss": train.get("loss"), "policy_acc": train.get("policy_acc"), "lr": train.get("lr"),
                  "grad_norm": train.get("grad_norm"), "replay_samples": len(self.buffer),
                  "games_total": self.games})
        # KataGo's auxiliary targets, when their heads are on (model.ownership_head / score_head)
        m.update({k: train[k] for k in ("ownership_loss", "score_loss") if train.get(k) is not None})
        return m


def plan_iteration(cfg: DictConfig, run: TrainingRun) -> tuple[int, str | None]:
    """How many self-play games the next iteration plays, or (0, why the loop stops now): a full
    `games_per_iteration`, except the last one, cut to end exactly at `budget.max_games`."""
    b = cfg.budget
    games = int(cfg.selfplay.games_per_iteration)
    if b.max_iterations and run.iteration >= b.max_iterations:
        return 0, f"iteration budget reached ({run.iteration} iterations)"
    if b.max_steps and run.step >= b.max_steps:
        return 0, f"step budget reached ({run.step} optimizer steps, {run.games} games)"
    if b.max_games:
        if run.games >= b.max_games:
            return 0, f"game budget reached ({run.games} games, {run.step} optimizer steps)"
        games = min(games, b.max_games - run.games)
    return games, None


def steps_for_iteration(cfg: DictConfig, steps_so_far: int, games_after: int, samples: int) -> int:
    """Optimizer steps of an iteration that ends with `games_after` games played in all and added
    `samples` positions. With both `budget.max_steps` and `budget.max_games`, the step budget is
    spread in proportion to the games (exactly max_steps at max_games, whatever the iteration sizes;
    train.steps_per_iteration/sample_reuse/max_steps_per_iteration are then unused). Otherwise as
    the train group says (fixed, or sample_reuse * samples / batch_size capped), and never past
    `budget.max_steps`."""
    b, tc = cfg.budget, cfg.train
    if b.max_steps and b.max_games:
        return max(0, b.max_steps * min(games_after, b.max_games) // b.max_games - steps_so_far)
    n = tc.steps_per_iteration or min(tc.max_steps_per_iteration,
                                      max(1, math.ceil(tc.sample_reuse * samples / tc.batch_size)))
    if b.max_steps:
        n = min(n, b.max_steps - steps_so_far)
    return max(0, n)


def budget_totals(cfg: DictConfig) -> tuple[int | None, int | None]:
    """(games, optimizer steps) the whole job does, where the budget fixes them (None: not known
    in advance, e.g. steps derived from the samples)."""
    b = cfg.budget
    games = b.max_games or (b.max_iterations * cfg.selfplay.games_per_iteration if b.max_iterations else 0)
    if b.max_iterations and b.max_games:
        games = min(b.max_games, b.max_iterations * cfg.selfplay.games_per_iteration)
    steps = b.max_steps or (b.max_iterations * cfg.train.steps_per_iteration if b.max_iterations else 0)
    return games or None, steps or None
