"""The sweep's Optuna storage: journal file or RDB URL, trial heartbeats, and the reclaim of
trials whose worker died.

Storage: by default an Optuna journal file in the workspace (`W/optuna-journal.log`, guarded by a
file lock, so several processes on one machine -- or on a shared disk -- share it); any SQLAlchemy
URL (`sqlite:///...`, `postgresql://...`) works too.

Heartbeats (the sweep file's `heartbeat`, on by default): while a trial runs, its worker records a
heartbeat every `interval_s`. A worker whose machine dies leaves its trial RUNNING; the next worker
that starts or asks for a trial fails every trial silent for more than `grace_s`, marks its node
`interrupted` (jobs.reclaim: the orphaned job killed, or its SLURM job cancelled) and queues the
same parameters again as a new trial (`max_retry` times at most). RDB storages use Optuna's own
heartbeat table; the journal file, which has none in Optuna, keeps the heartbeat as a system
attribute of the trial.
"""
from __future__ import annotations

import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from autoresearch.search_space import (HeartbeatSpec, SweepSpec, SweepSpecError, make_pruner,
                                       make_sampler)

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
