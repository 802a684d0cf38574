"""`research run "QUESTION"`: answer a research question with the agent loop.

    research run "Does a 10% no-resign fraction help a tiny 9x9 run?" --max-nodes 4
    research run --resume                 # continue the latest unfinished question
    research run --resume --question 3    # or a given one
    research run "..." --launcher slurm --partition gpu   # each node is a SLURM job (submitit)

Defaults are declared in autoresearch/agent_config.py; conf/agent/default.yaml (`--agent-config`
for another file) holds what differs; flags win.

Before anything trains, the checks the question needs run (the engines that rate the nodes, the
model of the Anthropic proposer; `research doctor` runs them all): a failure stops here, in
seconds, with the line that fixes it. A baseline that crashes or times out stops the question
(status `failed`); `--resume` after the fix runs the baseline again and continues.

Exit codes:
  0    the question ended with at least one comparison of finished nodes (a verdict)
  1    it ended without one (the baseline or every node failed), or a preflight check failed
  2    usage error (bad flag or value, nothing to resume)
  130  interrupted or paused (Ctrl-C, SIGTERM, the proposer or cluster unavailable): resumable
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autoresearch.agent_config import REPO_ROOT, AgentConfig, load_agent_config

RESUMABLE = ("open", "running", "interrupted", "failed")
EXIT_COMPARED, EXIT_NO_COMPARISON, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


# Flags that set a field of the agent config: (flag, dotted AgentConfig field, type, choices, note).
# Each flag's help is that field's doc and its default the field's default (shown, never copied):
# a flag not given is None and leaves the agent YAML's value alone.
CONFIG_FLAGS: tuple[tuple[str, str, type, tuple[str, ...] | None, str], ...] = (
    ("--max-nodes", "max_nodes", int, None, ""),
    ("--max-hours", "max_hours", float, None, ""),
    ("--workers", "workers", int, None, ""),
    ("--proposer", "proposer", str, ("anthropic", "offline"), ""),
    ("--board", "board", str, None, ""),
    ("--budget", "budget", str, None, ""),
    ("--seed", "seed", int, None, ""),
    ("--sweep", "offline.sweep", str, None,
     "given: the Optuna search instead of the planner, for questions of the form 'find the best settings'"),
    ("--job-module", "job.module", str, None, ""),
    ("--job-timeout-s", "job.wall_clock_s", float, None, ""),
    ("--mem-limit-mb", "job.mem_limit_mb", int, None, ""),
    ("--launcher", "launcher", str, ("local", "slurm", "submitit-local"), ""),
    ("--partition", "slurm.partition", str, None, "with --launcher slurm"),
    ("--max-cost-usd", "anthropic.max_cost_usd", float, None, ""),
    ("--model", "anthropic.model", str, None,
     "checked by preflight and the models endpoint before the first node"),
)


def _field(path: str) -> tuple[type, str]:
    """The dataclass that holds the dotted AgentConfig field `path`, and the field's name."""
    from dataclasses import fields
    cls = AgentConfig
    *outer, name = path.split(".")
    for part in outer:
        f = next(f for f in fields(cls) if f.name == part)
        cls = type(f.default_factory())  # type: ignore[misc]
    return cls, name


def add_config_flags(ap: argparse.ArgumentParser) -> None:
    from experiments.config_docs import field_doc
    for flag, path, typ, choices, note in CONFIG_FLAGS:
        cls, name = _field(path)
        default = getattr(cls(), name)
        ap.add_argument(flag, type=typ, choices=choices, default=None,
                        help=f"{note + ': ' if note else ''}{field_doc(cls, name)} (agent config {path}; default {default})")


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="research run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("question", nargs="?", help="the research question (omit with --resume)")
    ap.add_argument("--workspace", default=None,
                    help="folder of tree.db, runs/, report/ (default $TENGEN_WORKSPACE or ./workspace)")
    add_config_flags(ap)
    ap.add_argument("--resume", action="store_true",
                    help="continue the latest unfinished question (or --question ID)")
    ap.add_argument("--question", type=int, default=None, dest="question_id",
                    help="with --resume: the question to continue")
    ap.add_argument("--agent-config", default=None, help="agent YAML (default conf/agent/default.yaml)")
    ap.add_argument("--repo", default=None,
                    help="git repository to research (default: this project's checkout)")
    ap.add_argument("--no-report", action="store_true",
                    help="do not regenerate the report after each node (write it with research report)")
    ap.add_argument("--set", action="append", default=[], metavar="OVERRIDE",
                    help="a Hydra override added to every node (repeatable), e.g. tracking=disabled")
    ap.add_argument("--skip-preflight", action="store_true",
                    help="do not check engines and model before the first node (not recommended)")
    # -- the planner's flags (--dry-run, --x, --x2, --y, --seeds): autoresearch/planner/run_plan.py --
    from autoresearch.planner.run_plan import add_flags as add_planner_flags
    add_planner_flags(ap)
    # -- end of the planner's flags ----------------------------------------------------------------
    return ap.parse_args(argv)


def preflight(cfg: AgentConfig, kind: str) -> bool:
    """Run the checks this question needs; print what failed and how to fix it."""
    import time as _time

    from autoresearch import doctor
    t = _time.perf_counter()
    print("preflight: checking what this question needs (`research doctor` checks everything)",
          flush=True)
    checks = doctor.run_checks(doctor.preflight_checks(cfg.job.module, kind, cfg.anthropic.model),
                               stop_on_required_failure=True)
    bad = [c for c in checks if c.required and not c.ok]
    if bad:
        print(f"research run: preflight failed, nothing was trained:\n"
              f"{doctor.failures_message(checks)}", file=sys.stderr)
        return False
    print(f"preflight: {len(checks)} checks passed in {_time.perf_counter() - t:.1f} s", flush=True)
    return True


def apply_flags(cfg: AgentConfig, a: argparse.Namespace) -> AgentConfig:
    """The flags given (not None) written into `cfg` (the agent YAML's values), then checked."""
    for flag, path, *_ in CONFIG_FLAGS:
        value = getattr(a, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            *outer, name = path.split(".")
            target = cfg
            for part in outer:
                target = getattr(target, part)
            setattr(target, name, value)
    if cfg.launcher not in ("local", "slurm", "submitit-local"):
        raise SystemExit(f"research run: unknown launcher {cfg.launcher!r} "
                         f"(local | slurm | submitit-local)")
    cfg.job.extra_overrides = list(cfg.job.extra_overrides) + list(a.set)
    if cfg.workers < 1:
        raise SystemExit("research run: --workers must be at least 1")
    return cfg


def choose_proposer_kind(cfg: AgentConfig) -> str:
    kind = cfg.proposer
    if kind == "auto":
        kind = "anthropic" if os.environ.get("ANTHROPIC_API_KEY") else "offline"
    if kind == "anthropic" and not os.environ.get("ANTHROPIC_API_KEY"):
        raise SystemExit("research run: --proposer anthropic needs ANTHROPIC_API_KEY in the "
                         "environment (or use --proposer offline, which needs no key)")
    if kind not in ("anthropic", "offline"):
        raise SystemExit(f"research run: unknown proposer {kind!r} (anthropic | offline)")
    return kind


def make_proposer(kind: str, cfg: AgentConfig, workspace: Path, question_id: int, store,
                  repo_root: Path, client=None):
    """The proposer for `kind`; `client` replaces the Anthropic SDK client (tests)."""
    plan = (store.get_question(question_id).settings or {}).get("plan")
    if kind == "offline" and plan:
        from autoresearch.planner.plan import Plan
        from autoresearch.proposers.planner import PlannerProposer
        return PlannerProposer(Plan.from_dict(plan))
    if kind == "offline":
        from autoresearch.proposers.offline import OfflineProposer
        return OfflineProposer(workspace, question_id, cfg.offline.sweep, seed=cfg.seed)
    from autoresearch.proposers.anthropic_proposer import AnthropicProposer
    return AnthropicProposer(cfg.anthropic, store=store, question_id=question_id,
                             repo_root=repo_root, client=client, planner=cfg.planner)


def job_env() -> dict[str, str]:
    """What a job needs that a worktree outside the checkout cannot find by itself."""
    env: dict[str, str] = {}
    env.setdefault("TENGEN_REPO_ROOT", str(REPO_ROOT))
    env.setdefault("APPIMAGE_EXTRACT_AND_RUN", "1")
    return env


def main(argv: list[str] | None = None, *, client=None) -> int:
    """One `research run` per workspace: a second one (or a --resume while the question's loop
    lives) exits with code 2 naming the holder (experiment_tree/workspace.py, Workspace.lock)."""
    from experiment_tree.workspace import Workspace, WorkspaceBusy
    try:
        a = parse_args(list(sys.argv[1:] if argv is None else argv))
        if getattr(a, "dry_run", False):         # prints a plan, writes nothing: no lock needed
            return _main(argv, client=client)
        with Workspace(a.workspace).lock():
            return _main(argv, client=client)
    except WorkspaceBusy as e:
        print(f"research run: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:   # outside the loop (preflight, set-up): nothing ran yet
        print("research run: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: list[str] | None, *, client=None) -> int:
    a = parse_args(list(sys.argv[1:] if argv is None else argv))
    from autoresearch.jobs.spec import SandboxError
    from autoresearch.jobs.worktrees import repo_toplevel
    from autoresearch.loop import ResearchLoop
    from autoresearch.loop_verdicts import compared
    from experiment_tree.workspace import Workspace

    try:
        cfg = apply_flags(load_agent_config(a.agent_config), a)
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            return EXIT_USAGE
        raise
    # -- the planner: the plan is printed (and stored on the question) before anything runs --------
    from autoresearch.planner.run_plan import plan_for_run
    plan = plan_for_run(a, cfg)
    if isinstance(plan, int):
        return plan
    # -- end of the planner's step -----------------------------------------------------------------
    ws = Workspace(a.workspace)
    store = ws.store()
    try:
        repo_root = repo_toplevel(Path(a.repo) if a.repo else REPO_ROOT)
    except SandboxError as e:
        print(f"research run: {e}", file=sys.stderr)
        return EXIT_USAGE

    if a.resume:
        if a.question_id is not None:
            q = store.get_question(a.question_id)
        else:
            open_qs = [q for q in store.questions() if q.status in RESUMABLE]
            if not open_qs:
                print(f"research run --resume: no unfinished question in {ws.root} "
                      f"(statuses {RESUMABLE}); start one with research run \"QUESTION\"",
                      file=sys.stderr)
                return EXIT_USAGE
            q = open_qs[-1]
        settings = dict(q.settings or {})
        for key, value in (("runs", a.max_nodes), ("hours", a.max_hours),
                           ("cost_usd", a.max_cost_usd)):
            if value is not None:
                settings[key] = value
        store.update_question(q.id, settings=settings)
        if a.job_module is None and settings.get("job_module"):
            cfg.job.module = settings["job_module"]
        if a.workers is None and settings.get("workers"):
            cfg.workers = int(settings["workers"])
        if a.launcher is None and settings.get("launcher"):
            cfg.launcher = settings["launcher"]
        try:
            kind = a.proposer or settings.get("proposer") or choose_proposer_kind(cfg)
            if kind == "anthropic":
                choose_proposer_kind(AgentConfig(proposer="anthropic"))
        except SystemExit as e:
            print(e.code, file=sys.stderr)
            return EXIT_USAGE
        if not a.skip_preflight and not preflight(cfg, kind):
            return EXIT_NO_COMPARISON
        qid = q.id
        print(f"resuming question {qid}: {q.text}")
    else:
        if not a.question:
            print("research run: give a question, e.g. research run \"Does c_puct 2.5 beat 1.5 "
                  "on 9x9?\" (or --resume to continue one)", file=sys.stderr)
            return EXIT_USAGE
        try:
            kind = choose_proposer_kind(cfg)
        except SystemExit as e:
            print(e.code, file=sys.stderr)
            return EXIT_USAGE
        if not a.skip_preflight and not preflight(cfg, kind):
            return EXIT_NO_COMPARISON
        settings = {"runs": cfg.max_nodes, "hours": cfg.max_hours, "board": cfg.board,
                    "budget": cfg.budget, "seed": cfg.seed, "proposer": kind,
                    "workers": cfg.workers, "job_module": cfg.job.module,
                    "launcher": cfg.launcher}
        if plan is not None:
            settings["plan"] = plan.to_dict()
        if kind == "anthropic":
            settings["cost_usd"] = cfg.anthropic.max_cost_usd
        qid = store.add_question(a.question, settings)
        print(f"question {qid}: {a.question} (proposer {kind}, {cfg.max_nodes} runs, "
              f"launcher {cfg.launcher}, workspace {ws.root})")
    cfg.seed = int(store.get_question(qid).settings.get("seed", cfg.seed))
    try:
        proposer = make_proposer(kind, cfg, ws.root, qid, store, repo_root, client=client)
    except Exception as e:
        print(f"research run: could not start the {kind} proposer: {e}", file=sys.stderr)
        return EXIT_USAGE
    loop = ResearchLoop(store, ws.root, qid, proposer, cfg, repo_root, extra_env=job_env(),
                        report=not a.no_report)
    result = loop.run()
    print(f"question {qid}: {result.status} ({result.reason}); tree: {ws.tree_db}; "
          f"report: {ws.report_dir}")
    if result.status == "interrupted":
        print(f"resume with: research run --resume --question {qid} --workspace {ws.root}")
        return EXIT_INTERRUPTED
    if result.status == "failed":
        print(f"after fixing it: research run --resume --question {qid} --workspace {ws.root}")
        return EXIT_NO_COMPARISON
    if not compared(store, qid):
        print(f"question {qid} ended without comparing two finished nodes (see research tree "
              f"--workspace {ws.root})")
        return EXIT_NO_COMPARISON
    return EXIT_COMPARED


if __name__ == "__main__":
    sys.exit(main())
