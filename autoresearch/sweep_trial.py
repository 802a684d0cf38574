"""One sweep trial, start to finish: ask Optuna for it, add its `sweep-trial` node, start its
job through autoresearch/jobs (the launcher `research run` sends its nodes through: its own
worktree, sandbox and wall-clock limit; a process here, or a SLURM job), report new lines of its
`metrics.jsonl` to the pruner while it runs (`MetricsTail`), kill it when the pruner says so, and
tell the study. A trial that crashes, times out or is refused is told as FAIL and its node keeps the
run's status and error, so every trial is in the study and in the tree exactly once.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoresearch.search_space import SweepSpec, objective_values, suggest_overrides
from autoresearch.sweep_storage import TrialHeartbeat

if TYPE_CHECKING:
    from autoresearch.sweep import WorkerOptions


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
                  f"for experiments.train add rating.every_iters=1 to the sweep's base_overrides",
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
