"""The agent loop: propose, run, score, remember -- until the budget is spent or the proposer
concludes.

    question + baseline node (the default config of the chosen board and budget)
    repeat: digest of the tree -> proposer -> new nodes -> run them (K at once, each in its own
            worktree) -> record summary.json -> verdict vs the parent (re-run within the noise)
            -> regenerate the report
    answer (with its supporting nodes) -> the tree and the report

Everything the loop knows lives in the tree (SQLite), so a `kill -9` loses no finished node:
`--resume` records runs that finished while the loop was dead, re-attaches to nodes that are
SLURM jobs (`--launcher slurm`: they kept running on the cluster), marks the other interrupted
ones and re-queues them as fresh nodes, and goes on.

Budget: `budget_runs` counts every node of the question except interrupted ones (baseline, re-runs,
refused and invalid proposals included, so a proposer that only proposes refused patches still
stops).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from autoresearch import jobs
from autoresearch.agent_config import AgentConfig
from autoresearch.override_policy import validate_overrides
from autoresearch.digest import (Digest, effective_change, make_digest, merge_overrides,
                                 proposal_key, runs_used)
from autoresearch.progress import Console, failure_line
from autoresearch.proposers.base import Conclusion, Proposal, Proposer, ProposerUnavailable
from autoresearch.ladder_verdict import compare
from experiment_tree.store import TreeStore
from experiment_tree.workspace import Workspace

log = logging.getLogger("autoresearch.loop")

POLL_S = 0.2                 # how often running jobs are polled
MAX_EMPTY_ROUNDS = 3         # proposer rounds in a row that yield nothing new -> stop
LOG_TAIL_CHARS = 4000
MIN_JOB_S = 60.0             # the hours budget never gives a job less than this
FAILED = ("crash", "timeout", "invalid", "refused")   # finished without a usable result


@dataclass
class LoopResult:
    question_id: int
    status: str              # the question's final status
    reason: str              # why the loop stopped
    answer: str | None


def base_overrides(budget: dict[str, Any], extra: list[str]) -> list[str]:
    base = []
    if budget.get("board"):
        base.append(f"board={budget['board']}")
    if budget.get("budget"):
        base.append(f"budget={budget['budget']}")
    return base + list(extra)


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
        self.report_error_shown = False
        self._report_lock = threading.Lock()
        self._report_thread: threading.Thread | None = None
        self._report_dirty = False

    def _make_judge(self):
        """The referee rates nodes that run the real training job (their checkpoints can play);
        a job of another module (the tests' fake job) reports its own numbers."""
        from autoresearch.doctor import REAL_JOB_MODULE
        if self.cfg.job.module != REAL_JOB_MODULE or not self.cfg.referee.enabled:
            return None
        from autoresearch.judge import Judge
        from autoresearch.referee import Referee
        from experiments.evaluate import as_eval_config
        commit = self.budget.get("referee_commit")
        if not commit:
            commit = jobs.worktrees.git(self.repo_root, "rev-parse", "HEAD").stdout.strip()
            b = self.budget
            b["referee_commit"] = commit
            self.store.update_question(self.qid, budget=b)
        referee = Referee(self.workspace, self.qid, self.repo_root, commit,
                          sandbox=self.cfg.referee.sandbox)
        size = int(str(self.budget.get("board") or "9x9").split("x")[0])
        referee.ensure_pin(board_size=size)
        return Judge(referee, self.cfg.verdict, as_eval_config(None).candidate_visits,
                     self.say, board_size=size)

    # -- the budget --------------------------------------------------------------------------
    @property
    def budget(self) -> dict[str, Any]:
        return self.store.get_question(self.qid).budget or {}

    def runs_left(self) -> int:
        runs = self.budget.get("runs")
        return 10 ** 9 if runs is None else int(runs) - runs_used(self.store.nodes(self.qid))

    def seconds_left(self) -> float:
        hours = self.budget.get("hours")
        if not hours:
            return math.inf
        spent = float(self.budget.get("spent_s", 0.0)) + (time.time() - self.session_start)
        return float(hours) * 3600 - spent

    def cost_left(self) -> float:
        cap = self.budget.get("cost_usd")
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

    def ensure_baseline(self) -> None:
        """The question's baseline node; after a failed one (then the question stopped as
        `failed`), a resume runs a fresh baseline: the fix may be in the machine, not the code."""
        if self.baseline_failed:          # the starting point failed: nothing can run
            return
        base = self.baseline()
        if base is not None and not (base.finished and base.status in FAILED):
            return
        if base is not None:
            self.say(f"node {base.id}, the baseline, was {base.status}: running the baseline again")
        b = self.budget
        hyp = (f"Baseline: the default config of board {b.get('board')} and budget "
               f"{b.get('budget')}; every other node is compared with it.")
        nid = self.store.add_node(self.qid, None, "baseline", hyp, overrides=[],
                                  seed=int(b.get("seed", 0)))
        self.say(f"node {nid}: baseline")

    def ensure_start(self) -> None:
        """The question's starting point, trained once (the warm start alone): every node whose
        change does not concern the warm start begins from it, so two nodes differ by their change
        and their seed, not by two independent warm starts (issue 12: sigma_train at its source;
        and ~25-50 s saved per node). A failed start stops the question like a failed baseline."""
        if self.judge is None or not self.cfg.shared_start:
            return
        b = self.budget
        if b.get("start_checkpoint") and Path(b["start_checkpoint"]).is_file():
            return
        ws = Workspace(self.workspace)
        run_dir = ws.start_dir(self.qid)
        overrides = merge_overrides(base_overrides(b, self.cfg.job.extra_overrides), [],
                                    [f"seed={int(b.get('seed', 0))}", "eval.at_end=false",
                                     "train.warm_start.only=true"])
        self.say("the question's starting point: training the warm start once, for every node")
        # always on this machine: every node, wherever it runs, reads the start it leaves
        job = jobs.start(self.job_spec(f"start-q{self.qid}", overrides, None, run_dir,
                                       ws.worktree(f"start-q{self.qid}")))
        self.running_start = job
        t0 = time.time()
        while job.poll() is None:
            self.console.update([("starting point", run_dir, t0)])
            time.sleep(POLL_S)
        res = job.wait()
        self.running_start = None
        ckpt = run_dir / "checkpoints" / "latest.pt"
        if res.status != "ok" or not ckpt.is_file():
            self.stop_reason = (f"the question's starting point is {res.status}: "
                                f"{failure_line(res.error)} (log: {run_dir / jobs.LOG_NAME})")
            self.baseline_failed = True
            return
        b = self.budget
        b["start_checkpoint"] = str(ckpt)
        self.store.update_question(self.qid, budget=b)
        self.say(f"starting point ready: {ckpt}")

    def start_overrides(self, node: Any) -> list[str]:
        """`train.warm_start.init_checkpoint=<the question's start>` unless the node changes the
        warm start itself (its overrides or the files of its patch)."""
        from experiments.config import concerns_warm_start
        start = self.budget.get("start_checkpoint")
        if not start or concerns_warm_start(node.overrides or [],
                                            jobs.protect.patch_paths(node.patch or "")):
            return []
        return [f"train.warm_start.init_checkpoint={start}"]

    def baseline(self) -> Any | None:
        """The latest baseline node that was not interrupted."""
        return next((n for n in reversed(self.store.nodes(self.qid)) if n.kind == "baseline"
                     and n.status != "interrupted"), None)

    def check_baseline(self) -> None:
        """A crashed or timed-out baseline stops the question: nothing else can be compared."""
        base = self.baseline()
        if base is None or not base.finished or base.status not in FAILED or self.stop_reason:
            return
        log_path = Path(base.run_dir) / jobs.LOG_NAME if base.run_dir else None
        self.stop_reason = (f"the baseline (node {base.id}) is {base.status}: "
                            f"{failure_line(base.error)}"
                            + (f" (log: {log_path})" if log_path else ""))
        self.baseline_failed = True

    # -- proposing -----------------------------------------------------------------------------
    def maybe_propose(self) -> None:
        free = self.cfg.workers - len(self.running) - len(self.pending())
        if free <= 0:
            return
        base = self.baseline()
        if base is None or not base.finished:
            return   # the proposer needs the baseline's result
        if self.wait_for_result and self.running:
            return
        if self.runs_left() <= 0:
            self.stop_reason = "budget-runs"
            return
        if self.seconds_left() <= 0:
            self.stop_reason = "budget-hours"
            return
        if self.cost_left() <= 0:
            self.stop_reason = "budget-cost"
            return
        n = min(free, self.runs_left())
        digest = make_digest(self.store, self.qid)
        try:
            result = self.proposer.propose(digest, n)
        finally:
            tokens, cost = self.proposer.take_usage()
        if isinstance(result, Conclusion):
            self.book_usage(tokens, cost, [])
            self.conclusion = result
            self.stop_reason = "concluded"
            self.say(f"the proposer concluded: {result.answer[:200]}")
            return
        made = [nid for p in result if (nid := self.add_proposal(p, digest)) is not None]
        self.book_usage(tokens, cost, made)
        if made:
            self.empty_rounds = 0
            self.wait_for_result = len(made) < n
        else:
            self.empty_rounds += 1
            self.wait_for_result = True
            if self.empty_rounds >= MAX_EMPTY_ROUNDS and not self.running:
                self.stop_reason = "proposer had nothing new"

    def book_usage(self, tokens: int, cost: float, node_ids: list[int]) -> None:
        if not tokens and not cost:
            return
        if not node_ids:
            self.store.add_usage(self.qid, tokens, cost)
            return
        for i, nid in enumerate(node_ids):
            share_t = tokens // len(node_ids) + (1 if i < tokens % len(node_ids) else 0)
            self.store.add_usage(self.qid, share_t, cost / len(node_ids), node_id=nid)

    def add_proposal(self, p: Proposal, digest: Digest) -> int | None:
        """Make a proposal a node (or refuse it); returns the node id or None."""
        nodes = {n.id: n for n in self.store.nodes(self.qid)}
        base = self.baseline()
        parent = nodes.get(p.parent_id) if p.parent_id is not None else base
        if parent is None:
            self.say(f"proposal refused: parent node {p.parent_id} is not in this question")
            self.proposer.rejected(p, f"parent node {p.parent_id} does not exist")
            return None
        bad = validate_overrides(p.overrides)   # the learner's config groups only
        if bad:
            self.say(f"proposal refused: {'; '.join(bad)}")
            self.proposer.rejected(p, "overrides refused: " + "; ".join(bad))
            return None
        # a node holds its effective change vs the baseline, so it reads (and reruns) alone
        overrides, patch = effective_change(parent, p.overrides, p.patch)
        key = proposal_key(overrides, patch)
        if key in make_digest(self.store, self.qid).keys:
            same = [n.id for n in nodes.values() if n.kind != "rerun"
                    and n.status != "interrupted" and proposal_key(n.overrides, n.patch) == key]
            self.say(f"proposal refused: the same experiment is already node(s) {same}")
            self.proposer.rejected(p, f"the same experiment (overrides and patch) is already "
                                      f"node(s) {same}")
            return None
        kind = p.kind if not (p.kind == "config" and patch) else "code"
        nid = self.store.add_node(self.qid, parent.id, kind, p.hypothesis, overrides=overrides,
                                  patch=patch, seed=int(self.budget.get("seed", 0)))
        self.proposer.accepted(p, nid)
        # -- issue 16 (agent branch): the proposal's forecast and track go on its node --------------
        from autoresearch.tracks import record_proposal
        record_proposal(self.store, self.qid, nid, p)
        # -- end issue 16 ----------------------------------------------------------------------------
        self.add_planned_seeds(nid, parent, int(p.meta.get("seeds") or 1))
        self.say(f"node {nid} ({kind}, parent {parent.id}): {' '.join(overrides) or '-'}"
                 f"{' + patch' if patch else ''} -- {p.hypothesis[:120]}")
        return nid

    # -- running -------------------------------------------------------------------------------
    def launch_pending(self) -> None:
        for node in self.pending():
            if len(self.running) >= self.cfg.workers:
                return
            self.launch(node)

    def command_overrides(self, node: Any) -> list[str]:
        # with the referee on, the job does not rate itself: the referee does, after it
        rated = ["eval.at_end=false", *self.start_overrides(node)] if self.judge is not None else []
        return merge_overrides(base_overrides(self.budget, self.cfg.job.extra_overrides),
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
        """`metrics` with the node's health checks (autoresearch/health.py) under "health"; a
        failed one marks the node suspect and is said. Seed re-runs are not checked (their
        parent is)."""
        from autoresearch.doctor import REAL_JOB_MODULE
        from autoresearch.health import board_komi, check_node
        node = self.store.get_node(node_id)
        if not self.cfg.health.enabled or node.kind == "rerun":
            return metrics
        node.run_dir = node.run_dir or (summary or {}).get("run_dir")
        board = str(self.budget.get("board") or "9x9")
        health = check_node(self.repo_root, self.workspace, node, self.cfg.health,
                            real_job=self.cfg.job.module == REAL_JOB_MODULE,
                            board_size=int(board.split("x")[0]), komi=board_komi(self.repo_root, board))
        failed = [f["check"] for f in health["flags"] if f["ok"] is False]
        if failed:
            self.say(f"node {node_id} SUSPECT: health check(s) failed: {', '.join(failed)} "
                     f"(research show {node_id}; research explain {node_id} \"reason\" once understood)")
        return {**metrics, "health": health}

    # -- verdicts ------------------------------------------------------------------------------
    def update_verdicts(self) -> None:
        if self.judge is not None:
            return self.update_h2h_verdicts()
        nodes = self.store.nodes(self.qid)
        by_id = {n.id: n for n in nodes}

        def runs_of(n: Any) -> list[Any]:
            return [n] + [c for c in nodes if c.parent_id == n.id and c.kind == "rerun"
                          and c.status == "ok"]

        for n in nodes:
            if n.kind in ("baseline", "rerun") or n.status != "ok" or n.verdict is not None:
                continue
            if (n.verdict_test or "").startswith("not compared"):
                continue
            parent = by_id.get(n.parent_id)
            if parent is None or not parent.finished:
                continue
            if parent.status != "ok":
                self.store.update_node(n.id, verdict_test=f"not compared: parent node "
                                                          f"{parent.id} is {parent.status}")
                continue
            reruns = [c for c in nodes if c.parent_id == n.id and c.kind == "rerun"
                      and c.status != "interrupted"]
            if any(not r.finished for r in reruns) or any(
                    c.parent_id == parent.id and c.kind == "rerun" and not c.finished for c in nodes):
                continue        # pool every planned seed of both (--seeds N), not the first ones
            v = compare([r.metrics for r in runs_of(n)], [r.metrics for r in runs_of(parent)],
                        self.cfg.verdict.z)
            if v.verdict is None:
                self.store.update_node(n.id, verdict_test=v.test)
            elif (v.within_noise and len(reruns) < self.cfg.verdict.max_reruns
                  and self.runs_left() > 0 and self.stop_reason != "concluded"):
                seed = n.seed + len(reruns) + 1
                rid = self.store.add_node(
                    self.qid, n.id, "rerun",
                    f"Re-run of node {n.id} with seed {seed}: its difference from node "
                    f"{parent.id} is within the noise; pooled seeds will decide.",
                    overrides=n.overrides, patch=n.patch, seed=seed)
                self.store.update_node(n.id, verdict_test=f"within the noise so far ({v.test}); "
                                                          f"re-running as node {rid}")
                self.say(f"node {n.id} is within the noise: re-run as node {rid} (seed {seed})")
            else:
                self.store.update_node(n.id, verdict=v.verdict, verdict_test=v.test)
                self.say(f"node {n.id} vs node {parent.id}: {v.verdict} ({v.test})")

    def show_progress(self) -> None:
        nodes = {n.id: n for n in self.store.nodes(self.qid)} if self.running else {}
        self.console.update([(nid, Path(nodes[nid].run_dir) if nodes[nid].run_dir else None,
                              nodes[nid].started_at) for nid in self.running if nid in nodes])

    def update_h2h_verdicts(self) -> None:
        """Child seed k against parent seed k in head-to-head pairs (autoresearch/judge.py);
        another seed pair for both when the games settle but training noise leaves it open."""
        nodes = self.store.nodes(self.qid)
        by_id = {n.id: n for n in nodes}
        for n in nodes:
            if n.kind in ("baseline", "rerun") or n.status != "ok" or n.verdict is not None:
                continue
            parent = by_id.get(n.parent_id)
            if parent is None or not parent.finished:
                continue
            if parent.status != "ok":
                if not (n.verdict_test or "").startswith("not compared"):
                    self.store.update_node(n.id, verdict_test=f"not compared: parent node "
                                                              f"{parent.id} is {parent.status}")
                continue
            busy = [c for c in nodes if c.kind == "rerun" and c.parent_id in (n.id, parent.id)
                    and not c.finished]
            if busy:
                continue
            affordable = self.runs_left() >= 2 and self.stop_reason != "concluded"
            if (n.verdict_test or "").startswith("not compared"):
                continue
            cmp = self.judge.compare(self.store, n, parent, nodes, affordable)
            if cmp.record is None:
                if cmp.why_stopped:
                    self.store.update_node(n.id, verdict_test=f"not compared: {cmp.why_stopped}")
                continue
            if cmp.add_seed is not None:
                self.add_seed_pair(n, parent, cmp.add_seed, cmp.record.test)
                continue
            rec = cmp.record
            metrics = dict(self.store.get_node(n.id).metrics or {})
            metrics["verdict_detail"] = rec.to_json()
            self.store.update_node(n.id, verdict=rec.verdict, verdict_test=rec.test, metrics=metrics)
            ci = rec.ci95
            self.say(f"node {n.id} vs node {parent.id}: {rec.verdict}, "
                     f"{rec.diff_elo:+.0f} Elo [{ci[0]:+.0f}, {ci[1]:+.0f}] over {rec.games_per_side} "
                     f"games and {rec.seed_pairs} seed pair(s); minimum detectable difference "
                     f"{rec.mde_elo:.0f} Elo")

    def add_seed_pair(self, child: Any, parent: Any, seed: int, why: str) -> None:
        """Train child and parent with `seed` (whichever lacks it): the next seed pair."""
        nodes = self.store.nodes(self.qid)
        made = []
        for n in (parent, child):
            if not has_seed(n, seed, nodes):
                rid = self.store.add_node(
                    self.qid, n.id, "rerun", f"Seed {seed} of node {n.id}: the next seed pair of "
                    f"node {child.id} vs node {parent.id} (training noise left the verdict open).",
                    overrides=n.overrides, patch=n.patch, seed=seed)
                made.append(rid)
        self.store.update_node(child.id, verdict_test=f"open after {why[:300]}; seed {seed} pair: "
                                                      f"node(s) {made or 'already there'}")
        self.say(f"node {child.id} vs node {parent.id}: open; training seed {seed} of both "
                 f"(node(s) {made})")

    def add_planned_seeds(self, node_id: int, parent: Any, seeds: int) -> None:
        """`--seeds N` (a plan's `seeds`, a proposal's `meta["seeds"]`): the new node and its parent
        each train seeds s..s+N-1 (s: the node's own seed) as seed re-runs, the same nodes an open
        verdict adds (`add_seed_pair`), so child seed k pairs with parent seed k (common random
        numbers) and the verdict, which waits for them, pools the N pairs. An open verdict can
        still add seed s+N on top, up to `verdict.max_seed_pairs`. Seeds the runs budget cannot
        pay for are left out, and said."""
        if seeds <= 1:
            return
        node = self.store.get_node(node_id)
        made, unpaid = [], []
        for k in range(1, seeds):
            seed = node.seed + k
            for n in (parent, node):
                if has_seed(n, seed, self.store.nodes(self.qid)):
                    continue
                if self.runs_left() <= 0:
                    unpaid.append(f"seed {seed} of node {n.id}")
                    continue
                made.append(self.store.add_node(
                    self.qid, n.id, "rerun", f"Seed {seed} of node {n.id}: planned seed pair {k + 1} "
                    f"of {seeds} of node {node.id} vs node {parent.id} (--seeds {seeds}).",
                    overrides=n.overrides, patch=n.patch, seed=seed))
        self.say(f"node {node.id} vs node {parent.id}: {seeds} seeds each; seed node(s) {made}"
                 + (f"; no runs left for {', '.join(unpaid)}" if unpaid else ""))

    # -- the end -------------------------------------------------------------------------------
    def finish(self) -> LoopResult:
        if self.baseline_failed:
            answer = (f"No answer: {self.stop_reason}. Nothing could be compared. Fix the cause, "
                      f"then `research run --resume --question {self.qid}` runs the baseline again.")
            base = self.baseline()
            self.save_time()
            self.store.set_answer(self.qid, answer, [base.id] if base else [], status="failed")
            self.write_report(wait=True)
            self.say(f"question {self.qid} failed: {self.stop_reason}")
            return LoopResult(self.qid, "failed", self.stop_reason or "", answer)
        self.update_verdicts()
        digest, left_out = self.answer_digest()
        known = {e.node_id for e in digest.entries}
        if self.conclusion is not None:
            answer, evidence, status = self.conclusion.answer, self.conclusion.evidence, "answered"
        else:
            c = None
            try:
                c = self.proposer.conclude(digest)
            except ProposerUnavailable as e:
                self.say(f"the proposer could not write the answer ({e}); summarising the tree")
            finally:
                tokens, cost = self.proposer.take_usage()
                self.book_usage(tokens, cost, [])
            if c is not None:
                answer, evidence, status = c.answer, c.evidence, "answered"
            else:
                answer, evidence = summarise(digest, self.stop_reason or "budget spent")
                status = "answered" if self.stop_reason == "concluded" else "budget-exhausted"
        evidence = [e for e in evidence if e in known]
        if left_out:
            answer += (" [Left out as suspect -- failed health checks not explained: "
                       + "; ".join(left_out) + ". `research explain NODE \"reason\"` counts one again.]")
        self.save_time()
        self.store.set_answer(self.qid, answer, evidence, status=status)
        self.write_report(wait=True)
        self.say(f"question {self.qid} {status}: {answer}")
        return LoopResult(self.qid, status, self.stop_reason or "", answer)

    def answer_digest(self) -> tuple[Digest, list[str]]:
        """The digest the answer is written from: suspect nodes (a failed, unexplained health
        check: experiment_tree/suspect.py) and their seed re-runs left out; and what was left out."""
        import dataclasses

        from experiment_tree.suspect import failed_checks, is_suspect
        digest = make_digest(self.store, self.qid)
        nodes = self.store.nodes(self.qid)
        bad = {n.id: n for n in nodes if is_suspect(n)}
        out = set(bad) | {n.id for n in nodes if n.kind == "rerun" and n.parent_id in bad}
        if not out:
            return digest, []
        entries = [e for e in digest.entries if e.node_id not in out]
        return (dataclasses.replace(digest, entries=entries),
                [f"#{i} ({', '.join(failed_checks(n))})" for i, n in sorted(bad.items())])

    def save_time(self) -> None:
        now = time.time()
        b = self.budget
        b["spent_s"] = float(b.get("spent_s", 0.0)) + (now - self.session_start)
        self.session_start = now
        self.store.update_question(self.qid, budget=b)

    def write_report(self, wait: bool = False) -> None:
        """Regenerate the report in a background thread (plots take seconds; jobs must not wait
        for them). Requests while one is being written coalesce into one more. `wait=True`
        writes it now and returns when it is done (the end of the loop)."""
        if not self.report:
            return
        with self._report_lock:
            self._report_dirty = True
            if self._report_thread is None or not self._report_thread.is_alive():
                self._report_thread = threading.Thread(target=self._report_worker, daemon=True)
                self._report_thread.start()
        if wait:
            while True:
                t = self._report_thread
                if t is None or not t.is_alive():
                    break
                t.join()

    def _report_worker(self) -> None:
        while True:
            with self._report_lock:
                if not self._report_dirty:
                    self._report_thread = None
                    return
                self._report_dirty = False
            self._write_report_now()

    def _write_report_now(self) -> None:
        """A failing report never stops the loop: the tree is the record."""
        try:
            from reports.report import write_report
            write_report(self.workspace, self.qid)
        except Exception as e:
            if not self.report_error_shown:
                self.say(f"report failed ({type(e).__name__}: {e}); the tree is intact")
                self.report_error_shown = True


def finished_line(node: Any) -> str:
    """One line for a finished node: status, Elo with its interval; for a failure the exception's
    own message and the path of its log."""
    m = node.metrics or {}
    elo, ci = m.get("elo"), m.get("elo_ci95")
    text = f"node {node.id} {node.status}"
    if isinstance(elo, (int, float)):
        text += f": Elo {elo:.0f}"
        if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
            text += f" [{ci[0]:.0f}, {ci[1]:.0f}]"
    if node.status != "ok":
        text += f" -- {failure_line(node.error)}"
        if node.run_dir:
            text += f" (log: {Path(node.run_dir) / jobs.LOG_NAME})"
    return text


def has_seed(node: Any, seed: int, nodes: list[Any]) -> bool:
    """Is `seed` of `node` trained or queued (the node itself, or one of its seed re-runs)?"""
    return node.seed == seed or any(c.parent_id == node.id and c.kind == "rerun" and c.seed == seed
                                    and c.status != "interrupted" for c in nodes)


def compared(store: TreeStore, question_id: int) -> bool:
    """Did the question compare at least one pair of finished nodes (a verdict of any kind)?"""
    return any(n.verdict is not None for n in store.nodes(question_id))


def summarise(digest: Digest, reason: str) -> tuple[str, list[int]]:
    """The loop's own answer when the proposer gives none: best node vs the baseline, honestly."""
    base = digest.baseline()
    base = base if base is not None and base.status == "ok" else None
    counts: dict[str, int] = {}
    for e in digest.entries:
        counts[e.status] = counts.get(e.status, 0) + 1
    tally = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    head = f"Stopped ({reason}) after {len(digest.entries)} nodes ({tally})."
    better = [e for e in digest.entries if e.verdict == "better"]
    best = digest.best()
    if base is None:
        return f"{head} The baseline did not finish ok, so nothing could be compared.", \
            [e.node_id for e in digest.entries if e.kind == "baseline"]

    def fmt(e: Any) -> str:
        ci = (f" [{e.elo_ci95[0]:.0f}, {e.elo_ci95[1]:.0f}]" if e.elo_ci95 else "")
        return f"node {e.node_id} ({' '.join(e.overrides) or 'baseline'}): Elo {e.elo:.0f}{ci}"

    if better:
        top = max(better, key=lambda e: e.elo if e.elo is not None else -math.inf)
        text = (f"{head} {len(better)} change(s) beat their parent outside the noise; the "
                f"strongest is {fmt(top)} vs {fmt(base)} ({top.verdict_test}).")
        return text, [base.node_id] + [e.node_id for e in better]
    if best is not None and best.node_id != base.node_id:
        verdict = best.verdict or "not yet compared"
        text = (f"{head} No change was better than the baseline outside the noise. Highest "
                f"point estimate: {fmt(best)} vs {fmt(base)}; verdict: {verdict}"
                f"{' (' + best.verdict_test + ')' if best.verdict_test else ''}.")
        return text, [base.node_id, best.node_id]
    return f"{head} No change was better than the baseline {fmt(base)}.", [base.node_id]


class ClusterUnavailable(RuntimeError):
    """The cluster launcher could not submit a node: the question pauses (resumable)."""


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
