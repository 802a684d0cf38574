"""`research sweep conf/sweep/NAME.yaml`: an Optuna study whose trials are experiment-tree nodes.

    research sweep conf/sweep/lr_cpuct.yaml --trials 12 --workers 2
    research sweep conf/sweep/lr_cpuct.yaml --storage postgresql://user:pw@db/tengen   # many machines
    research sweep conf/sweep/lr_cpuct.yaml --workers 4 --launcher slurm --partition gpu  # trials as SLURM jobs

One study per sweep file (its `name`). Storage: by default an Optuna journal file in the workspace
(`W/optuna-journal.log`, guarded by a file lock, so several processes on one machine -- or on a
shared disk -- share it); any SQLAlchemy URL (`sqlite:///...`, `postgresql://...`) works too.

Each worker process loops: ask a trial -> add a `sweep-trial` node -> run the job through
autoresearch/jobs, the launcher `research run` sends its nodes through (its own worktree, sandbox
and wall-clock limit; a process here, or with `--launcher slurm` a SLURM job) -> while
it runs, read new lines of its `metrics.jsonl` and `trial.report(<intermediate>, step)`; when the pruner says so, kill the
job and mark the node `pruned` -> tell the study. A trial that crashes, times out or is refused
is told as FAIL and its node keeps the run's status and error, so every trial is in the study and
in the tree exactly once. `--trials N` runs N more trials (split among the workers); running the
command again continues the same study.

Heartbeats (the sweep file's `heartbeat`, on by default): while a trial runs, its worker records a
heartbeat every `interval_s`. A worker whose machine dies leaves its trial RUNNING; the next worker
that starts or asks for a trial fails every trial silent for more than `grace_s`, marks its node
`interrupted` (jobs.reclaim: the orphaned job killed, or its SLURM job cancelled) and queues the
same parameters again as a new trial (`max_retry` times at most). RDB storages use Optuna's own
heartbeat table; the journal file, which has none in Optuna, keeps the heartbeat as a system
attribute of the trial.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import signal
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoresearch.search_space import (HeartbeatSpec, SweepSpec, SweepSpecError, load_sweep,
                                       make_pruner, make_sampler, objective_values,
                                       suggest_overrides)

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


# --------------------------------------------------------------------------- storage

def is_rdb_url(storage: str) -> bool:
    return "://" in storage and not storage.startswith("file://")


def rdb_url_with_driver(url: str) -> str:
    """`postgresql://` with the driver that is installed: SQLAlchemy >= 2.1 assumes psycopg 3,
    while `tengen[cluster]` installs psycopg2; an explicit `postgresql+driver://` is kept."""
    import importlib.util

    if url.startswith(("postgresql://", "postgres://")):
        rest = url.split("://", 1)[1]
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
            return "postgresql+psycopg2://" + rest
        return "postgresql://" + rest
    return url


def default_storage(workspace: str | Path) -> str:
    from experiment_tree.workspace import Workspace
    return str(Workspace(workspace).sweep_journal)


def _retry_callback(heartbeat: HeartbeatSpec):
    """Optuna's callback that queues a stale trial's parameters again (renamed in Optuna 4.9)."""
    import optuna

    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) \
        or optuna.storages.RetryFailedTrialCallback
    if heartbeat.max_retry <= 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # ExperimentalWarning
        return cls(max_retry=heartbeat.max_retry)


def make_storage(storage: str, heartbeat: HeartbeatSpec | None = None):
    """An Optuna storage from a URL (RDB) or a path (journal file with a file lock), with
    heartbeats (stale trials failed and retried) unless `heartbeat` is None."""
    import inspect
    import optuna

    if is_rdb_url(storage):
        storage = rdb_url_with_driver(storage)
        # pool_pre_ping: a worker survives a database restart or an idle connection being dropped
        kwargs: dict[str, Any] = {}
        if not storage.startswith("sqlite"):
            kwargs["engine_kwargs"] = {"pool_pre_ping": True}
        if heartbeat is not None:
            callback = _retry_callback(heartbeat)
            name = ("heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback"
                    in inspect.signature(optuna.storages.RDBStorage).parameters else "failed_trial_callback")
            kwargs.update(heartbeat_interval=heartbeat.interval_s, grace_period=heartbeat.grace_s,
                          **{name: callback})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")         # ExperimentalWarning of the heartbeat
                return optuna.storages.RDBStorage(storage, **kwargs)
        except ImportError as e:
            raise SystemExit(f"research sweep: the driver for {storage.split('://')[0]} is missing "
                             f"({e}); for PostgreSQL: pip install psycopg2-binary") from None
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
    path = storage[len("file://"):] if storage.startswith("file://") else storage
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    backend = JournalFileBackend(path, lock_obj=JournalFileOpenLock(path))
    if heartbeat is None:
        return optuna.storages.JournalStorage(backend)
    return heartbeat_journal_storage(backend, heartbeat)


HEARTBEAT_ATTR = "tengen:heartbeat"    # journal storage: unix time of the trial's last heartbeat


def heartbeat_journal_storage(backend, heartbeat: HeartbeatSpec):
    """A JournalStorage with Optuna's heartbeat interface (which Optuna gives only to RDB storages):
    each heartbeat is a system attribute of the trial in the journal (one line per beat), so
    `optuna.storages.fail_stale_trials` works on a journal file shared by several machines."""
    import optuna
    from optuna.storages._heartbeat import BaseHeartbeat
    from optuna.trial import TrialState

    class HeartbeatJournalStorage(optuna.storages.JournalStorage, BaseHeartbeat):
        def __init__(self) -> None:
            super().__init__(backend)
            self._hb = heartbeat
            self._stale_callback = _retry_callback(heartbeat)

        def record_heartbeat(self, trial_id: int) -> None:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            now = time.time()
            stale = []
            for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
                last = t.system_attrs.get(HEARTBEAT_ATTR)
                if last is None and t.datetime_start is not None:   # died before its first beat
                    last = t.datetime_start.timestamp()
                if last is not None and now - float(last) > self._hb.grace_s:
                    stale.append(t._trial_id)
            return stale

        def get_heartbeat_interval(self) -> int | None:
            return self._hb.interval_s

        def get_heartbeat_stale_trial_callback(self):
            return self._stale_callback

        def get_failed_trial_callback(self):   # the name before Optuna 4.9
            return self._stale_callback

    return HeartbeatJournalStorage()


class TrialHeartbeat:
    """Records a trial's heartbeat every `interval` seconds in a thread while the trial runs.
    A failed beat (storage briefly unreachable) is retried at the next one; a trial already
    failed by another worker (UpdateFinishedTrialError) stops the beats."""

    def __init__(self, study, trial):
        import threading
        from optuna.storages._heartbeat import is_heartbeat_enabled

        self.storage = study._storage
        self.trial_id = trial._trial_id
        self.enabled = is_heartbeat_enabled(self.storage)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{trial.number}")

    def start(self) -> "TrialHeartbeat":
        if self.enabled:
            self.thread.start()
        return self

    def stop(self) -> None:
        if self.enabled and self.thread.is_alive():
            self.stop_event.set()
            self.thread.join(timeout=30)

    def _run(self) -> None:
        import optuna

        interval = self.storage.get_heartbeat_interval()
        while not self.stop_event.is_set():
            try:
                self.storage.record_heartbeat(self.trial_id)
            except optuna.exceptions.UpdateFinishedTrialError:
                return
            except Exception as e:  # noqa: BLE001 - a missed beat is retried; grace > interval
                print(f"[sweep] heartbeat of trial id {self.trial_id} failed: {e!r}",
                      file=sys.stderr, flush=True)
            if self.stop_event.wait(timeout=interval):
                return


def fail_stale_trials(study, spec: SweepSpec, store, question_id: int,
                      repo_root: str | Path | None = None, workspace: str | Path | None = None,
                      worker: int = 0) -> list[int]:
    """Fail (and, per the sweep's heartbeat, retry) trials whose worker stopped sending heartbeats;
    mark the nodes of failed trials that are still `running` in the tree as `interrupted`, killing
    their job where it is an orphan on this machine, or cancelling it (scancel) where it is a
    SLURM job still queued or running. Returns the node ids marked."""
    import optuna
    from autoresearch import jobs
    from experiment_tree.workspace import Workspace
    from optuna.storages._heartbeat import is_heartbeat_enabled

    if not is_heartbeat_enabled(study._storage):
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # ExperimentalWarning
        optuna.storages.fail_stale_trials(study)
    failed = {t.user_attrs.get("node_id"): t for t in
              study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))}
    marked = []
    for node in store.nodes(question_id):
        t = failed.get(node.id)
        if t is None or node.status not in ("running", "pending"):
            continue
        # the trial is given up (Optuna retries its parameters): its job is ended, not followed
        # -- a SLURM job is scancelled (its pid file names a process on the compute node)
        worktree = Workspace(workspace).worktree(node.id) if workspace is not None else None
        found = jobs.reclaim(node.run_dir, worktree if repo_root is not None else None,
                             repo_root or ".", follow=False,
                             reason=f"its Optuna trial {t.number} was failed as stale")
        retries = [r.number for r in study.get_trials(deepcopy=False)
                   if r.system_attrs.get("retry_history", [])[-1:] == [t.number]]
        why = (f"the sweep worker running Optuna trial {t.number} stopped sending heartbeats "
               f"for over {spec.heartbeat.grace_s if spec.heartbeat else '?'} s (its process or "
               f"machine died); "
               f"worker {worker} on {socket.gethostname()} failed the trial"
               + (f" and queued its parameters again as trial {retries[0]}" if retries else "")
               + found.describe())
        store.update_node(node.id, status="interrupted", error=why, finished_at=time.time())
        print(f"[sweep] node {node.id}: {why}", flush=True)
        marked.append(node.id)
    return marked


def open_study(spec: SweepSpec, storage: str, create: bool):
    """Create (or load) the sweep's study; a study of the same name must have the same directions."""
    import optuna

    st = make_storage(storage, spec.heartbeat)
    if create:
        study = optuna.create_study(study_name=spec.name, storage=st, directions=spec.directions,
                                    sampler=make_sampler(spec), pruner=make_pruner(spec.pruner),
                                    load_if_exists=True)
        have = [d.name.lower() for d in study.directions]
        if have != spec.directions:
            raise SweepSpecError(f"study {spec.name!r} in {storage} already exists with directions "
                                 f"{have}, but {spec.path} asks for {spec.directions}; rename the "
                                 f"sweep (its `name`) or use another --storage")
        return study
    return optuna.load_study(study_name=spec.name, storage=st, sampler=make_sampler(spec),
                             pruner=make_pruner(spec.pruner))


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


# --------------------------------------------------------------------------- one trial

class MetricsTail:
    """New complete lines of a growing `metrics.jsonl` (a half-written last line waits)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self.count = 0

    def read_new(self) -> list[tuple[int, dict[str, Any]]]:
        """(line index, record) for each line completed since the last call."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        out = []
        for line in data[:end].splitlines():
            idx, self.count = self.count, self.count + 1
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                out.append((idx, rec))
        return out


def _step_of(rec: dict[str, Any], idx: int) -> int:
    """The pruning step of a metrics line: its iteration (comparable across trials, unlike the
    optimizer step count, which depends on batch size and samples), else `step`, else its index."""
    for key in ("iteration", "step"):
        if isinstance(rec.get(key), (int, float)) and not isinstance(rec.get(key), bool):
            return int(rec[key])
    return idx


def _seed_of(overrides: list[str]) -> int:
    for o in overrides:
        if o.startswith("seed="):
            try:
                return int(o.split("=", 1)[1])
            except ValueError:
                pass
    return 0


def branch_prefix(spec: SweepSpec, workspace: Path) -> str:
    """Git branches of this sweep's nodes: node ids restart in every workspace, so workspaces
    sharing one repository (several sweeps on one machine) must not share branch names."""
    tag = hashlib.sha1(str(Path(workspace).resolve()).encode()).hexdigest()[:8]
    return f"sweep/{spec.name}-{tag}/"


def launch_trial(opts: WorkerOptions, ws, spec):
    """Start a trial (a jobs.JobSpec) through the one launcher, where `opts.launcher` says.
    A sweep is a config-only search over the user's own space whose objective is the job's own
    evaluation: the job keeps its sandbox but sees the engines it rates itself with (`engines`)."""
    from autoresearch import jobs
    from autoresearch.agent_config import SlurmConfig

    slurm = opts.slurm or SlurmConfig()
    return jobs.start(spec, opts.launcher, slurm=slurm, folder=ws.submitit_dir(slurm.folder) / "%j")


class TrialTakenOver(Exception):
    """This worker's trial was failed as stale by another worker (see fail_stale_trials)."""


def run_trial(study, spec: SweepSpec, store, question_id: int, opts: WorkerOptions) -> dict:
    """Run one trial start to finish; the trial is always told, whatever happens.

    Returns `{"trial", "node", "status" (the node's), "values" (None unless COMPLETE)}`.
    """
    import optuna
    from autoresearch import jobs
    from autoresearch.agent_config import NodeJobConfig
    from experiment_tree.workspace import Workspace
    from experiments.tracking import offline_runs

    ws = Workspace(opts.workspace)
    with warnings.catch_warnings():
        # "heartbeat is supposed to be used with Study.optimize": TrialHeartbeat beats for ask/tell
        warnings.simplefilter("ignore")
        trial = study.ask()
    heartbeat = TrialHeartbeat(study, trial).start()
    node_id: int | None = None
    job = None
    told = False

    def tell(state, values=None) -> None:
        nonlocal told
        if not told:
            heartbeat.stop()
            told = True
            try:
                study.tell(trial, values, state=state)
            except optuna.exceptions.UpdateFinishedTrialError:
                # another worker found this trial stale (no heartbeat for grace_s) and failed it
                if node_id is not None:
                    store.update_node(node_id, notes=(
                        f"the run finished, but Optuna trial {trial.number} had already been failed "
                        f"as stale by another worker (no heartbeat for over "
                        f"{spec.heartbeat.grace_s if spec.heartbeat else '?'} s) and maybe retried; "
                        f"the study does not hold this result"))

    try:
        overrides = suggest_overrides(trial, spec)
        params = ", ".join(o for o in overrides if o not in spec.base_overrides)
        module = opts.job_module or spec.job.module
        retry_of = study._storage.get_trial_system_attrs(trial._trial_id).get("failed_trial")
        hypothesis = f"sweep {spec.name}, Optuna trial {trial.number}: {params}"
        if retry_of is not None:
            hypothesis += f" (retry of trial {retry_of}, whose worker died)"
        node_id = store.add_node(question_id, None, "sweep-trial", hypothesis,
                                 overrides=overrides, seed=_seed_of(overrides))
        run_dir = ws.run_dir(node_id)
        trial.set_user_attr("node_id", node_id)
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("workspace", str(ws.root))
        env = {"WANDB_RUN_GROUP": spec.name, "TENGEN_SWEEP": spec.name,
               "TENGEN_TRIAL": str(trial.number), **opts.extra_env}
        wall = opts.wall_clock_s or spec.job.wall_clock_s
        store.update_node(node_id, status="running", run_dir=str(run_dir), started_at=time.time(),
                          command=jobs.job_command(overrides, run_dir, module))
        # the sweep file's job block; a trial's run directory has no cap (disk_limit_mb=0)
        limits = NodeJobConfig(module=module, wall_clock_s=wall, disk_limit_mb=0,
                               mem_limit_mb=int(spec.job.mem_limit_mb or 0))
        job = launch_trial(opts, ws, jobs.JobSpec(
            repo_root=opts.repo_root, node_id=node_id, run_dir=run_dir,
            worktree=ws.worktree(node_id), overrides=overrides, job=limits, env=env,
            branch_prefix=branch_prefix(spec, ws.root), engines=True))

        tail = MetricsTail(Path(run_dir) / "metrics.jsonl")
        reported: set[int] = set()
        last: dict[str, Any] = {}
        pruned_at: tuple[int, float] | None = None

        def report_new() -> bool:
            """Report new intermediate values; True when the pruner wants the trial stopped."""
            nonlocal last
            prune = False
            for idx, rec in tail.read_new():
                last = rec
                value = rec.get(spec.intermediate) if spec.intermediate else None
                if not isinstance(value, (int, float)) or isinstance(value, bool) \
                        or not math.isfinite(value):
                    continue
                step = _step_of(rec, idx)
                if step in reported or spec.multi_objective:
                    continue
                reported.add(step)
                try:
                    trial.report(float(value), step)
                except optuna.exceptions.UpdateFinishedTrialError as e:
                    raise TrialTakenOver(str(e)) from None
                if trial.should_prune():
                    nonlocal pruned_at
                    pruned_at = (step, float(value))
                    prune = True
            return prune

        while job.poll() is None:
            if report_new():
                job.kill(f"pruned by the {spec.pruner.type} pruner at step {pruned_at[0]} "
                         f"({spec.intermediate}={pruned_at[1]:g})")
                break
            time.sleep(opts.poll_s)
        result = job.wait()
        if pruned_at is None:
            report_new()   # lines written between the last poll and the exit
        if (not reported and tail.count and spec.intermediate and not spec.multi_objective
                and spec.pruner.type != "none"):
            print(f"[sweep {spec.name}] trial {trial.number}: no line of its metrics.jsonl has "
                  f"{spec.intermediate!r}, so the {spec.pruner.type} pruner had nothing to judge; "
                  f"for experiments.train add eval.every_iters=1 to the sweep's base_overrides",
                  file=sys.stderr, flush=True)

        if pruned_at is not None:
            step, value = pruned_at
            store.update_node(node_id, status="pruned", finished_at=time.time(),
                              log_tail=result.log_tail,
                              metrics={**{k: v for k, v in last.items()
                                          if isinstance(v, (int, float))},
                                       spec.intermediate: value, "pruned_at_step": step},
                              notes=f"pruned by the {spec.pruner.type} pruner at step {step}: "
                                    f"{spec.intermediate}={value:g} was hopeless against the "
                                    f"other trials at that step")
            offline = offline_runs(run_dir)   # a killed run wrote no summary with its W&B path
            if offline:
                store.update_node(node_id, wandb_path=str(offline[-1]))
                trial.set_user_attr("wandb_path", str(offline[-1]))
            tell(optuna.trial.TrialState.PRUNED)
            trial_status, values = "pruned", None
        else:
            summary = result.summary or {"status": result.status, "error": result.error}
            summary = {**summary, "status": result.status,
                       "error": result.error or summary.get("error")}
            node = store.record_summary(node_id, summary, log_tail=result.log_tail)
            trial_status = node.status
            if node.wandb_path:
                trial.set_user_attr("wandb_path", node.wandb_path)
            values = None
            if result.status == "ok":
                try:
                    values = objective_values(summary, spec)
                    if not all(math.isfinite(v) for v in values):
                        raise ValueError(f"objective values {values} are not finite")
                except (KeyError, ValueError, TypeError) as e:
                    store.update_node(node_id, error=f"run ok but it cannot be scored: {e}")
                    values = None
            if values is not None:
                tell(optuna.trial.TrialState.COMPLETE, values)
            else:
                tell(optuna.trial.TrialState.FAIL)
        return {"trial": trial.number, "node": node_id, "status": trial_status, "values": values}
    except TrialTakenOver:
        # this worker was taken for dead (no heartbeat for grace_s): the trial is failed and
        # queued again elsewhere, so this run is of no use to the study
        told = True
        heartbeat.stop()
        if job is not None and job.poll() is None:
            job.kill("its Optuna trial was failed as stale by another worker")
            job.wait()
        store.update_node(node_id, status="interrupted", finished_at=time.time(),
                          error=f"Optuna trial {trial.number} was failed as stale by another worker "
                                f"(this worker sent no heartbeat for the grace period) and retried")
        return {"trial": trial.number, "node": node_id, "status": "interrupted", "values": None}
    except BaseException as e:
        interrupted = isinstance(e, (KeyboardInterrupt, SystemExit))
        if job is not None and job.poll() is None:
            job.kill("sweep interrupted" if interrupted else f"sweep worker error: {e!r}")
            job.wait()
        if node_id is not None and not told:
            try:
                store.update_node(node_id, status="interrupted" if interrupted else "crash",
                                  error=f"sweep worker: {e!r}", finished_at=time.time())
            except Exception:
                pass
        if not told:
            try:
                tell(optuna.trial.TrialState.FAIL)
            except Exception:
                pass
        raise
    finally:
        heartbeat.stop()


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
