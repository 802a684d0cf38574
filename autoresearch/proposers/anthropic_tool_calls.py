"""What the Anthropic proposer's tools do (their definitions: anthropic_tools.py): read the tree,
the repository (read-only, .git refused) and the report's figures; investigate with run_check;
turn propose_config / propose_code / propose_experiment calls into proposals (an x/y experiment
planned by the offline planner's code, its arms handed out over the next rounds). Whatever the
model hands a tool that the tool cannot take is said back to it as an error, never raised.
"""
from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from autoresearch.agent_config import AnthropicConfig, PlannerConfig
from autoresearch.digest import effective_change, proposal_key
from autoresearch.forecast import parse_forecast
from autoresearch.override_policy import validate_overrides
from autoresearch.planner.vocabulary import PlanRefused
from autoresearch.proposers.anthropic_tools import PROPOSING_TOOLS
from autoresearch.proposers.base import Conclusion, Proposal
from autoresearch.proposers.planner import PlannerProposer
from autoresearch.proposers.run_check import book_check, check_argv, run_check
from autoresearch.safe_git import git_argv

SEARCH_MAX_LINES = 100
MAX_IMAGE_BYTES = 3_000_000   # the API refuses images over ~5 MB of base64
EXPERIMENTS_KEY = "experiments"   # question.settings[...]: the x/y experiments the model proposed


class ToolCalls:
    """The tools of one question's proposer: `handle` runs a call; the x/y experiments' arms not
    yet in the tree come back through `queued_arms` (read from the question, so a resumed loop
    goes on with them)."""

    def __init__(self, cfg: AnthropicConfig, planner: PlannerConfig, store: Any, question_id: int,
                 repo_root: Path):
        self.cfg = cfg
        self.planner = planner                     # how propose_experiment sizes its plan
        self.arm_runners: dict[int, PlannerProposer] = {}   # experiment index -> its arms' proposer
        self.store = store
        self.qid = question_id
        self.repo_root = repo_root

    def handle(self, name: str, args: dict[str, Any], digest: Any, keys: set
               ) -> tuple[str | list, bool, Proposal | Conclusion | None]:
        """Run one tool call: (result text or content blocks, is_error, a proposal/conclusion
        or None)."""
        try:
            if name == "list_nodes":
                return digest.text, False, None
            if name == "read_node":
                node = self.store.get_node(int(args["node_id"]))
                if node.question_id != self.qid:
                    return f"node {node.id} belongs to another question", True, None
                d = node.to_dict()
                text = json.dumps(d, indent=1, default=str)[:self.cfg.max_file_chars]
                figure = self.figure_of(node)
                if figure is None:
                    return text, False, None
                return [{"type": "text", "text": text}, figure], False, None
            if name == "read_file":
                return self.read_file(str(args["path"]), int(args.get("offset") or 0)), False, None
            if name == "search_files":
                return self.search(str(args["pattern"]), args.get("path")), False, None
            if name == "run_check":
                return self.run_check(args)
            if name in PROPOSING_TOOLS:
                return self.make_proposal(name, args, digest, keys)
            if name == "propose_experiment":
                return self.propose_experiment(args, digest)
            if name == "conclude":
                evidence = [int(e) for e in args.get("evidence") or []]
                return "concluded", False, Conclusion(str(args.get("answer", "")).strip(), evidence)
            return f"unknown tool {name!r}", True, None
        except (KeyError, ValueError, TypeError, LookupError, OSError, re.error,
                subprocess.SubprocessError) as e:
            # anything the model hands us that is not what the tool expects is its error: said
            # back to it, never a crash of the loop (a bad regex, a path through a file...)
            return f"{type(e).__name__}: {e}", True, None

    def make_proposal(self, name: str, args: dict[str, Any], digest: Any, keys: set
                      ) -> tuple[str, bool, Proposal | None]:
        overrides = [str(o).strip() for o in args.get("overrides") or []]
        bad = [o for o in overrides if "=" not in o]
        if bad:
            return f"overrides must be key=value, got {bad}", True, None
        refused = validate_overrides(overrides)
        if refused:
            return "overrides refused: " + "; ".join(refused), True, None
        hypothesis = str(args.get("hypothesis", "")).strip()
        if not hypothesis:
            return "state a hypothesis: what should happen and why", True, None
        parent_id = args.get("parent_id")
        base = digest.baseline()
        parent = self.store.get_node(int(parent_id)) if parent_id is not None else (
            self.store.get_node(base.node_id) if base else None)
        if parent is not None and parent.question_id != self.qid:
            return f"node {parent.id} is not in this question", True, None
        patch = args.get("patch") if name == "propose_code" else None
        if name == "propose_code" and not (patch and str(patch).strip()):
            return "propose_code needs a patch (a unified diff)", True, None
        forecast = parse_forecast(args.get("forecast"))
        track = str(args.get("track") or "").strip()
        aim = str(args.get("track_aim") or "").strip()
        if not track:
            return ("name the track this proposal continues or opens (track), with track_aim "
                    "when it is new"), True, None
        if not aim and track not in {t.name for t in self.store.tracks(self.qid)}:
            return f"track {track!r} is new: give its track_aim (what it should find out)", True, None
        key = proposal_key(*effective_change(parent, overrides, patch))
        if key in keys:
            return ("this experiment (same overrides and patch) is already in the tree; "
                    "propose something else"), True, None
        keys.add(key)
        proposal = Proposal(kind="code" if name == "propose_code" else "config",
                            hypothesis=hypothesis, overrides=overrides, patch=patch,
                            parent_id=parent.id if parent is not None else None,
                            forecast=forecast, track=track, track_aim=aim or None)
        return "accepted: it will run as a new node", False, proposal

    # -- x/y experiments (propose_experiment) ---------------------------------------------------
    def propose_experiment(self, args: dict[str, Any], digest: Any
                           ) -> tuple[str, bool, list[Proposal] | None]:
        """Plan the model's x/y experiment with the offline planner's own code (`plan_with`: keys
        from the vocabulary and the override policy, values typed, cut to the runs left), store
        it on the question (`budget["plan"]`, which the report draws, and the list
        `budget["experiments"]`), print it, and hand its arms out as proposals. What does not fit
        this round is handed out by `queued_arms` in the next ones."""
        from autoresearch.planner.run_plan import plan_with

        hypothesis = str(args.get("hypothesis") or "").strip()
        if not hypothesis:
            return "state a hypothesis: what the curve should show and why", True, None
        forecast = parse_forecast(args.get("forecast"))
        track = str(args.get("track") or "").strip()
        aim = str(args.get("track_aim") or "").strip()
        if not track:
            return "name the track this experiment continues or opens (track)", True, None
        if not aim and track not in {t.name for t in self.store.tracks(self.qid)}:
            return f"track {track!r} is new: give its track_aim (what it should find out)", True, None
        if not isinstance(args.get("x"), str):
            return "x must be a string KEY=v1,v2,... e.g. \"selfplay.visits=8,16,32\"", True, None
        q = self.store.get_question(self.qid)
        b = q.settings or {}
        base = digest.baseline()
        try:
            plan = plan_with(self.planner, q.text, x=args["x"], x2=args.get("x2") or None,
                             y=args.get("y") or None, seeds=args.get("seeds"),
                             max_nodes=self._runs_for_plan(b, base),
                             max_hours=self._hours_left(b), workers=int(b.get("workers") or 1),
                             board=str(b.get("board") or "9x9"), budget=str(b.get("budget") or "tiny"))
        except PlanRefused as e:
            return f"experiment refused: {e}", True, None
        bad = validate_overrides([o for a in plan.arms for o in a.overrides])
        if bad:
            return "experiment refused: " + "; ".join(bad), True, None
        experiments = list(b.get(EXPERIMENTS_KEY) or [])
        record = {"plan": plan.to_dict(), "hypothesis": hypothesis, "forecast": forecast.to_json(),
                  "track": track, "track_aim": aim or None}
        runner = PlannerProposer(plan)
        todo = [a for a in plan.new_arms if a.label not in runner.nodes_of_arms(digest)]
        if not todo:
            return ("every arm of this experiment is already in the tree; propose other values "
                    "or conclude"), True, None
        experiments.append(record)
        b[EXPERIMENTS_KEY] = experiments
        b["plan"] = plan.to_dict()               # the report's x/y figure reads the latest one
        self.store.update_question(self.qid, settings=b)
        print(plan.text())
        arms = self._arms_of(len(experiments) - 1, record, digest, len(todo))
        return (f"accepted: {len(todo)} arm(s) will run as nodes, {plan.seeds} seed(s) each (the "
                f"baseline's seeds too); arms not started this round start in the next ones.\n"
                f"{plan.text()}"), False, arms

    def queued_arms(self, digest: Any, n: int) -> list[Proposal]:
        """Arms of stored experiments that are not in the tree yet (at most n), read back from
        the tree, so a resumed loop goes on with them."""
        out: list[Proposal] = []
        for i, record in enumerate((self.store.get_question(self.qid).settings or {}).get(
                EXPERIMENTS_KEY) or []):
            if len(out) >= n:
                break
            out += self._arms_of(i, record, digest, n - len(out))
        return out

    def _arms_of(self, index: int, record: dict[str, Any], digest: Any, n: int) -> list[Proposal]:
        """Up to n proposals for experiment `index`'s arms not yet in the tree: the planner
        proposer's own (seeds in `meta`, parents by `compare_to`), with the model's hypothesis,
        forecast and track."""
        from autoresearch.forecast import Forecast
        from autoresearch.planner.plan import Plan

        runner = self.arm_runners.get(index)
        if runner is None:
            runner = self.arm_runners[index] = PlannerProposer(Plan.from_dict(record["plan"]))
        made = runner.propose(digest, n)
        if not isinstance(made, list):       # every arm ran: nothing left to hand out
            return []
        for p in made:
            p.hypothesis = f"{record['hypothesis']} [{p.hypothesis}]"
            p.forecast = Forecast.from_json(record["forecast"])
            p.track, p.track_aim = record["track"], record.get("track_aim")
            p.meta["experiment"] = index
        return made

    def rejected(self, proposal: Proposal, reason: str) -> None:
        """An arm the loop refused is not handed out again."""
        runner = self.arm_runners.get(proposal.meta.get("experiment", -1))
        if runner is not None:
            runner.rejected(proposal, reason)

    def _runs_for_plan(self, b: dict[str, Any], base: Any) -> int | None:
        """The runs a new plan may count: the runs left, plus the baseline run already done
        (a plan counts its baseline's seeds)."""
        if b.get("runs") is None:
            return None
        from autoresearch.digest import runs_used
        left = int(b["runs"]) - runs_used(self.store.nodes(self.qid))
        return max(0, left) + (1 if base is not None else 0)

    @staticmethod
    def _hours_left(b: dict[str, Any]) -> float | None:
        if not b.get("hours"):
            return None
        return max(0.0, float(b["hours"]) - float(b.get("spent_s", 0.0)) / 3600)

    def run_check(self, args: dict[str, Any]) -> tuple[str, bool, None]:
        node = self.store.get_node(int(args["node_id"]))
        if node.question_id != self.qid:
            return f"node {node.id} belongs to another question", True, None
        argv = check_argv(args.get("pytest"), args.get("python"))
        limit = float(self.cfg.check_timeout_s)
        timeout = min(limit, float(args.get("timeout_s") or limit))
        res = run_check(self.repo_root, Path(self.store.path).parent, node, argv, timeout,
                        self.cfg.check_sandbox)
        book_check(self.store, self.qid, res.seconds)
        return res.text(), res.rc != 0, None

    def figure_of(self, node: Any) -> dict[str, Any] | None:
        """The node's learning-curve figure (drawn by the report) as an image block, or None."""
        return self.image(f"run_{node.id}.png")

    def image(self, name: str) -> dict[str, Any] | None:
        """A figure of the report (W/report/figures/NAME, W the workspace of tree.db) as an
        image block, or None when the report has not drawn it (yet)."""
        from experiment_tree.workspace import Workspace
        path = Workspace(Path(self.store.path).parent).report_dir / "figures" / name
        if not path.is_file() or path.stat().st_size > MAX_IMAGE_BYTES:
            return None
        return {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                            "data": base64.b64encode(path.read_bytes()).decode()}}

    def _inside(self, rel: str) -> Path:
        p = (self.repo_root / rel).resolve()
        if p != self.repo_root and self.repo_root not in p.parents:
            raise PermissionError(f"{rel} is outside the repository")
        if ".git" in p.relative_to(self.repo_root).parts:
            raise PermissionError("the .git folder is not readable")
        return p

    def read_file(self, rel: str, offset: int = 0) -> str:
        p = self._inside(rel)
        if p.is_dir():
            return "\n".join(sorted(c.name + ("/" if c.is_dir() else "") for c in p.iterdir()
                                    if c.name != ".git"))
        text = p.read_text(errors="replace")
        chunk = text[offset:offset + self.cfg.max_file_chars]
        more = len(text) - offset - len(chunk)
        return chunk + (f"\n[... {more} more characters: read_file with offset="
                        f"{offset + len(chunk)}]" if more > 0 else "")

    def search(self, pattern: str, path: str | None = None) -> str:
        re.compile(pattern)  # a bad pattern is the model's error, said as such
        if "\0" in pattern or "\n" in pattern:
            raise ValueError("the pattern may not contain a NUL or a newline")
        cmd = git_argv("grep", "-n", "-I", "-E", "-e", pattern)
        if path:
            cmd += ["--", str(self._inside(path).relative_to(self.repo_root))]
        cp = subprocess.run(cmd, cwd=self.repo_root, capture_output=True, text=True,
                            errors="replace", timeout=30)
        lines = cp.stdout.splitlines()
        if not lines:
            return "no matches"
        out = "\n".join(line[:300] for line in lines[:SEARCH_MAX_LINES])
        return out + (f"\n[{len(lines) - SEARCH_MAX_LINES} more lines]"
                      if len(lines) > SEARCH_MAX_LINES else "")
