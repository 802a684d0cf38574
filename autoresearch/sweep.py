"""`research sweep conf/sweep/NAME.yaml`: an Optuna study whose trials are experiment-tree nodes.

    research sweep conf/sweep/lr_cpuct.yaml --trials 12 --workers 2
    research sweep conf/sweep/lr_cpuct.yaml --storage postgresql://user:pw@db/tengen   # many machines
    research sweep conf/sweep/lr_cpuct.yaml --workers 4 --launcher slurm --partition gpu  # trials as SLURM jobs

One study per sweep file (its `name`), in an Optuna journal file in the workspace or any SQLAlchemy
URL (autoresearch/sweep_storage.py, with the heartbeats that reclaim the trials of dead workers).
Each worker process loops: fail the stale trials of dead workers, then run one trial
(autoresearch/sweep_trial.py: a `sweep-trial` node, its job through autoresearch/jobs, pruning
from its `metrics.jsonl`, the study told). `--trials N` runs N more trials (split among the
workers); running the command again continues the same study.

This module is the worker pool and the CLI (`research sweep`, `python -m autoresearch.sweep`).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import signal
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoresearch.search_space import SweepSpec, SweepSpecError, load_sweep, make_sampler
from autoresearch.sweep_storage import (default_storage, fail_stale_trials, is_rdb_url,
                                        open_study, rdb_url_with_driver)
from autoresearch.sweep_trial import run_trial

QUESTION_PREFIX = "[sweep "          # question text: "[sweep NAME] description"
POLL_S = 0.5                         # how often a worker looks at a running trial


@dataclass
class WorkerOptions:
    """What one worker process needs (picklable: workers are started with `spawn`)."""
    sweep_path: str                  # the sweep YAML (each worker loads it again)
    storage: str                     # Optuna storage URL or journal file path
    workspace: str                   # the workspace folder (tree.db, runs/)
    question_id: int                 # the sweep's question in the tree
    trials: int                      # trials this worker runs
    repo_root: str                   # the git repository whose HEAD each trial runs
    worker: int = 0                  # worker index, for log lines
    job_module: str | None = None    # overrides the sweep file's job.module
    wall_clock_s: float | None = None  # overrides the sweep file's job.wall_clock_s
    poll_s: float = POLL_S
    extra_env: dict[str, str] = field(default_factory=dict)
    launcher: str = "local"          # local | slurm | submitit-local (autoresearch/jobs)
    slurm: Any = None                # agent_config.SlurmConfig for the cluster launchers


# --------------------------------------------------------------------------- the tree

def sweep_question(store, spec: SweepSpec, storage: str) -> int:
    """The sweep's question row (one per sweep name per workspace), created on first use."""
    prefix = f"{QUESTION_PREFIX}{spec.name}]"
    for q in store.questions():
        if q.text.startswith(prefix):
            return q.id
    text = f"{prefix} {spec.description or 'Optuna sweep ' + (spec.path or spec.name)}"
    return store.add_question(text, {"sweep": spec.name, "sweep_file": spec.path,
                                     "storage": storage, "objectives": spec.objectives,
                                     "directions": spec.directions})


# --------------------------------------------------------------------------- workers

def _raise_interrupt(signum, frame):
    # once: further Ctrl-C / SIGTERM must not cut the clean-up (kill the job, fail the trial)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def worker_main(opts: WorkerOptions) -> int:
    """One worker: `opts.trials` trials, one after the other. Returns 0, or 1 on a worker error."""
    import optuna
    from experiment_tree.workspace import Workspace

    # Ctrl-C / SIGTERM: kill the running job, fail its trial, then stop (handlers restored after)
    previous = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGTERM, signal.SIGINT)}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_sweep(opts.sweep_path)   # checked by the parent already
    store = None
    try:
        store = Workspace(opts.workspace).store()
        study = open_study(spec, opts.storage, create=False)
        if spec.sampler.get("seed") is not None:
            # Workers (and later invocations) with one seed would draw the same points: give
            # each its own stream, reproducible from the sweep seed, the worker and the study size.
            seed = (int(spec.sampler["seed"]) + 1000 * opts.worker
                    + len(study.get_trials(deepcopy=False)))
            study.sampler = make_sampler(spec, seed=seed)
        for _ in range(opts.trials):
            t0 = time.time()
            # trials of dead workers: failed (and queued again) before this worker asks for one
            fail_stale_trials(study, spec, store, opts.question_id, opts.repo_root, opts.workspace,
                              opts.worker)
            r = run_trial(study, spec, store, opts.question_id, opts)
            shown = "" if r["values"] is None else " " + ", ".join(
                f"{k}={v:g}" for k, v in zip(spec.objectives, r["values"]))
            print(f"[sweep {spec.name} worker {opts.worker}] trial {r['trial']} (node {r['node']}):"
                  f" {r['status']}{shown} ({time.time() - t0:.1f} s)", flush=True)
    except KeyboardInterrupt:
        print(f"[sweep {spec.name} worker {opts.worker}] interrupted", flush=True)
        return 130
    except Exception:   # storage or sandbox trouble: the trial was failed; say why and stop
        import traceback
        print(f"[sweep {spec.name} worker {opts.worker}] stopped by an error:\n"
              f"{traceback.format_exc()}", file=sys.stderr, flush=True)
        return 1
    finally:
        if store is not None:
            store.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _worker_entry(opts: WorkerOptions) -> None:
    sys.exit(worker_main(opts))


def split_trials(total: int, workers: int) -> list[int]:
    """`total` trials over `workers` processes, as evenly as possible (no worker gets zero)."""
    workers = max(1, min(workers, total)) if total > 0 else 0
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


def run_sweep(spec_path: str | Path, *, trials: int | None = None, workers: int = 1,
              workspace: str | Path | None = None, storage: str | None = None,
              repo_root: str | Path | None = None, job_module: str | None = None,
              wall_clock_s: float | None = None, poll_s: float = POLL_S,
              extra_env: dict[str, str] | None = None, launcher: str = "local",
              slurm=None) -> dict[str, Any]:
    """Run a sweep (the CLI's body); returns a summary dict (also printed by `main`)."""
    from experiment_tree.workspace import Workspace
    from autoresearch.jobs.worktrees import repo_toplevel

    spec = load_sweep(spec_path)
    ws = Workspace(workspace)
    storage = storage or default_storage(ws.root)
    repo = repo_toplevel(Path(repo_root) if repo_root else Path(__file__).resolve().parents[1])
    total = spec.trials if trials is None else int(trials)
    study = open_study(spec, storage, create=True)
    with ws.store() as store:
        qid = sweep_question(store, spec, storage)
    if not study.trials:   # points to try first (e.g. the defaults), only in a new study
        for params in spec.enqueue:
            study.enqueue_trial(params, skip_if_exists=True)
    study.set_user_attr("sweep_file", str(spec.path))
    study.set_user_attr("objectives", spec.objectives)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")             # ExperimentalWarning
            study.set_metric_names(spec.objectives)     # the dashboard labels its axes with them
    except Exception:                                   # cosmetic only
        pass

    quotas = split_trials(total, workers)
    base = WorkerOptions(sweep_path=str(Path(spec.path).resolve()), storage=storage,
                         workspace=str(ws.root), question_id=qid, trials=0, repo_root=str(repo),
                         job_module=job_module, wall_clock_s=wall_clock_s, poll_s=poll_s,
                         extra_env=dict(extra_env or {}), launcher=launcher, slurm=slurm)
    opts = [WorkerOptions(**{**base.__dict__, "trials": n, "worker": i}) for i, n in enumerate(quotas)]
    print(f"research sweep: study {spec.name!r} in {storage}; {total} trial(s) on "
          f"{len(opts)} worker(s); nodes under question {qid} of {ws.tree_db}", flush=True)
    exit_codes: list[int] = []
    if len(opts) == 1:
        exit_codes.append(worker_main(opts[0]))
    elif opts:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_worker_entry, args=(o,), name=f"sweep-worker-{o.worker}")
                 for o in opts]
        for p in procs:
            p.start()
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)   # `kill` = Ctrl-C
        try:
            for p in procs:
                p.join()
        except KeyboardInterrupt:
            # Ctrl-C reached the workers too; give them time to kill their jobs and fail their
            # trials, then SIGTERM the ones that did not notice (e.g. after `kill` of this process)
            deadline = time.time() + 5
            for p in procs:
                p.join(timeout=max(0.1, deadline - time.time()))
            for p in procs:
                if p.is_alive():
                    p.terminate()
            for p in procs:
                p.join(timeout=60)
        finally:
            signal.signal(signal.SIGTERM, previous)
        exit_codes = [p.exitcode if p.exitcode is not None else -1 for p in procs]
    return summarize(spec, storage, qid, ws, exit_codes)


def summarize(spec: SweepSpec, storage: str, question_id: int, ws, exit_codes: list[int]) -> dict:
    study = open_study(spec, storage, create=False)
    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    best = []
    try:
        best_trials = study.best_trials
    except ValueError:
        best_trials = []
    for t in best_trials[:10]:
        best.append({"trial": t.number, "node": t.user_attrs.get("node_id"),
                     "values": dict(zip(spec.objectives, t.values)), "params": t.params})
    return {"study": spec.name, "storage": storage, "question_id": question_id,
            "tree": str(ws.tree_db), "trials": len(trials), "states": counts,
            "best": best, "worker_exit_codes": exit_codes}


def dashboard_hint(storage: str) -> str:
    """The command that opens the study in optuna-dashboard (http://127.0.0.1:8080)."""
    if is_rdb_url(storage):
        return f"optuna-dashboard {rdb_url_with_driver(storage)}"
    return f"optuna-dashboard {storage}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="research sweep", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", help="a sweep file, e.g. conf/sweep/lr_cpuct.yaml (or just lr_cpuct)")
    p.add_argument("--trials", type=int, default=None,
                   help="trials to run now, over all workers (default: the file's `trials`)")
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the study")
    p.add_argument("--workspace", default=None,
                   help="workspace folder with tree.db and runs/ (default ./workspace or $TENGEN_WORKSPACE)")
    p.add_argument("--storage", default=None,
                   help="Optuna storage: an RDB URL (sqlite:///x.db, postgresql://u:p@host/db) or a "
                        "journal file path (default: WORKSPACE/optuna-journal.log)")
    p.add_argument("--repo", default=None, help="git repository the trials run from (default: this one)")
    p.add_argument("--job-module", default=None,
                   help="python -m MODULE runs a trial (default: the file's job.module, experiments.train)")
    p.add_argument("--wall-clock-s", type=float, default=None,
                   help="kill a trial after this many seconds (default: the file's job.wall_clock_s)")
    p.add_argument("--launcher", choices=("local", "slurm", "submitit-local"), default="local",
                   help="where trials run: local (subprocesses here) or slurm (each trial one "
                        "SLURM job, submitted as `research run --launcher slurm` submits nodes)")
    p.add_argument("--partition", default=None,
                   help="with --launcher slurm: the SLURM partition (agent YAML slurm.partition)")
    p.add_argument("--agent-config", default=None,
                   help="agent YAML whose `slurm:` block sets the trials' SLURM resources "
                        "(default: conf/agent/default.yaml)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workers < 1:
        print("research sweep: --workers must be at least 1", file=sys.stderr)
        return 2
    slurm = None
    if args.launcher != "local":
        from autoresearch.agent_config import load_agent_config
        slurm = load_agent_config(args.agent_config).slurm
        if args.partition:
            slurm.partition = args.partition
    try:
        out = run_sweep(args.sweep, trials=args.trials, workers=args.workers,
                        workspace=args.workspace, storage=args.storage, repo_root=args.repo,
                        job_module=args.job_module, wall_clock_s=args.wall_clock_s,
                        launcher=args.launcher, slurm=slurm)
    except SweepSpecError as e:
        print(f"research sweep: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2, default=str))
    print(f"open the study: {dashboard_hint(out['storage'])}", file=sys.stderr)
    return 0 if all(c == 0 for c in out["worker_exit_codes"]) else 1


if __name__ == "__main__":
    sys.exit(main())
