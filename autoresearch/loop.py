"""The agent loop: propose, run, score, remember -- until a limit of the question (--max-nodes,
--max-hours, --max-cost-usd) is reached or the proposer concludes.

    question + baseline node (the default config of the chosen board and budget)
    repeat: digest of the tree -> proposer -> new nodes -> run them (K at once, each in its own
            worktree) -> record summary.json -> verdict vs the parent (re-run within the noise)
            -> regenerate the report
    answer (with its supporting nodes) -> the tree and the report

Everything the loop knows lives in the tree (SQLite), so a `kill -9` loses no finished node:
`--resume` records runs that finished while the loop was dead, re-attaches to nodes that are
SLURM jobs (`--launcher slurm`: they kept running on the cluster), marks the other interrupted
ones and re-queues them as fresh nodes, and goes on.

Budget: `max_nodes` counts every node of the question except interrupted ones (baseline, re-runs,
refused and invalid proposals included, so a proposer that only proposes refused patches still
stops).

This module holds the loop's state and its schedule (launch, poll, record, recover); its parts
live beside it: autoresearch/loop_start.py (the starting point and the baseline),
loop_proposing.py (asking the proposer, proposals to nodes),
loop_verdicts.py (child vs parent, seed re-runs), loop_answer.py (the answer and finished-node
lines), report_writer.py (the background report) and health.py (`health_metrics`).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from autoresearch import jobs, loop_start
from autoresearch.agent_config import AgentConfig
from autoresearch.digest import Digest, make_digest, merge_overrides, runs_used
from autoresearch.loop_answer import finish, finished_line
from autoresearch.loop_proposing import add_proposal, propose_round
from autoresearch.loop_start import base_overrides
from autoresearch.loop_verdicts import update_verdicts
from autoresearch.progress import Console
from autoresearch.proposers.base import Conclusion, Proposal, Proposer, ProposerUnavailable
from autoresearch.report_writer import ReportWriter
from experiment_tree.store import TreeStore
from experiment_tree.workspace import Workspace

log = logging.getLogger("autoresearch.loop")

POLL_S = 0.2                 # how often running jobs are polled
LOG_TAIL_CHARS = 4000
MIN_JOB_S = 60.0             # the --max-hours limit never gives a job less than this


@dataclass
class LoopResult:
    question_id: int
    status: str              # the question's final status
    reason: str              # why the loop stopped
    answer: str | None


class ResearchLoop:
    def __init__(self, store: TreeStore, workspace: Path | str, question_id: int,
                 proposer: Proposer, cfg: AgentConfig, repo_root: Path | str,
                 say: Callable[[str], None] | None = None, extra_env: dict[str, str] | None = None,
                 report: bool = True, console: Console | None = None):
        self.store = store
        self.workspace = Path(workspace)
        self.qid = question_id
        self.proposer = proposer
        self.cfg = cfg
        self.repo_root = Path(repo_root)
        self.console = console or Console(live=False if say else None)
        self.say = say or self.console.event
        self.judge = None        # the referee's judge, made when the loop runs (_make_judge)
        self.extra_env = dict(extra_env or {})
        self.report = report
        self.running: dict[int, jobs.Job] = {}
        self.conclusion: Conclusion | None = None
        self.stop_reason: str | None = None
        self.empty_rounds = 0
        self.baseline_failed = False
        self.running_start = None
        self.wait_for_result = False
        self.session_start = time.time()
        self.reporter = ReportWriter(self.workspace, question_id, self.say, enabled=report)

    def _make_judge(self):
        """The referee rates nodes that run the real training job (their checkpoints can play);
        a job of another module (the tests' fake job) reports its own numbers."""
        from autoresearch.doctor import REAL_JOB_MODULE
        if self.cfg.job.module != REAL_JOB_MODULE or not self.cfg.referee.enabled:
            return None
        from autoresearch.judge import Judge
        from autoresearch.referee import Referee
        from experiments.rate_checkpoint import as_rating_config
        commit = self.settings.get("referee_commit")
        if not commit:
            commit = jobs.worktrees.git(self.repo_root, "rev-parse", "HEAD").stdout.strip()
            b = self.settings
            b["referee_commit"] = commit
            self.store.update_question(self.qid, settings=b)
        referee = Referee(self.workspace, self.qid, self.repo_root, commit,
                          sandbox=self.cfg.referee.sandbox)
        size = int(str(self.settings.get("board") or "9x9").split("x")[0])
        referee.ensure_pin(board_size=size)
        return Judge(referee, self.cfg.verdict, as_rating_config(None).candidate_visits,
                     self.say, board_size=size)

    # -- the question's settings and limits ---------------------------------------------------
    @property
    def settings(self) -> dict[str, Any]:
        return self.store.get_question(self.qid).settings or {}

    def runs_left(self) -> int:
        runs = self.settings.get("runs")
        return 10 ** 9 if runs is None else int(runs) - runs_used(self.store.nodes(self.qid))

    def seconds_left(self) -> float:
        hours = self.settings.get("hours")
        if not hours:
            return math.inf
        spent = float(self.settings.get("spent_s", 0.0)) + (time.time() - self.session_start)
        return float(hours) * 3600 - spent

    def cost_left(self) -> float:
        cap = self.settings.get("cost_usd")
        return math.inf if cap is None else float(cap) - self.store.get_question(self.qid).cost_usd

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> LoopResult:
        self.store.update_question(self.qid, status="running")
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            self.judge = self._make_judge()
            self.recover()
            self.ensure_start()
            self.ensure_baseline()
            while True:
                self.poll_jobs()
                self.check_baseline()
                self.launch_pending()
                if self.stop_reason is None:
                    self.maybe_propose()
                    self.launch_pending()
                if self.stop_reason is not None and not self.running and not self.pending():
                    break
                self.show_progress()
                time.sleep(POLL_S)
            return self.finish()
        except ProposerUnavailable as e:
            return self.pause(f"proposer unavailable: {e}", "resume with `research run --resume`")
        except ClusterUnavailable as e:
            return self.pause(str(e), "fix the launcher settings, then `research run --resume`")
        except KeyboardInterrupt:
            self.say("interrupted: stopping running nodes (resume with `research run --resume`)")
            if self.running_start is not None:
                self.running_start.kill("the loop was interrupted")
                self.running_start.wait()
            for node_id, job in list(self.running.items()):
                job.kill("the loop was interrupted")
                job.wait()
                self.requeue(self.store.get_node(node_id), "the loop was interrupted while "
                                                           "this node ran")
            self.running.clear()
            self.save_time()
            self.store.update_question(self.qid, status="interrupted")
            return LoopResult(self.qid, "interrupted", "interrupted", None)
        finally:
            signal.signal(signal.SIGTERM, previous)

    def pause(self, why: str, what_next: str) -> LoopResult:
        """Something outside the experiments stops the loop: let running nodes finish, then leave
        the question `interrupted` (resumable) with its report up to date."""
        self.say(f"{why}; waiting for running nodes, then pausing")
        self.drain()
        self.save_time()
        self.store.update_question(self.qid, status="interrupted")
        self.write_report(wait=True)
        return LoopResult(self.qid, "interrupted", f"{why} ({what_next})", None)

    def pending(self) -> list[Any]:
        return [n for n in self.store.nodes(self.qid)
                if n.status == "pending" and n.id not in self.running]

    def recover(self) -> None:
        """After a crash of the loop, jobs.reclaim's policy for each running node: follow a SLURM
        job again, record a run that finished, kill a local orphan and re-queue the node."""
        for node in self.store.nodes(self.qid):
            if node.status != "running" or node.id in self.running:
                continue
            found = jobs.reclaim(node.run_dir, Workspace(self.workspace).worktree(node.id),
                                 self.repo_root, follow=True, slurm=self.cfg.slurm)
            if found.job is not None:
                self.reattach(node, found.job)
            elif found.summary is not None:
                self.say(f"node {node.id} finished while the loop was down: recording it")
                self.record(node.id, found.summary.get("status"), found.summary,
                            found.summary.get("error"),
                            jobs.tail(Path(node.run_dir) / jobs.LOG_NAME))
            else:
                self.requeue(node, "the loop stopped while this node ran" + found.describe())
        self.update_verdicts()

    def reattach(self, node: Any, job: jobs.Job) -> None:
        """A node that was a SLURM job when the loop died is followed again, not re-run: the
        job goes on (or has finished) on the cluster whatever happened to the loop."""
        self.running[node.id] = job
        self.say(f"node {node.id}: re-attached to {job.describe()}")

    def requeue(self, node: Any, why: str) -> int:
        """Mark `node` interrupted and queue the same experiment as a fresh node."""
        new_id = self.store.add_node(self.qid, node.parent_id, node.kind, node.hypothesis,
                                     overrides=node.overrides, patch=node.patch, seed=node.seed)
        self.store.update_node(new_id, notes=f"re-run of node {node.id}, interrupted")
        self.store.update_node(node.id, status="interrupted", finished_at=time.time(),
                               error=f"{why}; re-queued as node {new_id}")
        self.proposer.rerun(node.id, new_id)
        self.say(f"node {node.id} was interrupted: re-queued as node {new_id}")
        return new_id

    # -- the starting point and the baseline (autoresearch/loop_start.py) ---------------------
    def ensure_start(self) -> None:
        loop_start.ensure_start(self, POLL_S)

    def ensure_baseline(self) -> None:
        loop_start.ensure_baseline(self)

    def baseline(self) -> Any | None:
        """The latest baseline node that was not interrupted."""
        return loop_start.baseline(self)

    def check_baseline(self) -> None:
        loop_start.check_baseline(self)

    # -- proposing (autoresearch/loop_proposing.py) ------------------------------------------
    def maybe_propose(self) -> None:
        propose_round(self)

    def add_proposal(self, p: Proposal, digest: Digest) -> int | None:
        """Make a proposal a node (or refuse it); returns the node id or None. (`digest` is
        unused: the proposal is checked against the tree as it is now.)"""
        return add_proposal(self.store, self.qid, self.proposer, p, self.baseline(),
                            int(self.settings.get("seed", 0)), self.runs_left, self.say)

    # -- running -------------------------------------------------------------------------------
    def launch_pending(self) -> None:
        for node in self.pending():
            if len(self.running) >= self.cfg.workers:
                return
            self.launch(node)

    def command_overrides(self, node: Any) -> list[str]:
        # with the referee on, the job does not rate itself: the referee does, after it
        rated = ["rating.at_end=false", *loop_start.start_overrides(self, node)] if self.judge is not None else []
        return merge_overrides(base_overrides(self.settings, self.cfg.job.extra_overrides),
                               node.overrides, [f"seed={node.seed}", *rated])

    def job_spec(self, node_id: int | str, overrides: list[str], patch: str | None,
                 run_dir: Path, worktree: Path, **more: Any) -> jobs.JobSpec:
        """A job of this question, run as the agent's `job:` block says."""
        return jobs.JobSpec(repo_root=self.repo_root, node_id=node_id, run_dir=run_dir,
                            worktree=worktree, overrides=overrides, patch=patch,
                            job=dataclasses.replace(self.cfg.job), env=dict(self.extra_env), **more)

    def launch(self, node: Any) -> None:
        ws = Workspace(self.workspace)
        run_dir = ws.run_dir(node.id)
        overrides = self.command_overrides(node)
        wall = float(self.cfg.job.wall_clock_s)
        if math.isfinite(self.seconds_left()):
            wall = max(MIN_JOB_S, min(wall, self.seconds_left()))
        self.store.update_node(node.id, status="running", run_dir=str(run_dir),
                               started_at=time.time(),
                               command=jobs.job_command(overrides, run_dir, self.cfg.job.module))
        # the job reads the question's starting checkpoint, and nothing else outside its sandbox
        start = tuple(Path(o.split("=", 1)[1]).parent for o in overrides
                      if o.startswith("train.warm_start.init_checkpoint="))
        spec = self.job_spec(node.id, overrides, node.patch, run_dir, ws.worktree(node.id),
                             inputs=start, commit_message=f"node {node.id}: {node.hypothesis[:200]}")
        spec.job.wall_clock_s = wall
        try:
            job = jobs.start(spec, self.cfg.launcher, slurm=self.cfg.slurm,
                             folder=ws.submitit_dir(self.cfg.slurm.folder) / "%j")
        except jobs.SubmitError as e:
            # the cluster refused the job (bad partition...): not the experiment's fault, and
            # every other node would fail the same way -- pause instead of spending runs
            self.store.update_node(node.id, status="pending", run_dir=None, started_at=None)
            raise ClusterUnavailable(str(e)) from e
        except jobs.SandboxError as e:
            self.record(node.id, "crash", None, f"sandbox: {e}", "")
            return
        self.running[node.id] = job
        self.say(f"node {node.id} running ({job.describe()})")

    def poll_jobs(self) -> None:
        for node_id, job in list(self.running.items()):
            if job.poll() is None:
                continue
            res = job.wait()
            del self.running[node_id]
            self.record(node_id, res.status, res.summary, res.error, res.log_tail)

    def drain(self) -> None:
        while self.running:
            self.poll_jobs()
            time.sleep(POLL_S)

    def record(self, node_id: int, status: str, summary: dict | None, error: str | None,
               log_tail: str) -> None:
        metrics = (summary or {}).get("metrics") or {}
        if not isinstance(metrics, dict):
            metrics = {}
        if self.judge is not None and status == "ok":
            node = self.store.get_node(node_id)
            parent = self.store.get_node(node.parent_id) if node.parent_id else None
            node.run_dir = node.run_dir or (summary or {}).get("run_dir")
            metrics, why = self.judge.rate(node, summary, parent)
            if why:
                status, error = "invalid", why
        if status == "ok":
            metrics = self.health_check(node_id, metrics, summary)
        fields: dict[str, Any] = {"status": status, "metrics": metrics, "error": error,
                                  "log_tail": (log_tail or "")[-LOG_TAIL_CHARS:],
                                  "finished_at": time.time()}
        if summary and summary.get("wandb_path"):
            fields["wandb_path"] = summary["wandb_path"]
        if summary and isinstance(summary.get("sandbox"), str):
            fields["sandbox"] = summary["sandbox"][:300]   # "bwrap" | "none: <why>" (sandbox.Job)
        node = self.store.update_node(node_id, **fields)
        self.say(finished_line(node))
        self.proposer.observe(node)
        self.wait_for_result = False
        self.update_verdicts()
        self.save_time()
        self.write_report()

    # -- issue 16: the referee's health checks, for every proposer ------------------------------
    def health_check(self, node_id: int, metrics: dict, summary: dict | None) -> dict:
        """`metrics` with the node's health checks (autoresearch/health.py, `health_metrics`)."""
        from autoresearch.doctor import REAL_JOB_MODULE
        from autoresearch.health import health_metrics
        return health_metrics(self.repo_root, self.workspace, self.store.get_node(node_id),
                              metrics, summary, self.cfg.health,
                              real_job=self.cfg.job.module == REAL_JOB_MODULE,
                              board=str(self.settings.get("board") or "9x9"), say=self.say)

    # -- verdicts (autoresearch/loop_verdicts.py) ---------------------------------------------
    def update_verdicts(self) -> None:
        def runs_for_seeds() -> int:   # what the proposer's planned runs leave for extra seed pairs
            return self.runs_left() - self.proposer.runs_reserved(make_digest(self.store, self.qid))
        update_verdicts(self.store, self.qid, self.judge, self.cfg.verdict, runs_for_seeds,
                        self.stop_reason == "concluded", self.say)

    def show_progress(self) -> None:
        nodes = {n.id: n for n in self.store.nodes(self.qid)} if self.running else {}
        self.console.update([(nid, Path(nodes[nid].run_dir) if nodes[nid].run_dir else None,
                              nodes[nid].started_at) for nid in self.running if nid in nodes])

    # -- the end (autoresearch/loop_answer.py) ------------------------------------------------
    def finish(self) -> LoopResult:
        return finish(self)

    def save_time(self) -> None:
        now = time.time()
        b = self.settings
        b["spent_s"] = float(b.get("spent_s", 0.0)) + (now - self.session_start)
        self.session_start = now
        self.store.update_question(self.qid, settings=b)

    def write_report(self, wait: bool = False) -> None:
        """Regenerate the report in the background (autoresearch/report_writer.py); `wait=True`
        returns once it is written."""
        self.reporter.request(wait)


class ClusterUnavailable(RuntimeError):
    """The cluster launcher could not submit a node: the question pauses (resumable)."""


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
