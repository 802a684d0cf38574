"""The self-play training job: `python -m experiments.train [overrides]`.

A synchronous AlphaZero loop, one iteration at a time:

    collect: play `selfplay.games_per_iteration` games with the current net (batched MCTS)
    train:   add their positions to the replay window; a number of AdamW steps on it
    rate:    every `eval.every_iters` iterations (0 = never, the default) a quick Elo of the new
             net (experiments/iteration_eval.py: a few games against the nearest ladder rung), so
             that a sweep's pruner sees Elo per iteration
    record:  one line in metrics.jsonl, checkpoints/latest.pt, a few games/*.sgf

until the budget of WORK is spent: `budget.max_games` self-play games (the last iteration is cut
to hit it exactly), `budget.max_steps` optimizer steps and/or `budget.max_iterations`. The same
config and seed do the same games and steps whatever the machine's load; the wall clock plays no
part in what is computed. `budget.wall_clock_s` is only a safety limit on the warm start and the
loop: past it the job stops as `timeout`. Then the final net is evaluated against the reference
ladder when `eval.at_end` (the eval group is experiments/evaluate.py's; the research loop passes
`eval.at_end=false` and lets the referee rate the checkpoint) and `summary.json` is written last.

Starting points (go_core/learn/warmstart.py): a fresh run applies `train.warm_start` first.
`train.warm_start.only=true` stops right after it (checkpoints + summary, no self-play): a
question trains its shared start once so, and its nodes begin from it with
`train.warm_start.init_checkpoint=<that run>/checkpoints/best.pt`, which skips the other warm-start
steps, so that a node and its parent with the same seed play the same first games.

Run directory (DESIGN.md): `.hydra/` (Hydra), `log.txt`, `metrics.jsonl`, `progress.json` (live
progress; contract in experiments/rundir.py), `checkpoints/latest.pt`
(net, optimizer, schedule, replay window, counters, RNG states: a killed run started again with
the same `hydra.run.dir` resumes at the next iteration and plays exactly what it would have),
`checkpoints/best.pt` (the net to play and evaluate; no gating: it is the newest net, without the
training state), `games/*.sgf`, `summary.json` (its metrics hold the games and steps done).

Statuses: `ok` when the loop ends by its budget of work (`budget_note` says which part);
`invalid` when the config does not fit the schema (nothing ran; exit 2); `crash` with the
traceback on an exception (exit 1); `timeout` when the wall-clock safety limit is reached or the
job is stopped from outside by SIGTERM/SIGINT (exit 124).
"""
from __future__ import annotations

import logging
import math
import random
import resource
import signal
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from experiments.config import ConfigError, validate
from experiments.iteration_eval import is_due, maybe_evaluate
from experiments.progress import ProgressReporter
from experiments.rundir import append_metrics, read_metrics, write_summary
from experiments.stop import Stopped

log = logging.getLogger("tengen.train")


def _raise_stopped(signum, frame):
    raise Stopped(f"stopped by signal {signal.Signals(signum).name}")


def arm_wall_clock_limit(seconds: float, describe: Callable[[], str]) -> None:
    """Raise Stopped in the main thread after `seconds` (SIGALRM): the safety limit. The clock
    never shortens the work; it only ends a job that is far slower than its budget assumes."""
    def expired(signum, frame):
        raise Stopped(f"wall-clock safety limit of budget.wall_clock_s={seconds:g} s reached after "
                      f"{describe()}: the machine is slower or busier than this budget allows; raise "
                      f"budget.wall_clock_s or choose a smaller budget")
    signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))


def disarm_wall_clock_limit() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)


def _setup_logging(run_dir: Path) -> None:
    handler = logging.FileHandler(run_dir / "log.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in root.handlers):
        root.addHandler(logging.StreamHandler(sys.stdout))


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


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
        # the search settings travel with the net: a rating plays it with them (mcts.search_config_from)
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


def _evaluate_at_end(cfg: DictConfig, checkpoint: Path, run_dir: Path) -> dict:
    if not cfg.get("eval") or not OmegaConf.select(cfg, "eval.at_end", default=True):
        return {}
    from experiments.evaluate import evaluate_checkpoint

    log.info("evaluating %s against the reference ladder", checkpoint)
    return evaluate_checkpoint(cfg.eval, checkpoint, run_dir, board_size=cfg.board.size, komi=cfg.board.komi,
                               device=cfg.device, log=log.info)


def _start_tracking(cfg: DictConfig, run_dir: Path):
    from experiments.tracking import start_tracking

    try:
        return start_tracking(cfg.get("tracking"), run_dir, OmegaConf.to_container(cfg, resolve=True))
    except Exception as e:  # noqa: BLE001 - tracking must never fail a run
        log.warning("tracking off: %s", e)
        return None


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


def run(cfg: DictConfig, run_dir: Path) -> int:
    """The job; returns the process exit code. `summary.json` is always written last."""
    t0 = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    _setup_logging(run_dir)
    try:
        cfg = validate(cfg)
    except ConfigError as e:
        log.error("%s", e)
        write_summary(run_dir, "invalid", error=str(e), compute={"wall_s": time.time() - t0, "cpu_s": cpu_seconds(),
                                                                   "gpu_s": 0.0, "device": "none"})
        return 2
    old_handlers = {s: signal.signal(s, _raise_stopped) for s in (signal.SIGTERM, signal.SIGINT)}
    old_alarm = signal.getsignal(signal.SIGALRM)
    tracker = None
    training = None
    progress = None
    status, error, note, metrics, exit_code = "ok", None, None, {}, 0
    try:
        training = TrainingRun(cfg, run_dir)
        wall = lambda: training.prior_wall_s + (time.time() - t0)  # noqa: E731
        cpu = lambda: training.prior_cpu_s + cpu_seconds()  # noqa: E731
        games_budget, steps_budget = budget_totals(cfg)
        progress = ProgressReporter(run_dir, games_budget=games_budget, steps_budget=steps_budget, elapsed=wall)
        latest = run_dir / "checkpoints" / "latest.pt"
        resuming = latest.exists()
        if resuming:
            training.resume(latest)
            log.info("resumed from %s at iteration %d (step %d, %d games)", latest, training.iteration,
                     training.step, training.games)
        progress.state.update(games=training.games, steps_done=training.step, iteration=training.iteration)
        progress.start()
        if cfg.budget.wall_clock_s:
            arm_wall_clock_limit(cfg.budget.wall_clock_s - training.prior_wall_s,
                                 lambda: f"{training.games} games and {training.step} optimizer steps "
                                         f"(phase {progress.state['phase']})")
        ws = cfg.train.warm_start
        if not resuming:
            from go_core.learn.warmstart import apply_warm_start
            training.warm_start = apply_warm_start(training, ws, log=log.info)
        tracker = _start_tracking(cfg, run_dir)
        log.info("device %s, %d parameters, board %dx%d, budget %s: %s games, %s optimizer steps "
                 "(wall-clock safety limit: %s)", training.device,
                 sum(p.numel() for p in training.net.parameters()), cfg.board.size, cfg.board.size,
                 cfg.budget.name, games_budget or "?", steps_budget or "derived",
                 f"{cfg.budget.wall_clock_s:g} s" if cfg.budget.wall_clock_s else "none")
        last_elo = None   # the last quick Elo of experiments/iteration_eval.py (eval.every_iters)
        note = "warm start only (train.warm_start.only=true): no self-play" if ws.only else None
        while not ws.only:
            games, note = plan_iteration(cfg, training)
            if not games:
                break
            t_it = time.time()
            m = training.iterate(games, progress)
            progress.iteration_done()
            due = is_due(cfg.eval, training.iteration)
            if due:  # the quick evaluation plays this iteration's best.pt
                training.save(wall(), cpu())
                progress.phase("evaluation")
            quick = maybe_evaluate(cfg, run_dir, training.iteration, run_dir / "checkpoints" / "best.pt",
                                   last_elo, log.info)
            if quick:
                m.update(quick)
                last_elo = quick if "elo" in quick else last_elo
            m.update({"wall_s": wall(), "cpu_s": cpu(), "iteration_s": time.time() - t_it})
            append_metrics(run_dir, m)
            if tracker is not None:
                tracker.log(m, step=training.iteration)
            if not due and training.iteration % cfg.train.checkpoint_every == 0:
                training.save(wall(), cpu())
            log.info("iteration %d: %d games, %d steps, %d samples, policy %.3f value %.3f, %.0f sims/s, %.1f s",
                     training.iteration, m["games"], m["train_steps"], m["samples"],
                     m["policy_loss"] or float("nan"), m["value_loss"] or float("nan"), m["sims_per_s"],
                     m["iteration_s"])
        log.info("stopping: %s", note)
        training.save(wall(), cpu())
        disarm_wall_clock_limit()   # the limit covers the work of the budget, not the rating after it
        last = read_metrics(run_dir)
        final = last[-1] if last else {}
        metrics = {"iterations": training.iteration, "steps": training.step, "games": training.games,
                   "games_budget": games_budget, "steps_budget": steps_budget,
                   "samples": training.buffer.total_added, "policy_loss": final.get("policy_loss"),
                   "value_loss": final.get("value_loss"), "policy_acc": final.get("policy_acc"),
                   "sims_per_s": final.get("sims_per_s")}
        if not ws.only and cfg.get("eval") and OmegaConf.select(cfg, "eval.at_end", default=True):
            progress.phase("evaluation")
            metrics.update(_evaluate_at_end(cfg, run_dir / "checkpoints" / "best.pt", run_dir))
    except Stopped as e:
        status, error, exit_code = "timeout", str(e), 124
        log.error("%s", e)
    except Exception:  # noqa: BLE001 - any failure becomes a `crash` summary with its traceback
        status, error, exit_code = "crash", traceback.format_exc(), 1
        log.error("crash:\n%s", error)
    finally:
        disarm_wall_clock_limit()
        signal.signal(signal.SIGALRM, old_alarm)
        for s, h in old_handlers.items():
            signal.signal(s, h)
    if status != "ok" and training is not None:
        # what was done before the stop (the summary of a timeout says how far the budget got)
        metrics = {"iterations": training.iteration, "steps": training.step, "games": training.games}
    if progress is not None:
        progress.close(status)
    wandb_path = None
    if tracker is not None:
        try:
            tracker.finish(exit_code)
            wandb_path = tracker.run_path
        except Exception as e:  # noqa: BLE001
            log.warning("tracking finish failed: %s", e)
    device = str(training.device) if training else "cpu"
    compute = {"wall_s": (training.prior_wall_s if training else 0.0) + time.time() - t0,
               "cpu_s": (training.prior_cpu_s if training else 0.0) + cpu_seconds(),
               "gpu_s": training.gpu_s if training else 0.0, "device": device}
    best = run_dir / "checkpoints" / "best.pt"
    write_summary(run_dir, status, metrics=metrics, error=error, reference=metrics.get("reference"),
                  compute=compute, checkpoint=str(best) if best.exists() else None,
                  budget_note=note, resumed_from_iteration=training.resumed_from if training else None,
                  warm_start=training.warm_start if training else None, wandb_path=wandb_path)
    return exit_code


@hydra.main(version_base=None, config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    code = run(cfg, Path(HydraConfig.get().runtime.output_dir))
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
