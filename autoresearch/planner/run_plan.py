"""`research run`'s planning step: plan the question before anything runs, print the plan, and
stop there under --dry-run (exit 0) or on a refusal (exit 1, the refusal printed).

The planner is the offline default; `--sweep NAME` asks for the Optuna search instead, and the
Anthropic proposer plans for itself (unless --x is given: an x/y experiment is always planned).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from autoresearch.planner.design import make_plan, parse_x_flag
from autoresearch.planner.plan import Plan
from autoresearch.planner.parse import PlanRefused
from autoresearch.planner.vocabulary import budget_expected_s


def add_flags(ap: argparse.ArgumentParser) -> None:
    """The planner's flags of `research run`."""
    g = ap.add_argument_group("planner (the offline default: the experiment the question names)")
    g.add_argument("--dry-run", action="store_true",
                   help="print the plan and stop (exit 1 when the planner refuses the question)")
    g.add_argument("--x", default=None, metavar="KEY=v1,v2,...",
                   help="the x axis: a learner key and its values, e.g. selfplay.visits=8,16,32,64")
    g.add_argument("--x2", default=None, metavar="KEY=v1,v2,...",
                   help="a second factor: every combination with --x is run (a grid)")
    g.add_argument("--y", default=None, metavar="METRIC",
                   help="what the answer measures: elo | winrate_vs_ref | policy_loss | value_loss | "
                        "sims_per_s (default: read from the question, else elo)")
    g.add_argument("--seeds", type=int, default=None,
                   help="training seeds per arm (default conf/agent planner.seeds)")


def wants_plan(a: argparse.Namespace, cfg: Any) -> bool:
    """Plan this run? Yes for the offline default and x/y experiments; not for --sweep or the LLM."""
    if a.resume:
        return False
    if a.x or a.x2 or a.dry_run:
        return True
    if a.sweep:
        return False
    return cfg.proposer == "offline" or (cfg.proposer == "auto" and not _has_key())


def _has_key() -> bool:
    import os
    return bool(os.environ.get("ANTHROPIC_API_KEY"))


def plan_for_run(a: argparse.Namespace, cfg: Any) -> Plan | int | None:
    """The plan of a new question (printed), an exit code to stop with, or None (no planning)."""
    if not wants_plan(a, cfg):
        return None
    if not a.question:
        print("research run: give a question to plan", file=sys.stderr)
        return 2
    if a.x2 and not a.x:
        print("research run: --x2 needs --x", file=sys.stderr)
        return 2
    try:
        plan = plan_with(cfg.planner, a.question, x=a.x, x2=a.x2, y=a.y, seeds=a.seeds,
                         max_nodes=cfg.max_nodes, max_hours=cfg.max_hours,
                         workers=cfg.workers, board=cfg.board, budget=cfg.budget)
    except PlanRefused as e:
        print(f"research run: {e}", file=sys.stderr)
        return 1
    print(plan.text())
    if a.dry_run:
        return 0
    if a.x or a.x2:
        cfg.proposer = "offline"          # an x/y experiment is the planner's, key or not
    return plan


def plan_with(p: Any, question: str, *, x: str | None = None, x2: str | None = None,
              y: str | None = None, seeds: int | None = None, max_nodes: int | None = None,
              max_hours: float | None = None, workers: int = 1, board: str = "9x9",
              budget: str = "tiny") -> Plan:
    """The plan of `question` under the planner settings `p` (conf/agent `planner`), with `x`/`x2`
    as `--x` takes them (KEY=v1,v2,...): what `research run` and the Anthropic proposer's
    `propose_experiment` tool both build. PlanRefused says what was wrong."""
    minutes = p.minutes_per_node or budget_expected_s(board, budget) / 60.0 + p.rating_minutes
    return make_plan(question, x=_x(x) if x else None, x2=_x(x2) if x2 else None, y=y,
                     seeds=p.seeds if seeds is None else int(seeds), max_nodes=max_nodes,
                     max_hours=max_hours, workers=workers, board=board, budget=budget,
                     sweep_points=p.sweep_points, grid_points=p.grid_points,
                     minutes_per_node=minutes, sigma_train_elo=p.sigma_train_elo)


def _x(text: str) -> tuple[str, list[str]]:
    return parse_x_flag(text)
