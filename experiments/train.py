"""The self-play training job: `python -m experiments.train [overrides]`.

A synchronous AlphaZero loop, one iteration at a time:

    collect: play `selfplay.games_per_iteration` games with the current net (batched MCTS)
    train:   add their positions to the replay window; a number of AdamW steps on it
    rate:    every `rating.every_iters` iterations (0 = never, the default) a quick Elo of the new
             net (experiments/iteration_rating.py: a few games against the nearest ladder rung), so
             that a sweep's pruner sees Elo per iteration
    record:  one line in metrics.jsonl, checkpoints/latest.pt, a few games/*.sgf

until the budget of WORK is spent: `budget.max_games` self-play games (the last iteration is cut
to hit it exactly), `budget.max_steps` optimizer steps and/or `budget.max_iterations`. The same
config and seed do the same games and steps whatever the machine's load; the wall clock plays no
part in what is computed. `budget.wall_clock_s` is only a safety limit on the warm start and the
loop: past it the job stops as `timeout`. Then the final net is rated against the reference
ladder when `rating.at_end` (the rating group is experiments/rate_checkpoint.py's; the research loop passes
`rating.at_end=false` and lets the referee rate the checkpoint) and `summary.json` is written last.

Starting points (go_core/learn/warmstart.py): a fresh run applies `train.warm_start` first.
`train.warm_start.only=true` stops right after it (checkpoints + summary, no self-play): a
question trains its shared start once so, and its nodes begin from it with
`train.warm_start.init_checkpoint=<that run>/checkpoints/best.pt`, which skips the other warm-start
steps, so that a node and its parent with the same seed play the same first games.

Run directory (DESIGN.md): `.hydra/` (Hydra), `log.txt`, `metrics.jsonl`, `progress.json` (live
progress; contract in experiments/rundir.py), `checkpoints/latest.pt`
(net, optimizer, schedule, replay window, counters, RNG states: a killed run started again with
the same `hydra.run.dir` resumes at the next iteration and plays exactly what it would have),
`checkpoints/best.pt` (the net to play and rate; no gating: it is the newest net, without the
training state), `games/*.sgf`, `summary.json` (its metrics hold the games and steps done).

Statuses: `ok` when the loop ends by its budget of work (`budget_note` says which part);
`invalid` when the config does not fit the schema (nothing ran; exit 2); `crash` with the
traceback on an exception (exit 1); `timeout` when the wall-clock safety limit is reached or the
job is stopped from outside by SIGTERM/SIGINT (exit 124).

The run's state and one iteration of it are experiments/training_run.py; this module is the job.
"""
from __future__ import annotations

import logging
import resource
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from experiments.config import ConfigError, validate
from experiments.iteration_rating import is_due, maybe_rate
from experiments.progress import ProgressReporter
from experiments.rundir import append_metrics, read_metrics, write_summary
from experiments.stop import Stopped, request_stop, stop_in
from experiments.training_run import TrainingRun, budget_totals, plan_iteration

log = logging.getLogger("tengen.train")


def _stop_on_signal(signum, frame):
    request_stop(f"stopped by signal {signal.Signals(signum).name}")


def arm_wall_clock_limit(seconds: float, describe: Callable[[], str]) -> None:
    """Raise Stopped in the main thread after `seconds` (SIGALRM; at the end of a checkpoint write
    when it fires during one: experiments/stop.py): the safety limit. The clock
    never shortens the work; it only ends a job that is far slower than its budget assumes."""
    def expired(signum, frame):
        request_stop(f"wall-clock safety limit of budget.wall_clock_s={seconds:g} s reached after "
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


def _rate_at_end(cfg: DictConfig, checkpoint: Path, run_dir: Path) -> dict:
    if not cfg.get("rating") or not OmegaConf.select(cfg, "rating.at_end", default=True):
        return {}
    from experiments.rate_checkpoint import rate_checkpoint

    log.info("evaluating %s against the reference ladder", checkpoint)
    return rate_checkpoint(cfg.rating, checkpoint, run_dir, board_size=cfg.board.size, komi=cfg.board.komi,
                               device=cfg.device, log=log.info)


def _start_tracking(cfg: DictConfig, run_dir: Path):
    from experiments.tracking import start_tracking

    try:
        return start_tracking(cfg.get("tracking"), run_dir, OmegaConf.to_container(cfg, resolve=True))
    except Exception as e:  # noqa: BLE001 - tracking must never fail a run
        log.warning("tracking off: %s", e)
        return None


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
    old_handlers = {s: signal.signal(s, _stop_on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
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
        last_elo = None   # the last quick Elo of experiments/iteration_rating.py (rating.every_iters)
        note = "warm start only (train.warm_start.only=true): no self-play" if ws.only else None
        while not ws.only:
            games, note = plan_iteration(cfg, training)
            if not games:
                break
            t_it = time.time()
            m = training.iterate(games, progress)
            progress.iteration_done()
            due = is_due(cfg.rating, training.iteration)
            if due:  # the quick rating plays this iteration's best.pt
                training.save(wall(), cpu())
                progress.phase("rating")
            quick = maybe_rate(cfg, run_dir, training.iteration, run_dir / "checkpoints" / "best.pt",
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
        if not ws.only and cfg.get("rating") and OmegaConf.select(cfg, "rating.at_end", default=True):
            progress.phase("rating")
            metrics.update(_rate_at_end(cfg, run_dir / "checkpoints" / "best.pt", run_dir))
    except Stopped as e:
        status, error, exit_code = "timeout", str(e), 124
        log.error("%s", e)
    except Exception as e:  # noqa: BLE001 - any failure becomes a `crash` summary with its traceback
        stop = stop_in(e)
        if stop is not None:   # a stop that a library's clean-up hid behind its own error
            status, error, exit_code = "timeout", str(stop), 124
            log.error("%s (it surfaced as %s: %s)", stop, type(e).__name__, e)
        else:
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
