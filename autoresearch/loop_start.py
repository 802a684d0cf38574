"""Where a question's nodes begin: the starting point (the warm start, trained once for every
node) and the baseline (the default config every other node is compared with). A failed start or
baseline stops the question: nothing else could be compared."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoresearch import jobs
from autoresearch.digest import merge_overrides
from autoresearch.progress import failure_line
from experiment_tree.workspace import Workspace

if TYPE_CHECKING:
    from autoresearch.loop import ResearchLoop

from experiment_tree.records import FAILED_STATUSES as FAILED


def base_overrides(settings: dict[str, Any], extra: list[str]) -> list[str]:
    """The question's board and budget groups, then the agent's `job.extra_overrides`."""
    base = []
    if settings.get("board"):
        base.append(f"board={settings['board']}")
    if settings.get("budget"):
        base.append(f"budget={settings['budget']}")
    return base + list(extra)


def baseline(loop: ResearchLoop) -> Any | None:
    """The latest baseline node that was not interrupted."""
    return next((n for n in reversed(loop.store.nodes(loop.qid)) if n.kind == "baseline"
                 and n.status != "interrupted"), None)


def ensure_baseline(loop: ResearchLoop) -> None:
    """The question's baseline node; after a failed one (then the question stopped as
    `failed`), a resume runs a fresh baseline: the fix may be in the machine, not the code."""
    if loop.baseline_failed:          # the starting point failed: nothing can run
        return
    base = baseline(loop)
    if base is not None and not (base.finished and base.status in FAILED):
        return
    if base is not None:
        loop.say(f"node {base.id}, the baseline, was {base.status}: running the baseline again")
    b = loop.settings
    hyp = (f"Baseline: the default config of board {b.get('board')} and budget "
           f"{b.get('budget')}; every other node is compared with it.")
    nid = loop.store.add_node(loop.qid, None, "baseline", hyp, overrides=[],
                              seed=int(b.get("seed", 0)))
    loop.say(f"node {nid}: baseline")


def check_baseline(loop: ResearchLoop) -> None:
    """A crashed or timed-out baseline stops the question: nothing else can be compared."""
    base = baseline(loop)
    if base is None or not base.finished or base.status not in FAILED or loop.stop_reason:
        return
    log_path = Path(base.run_dir) / jobs.LOG_NAME if base.run_dir else None
    loop.stop_reason = (f"the baseline (node {base.id}) is {base.status}: "
                        f"{failure_line(base.error)}"
                        + (f" (log: {log_path})" if log_path else ""))
    loop.baseline_failed = True


def ensure_start(loop: ResearchLoop, poll_s: float) -> None:
    """The question's starting point, trained once (the warm start alone): every node whose
    change does not concern the warm start begins from it, so two nodes differ by their change
    and their seed, not by two independent warm starts (issue 12: sigma_train at its source;
    and ~25-50 s saved per node). A failed start stops the question like a failed baseline."""
    if loop.judge is None or not loop.cfg.shared_start:
        return
    b = loop.settings
    if b.get("start_checkpoint") and Path(b["start_checkpoint"]).is_file():
        return
    ws = Workspace(loop.workspace)
    run_dir = ws.start_dir(loop.qid)
    overrides = merge_overrides(base_overrides(b, loop.cfg.job.extra_overrides), [],
                                [f"seed={int(b.get('seed', 0))}", "rating.at_end=false",
                                 "train.warm_start.only=true"])
    loop.say("the question's starting point: training the warm start once, for every node")
    # always on this machine: every node, wherever it runs, reads the start it leaves
    job = jobs.start(loop.job_spec(f"start-q{loop.qid}", overrides, None, run_dir,
                                   ws.worktree(f"start-q{loop.qid}")))
    loop.running_start = job
    t0 = time.time()
    while job.poll() is None:
        loop.console.update([("starting point", run_dir, t0)])
        time.sleep(poll_s)
    res = job.wait()
    loop.running_start = None
    ckpt = run_dir / "checkpoints" / "latest.pt"
    if res.status != "ok" or not ckpt.is_file():
        loop.stop_reason = (f"the question's starting point is {res.status}: "
                            f"{failure_line(res.error)} (log: {run_dir / jobs.LOG_NAME})")
        loop.baseline_failed = True
        return
    b = loop.settings
    b["start_checkpoint"] = str(ckpt)
    loop.store.update_question(loop.qid, settings=b)
    loop.say(f"starting point ready: {ckpt}")


def start_overrides(loop: ResearchLoop, node: Any) -> list[str]:
    """`train.warm_start.init_checkpoint=<the question's start>` unless the node changes the
    warm start itself (its overrides or the files of its patch)."""
    from experiments.config import concerns_warm_start
    start = loop.settings.get("start_checkpoint")
    if not start or concerns_warm_start(node.overrides or [],
                                        jobs.protect.patch_paths(node.patch or "")):
        return []
    return [f"train.warm_start.init_checkpoint={start}"]
