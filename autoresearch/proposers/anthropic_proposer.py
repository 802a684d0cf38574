"""The Anthropic proposer: Claude reads the tree and the code through tools and proposes the next
experiments (Hydra overrides or a unified diff), or concludes.

Tools: list_nodes, read_node, read_file, search_files (the repository only), propose_config,
propose_code, conclude. The system prompt and the tool definitions are a stable prefix marked
with `cache_control` (prompt caching); each round sends the current digest of the tree.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from autoresearch.agent_config import AnthropicConfig
from autoresearch.digest import effective_change, proposal_key
from autoresearch.override_policy import LEARNER_GROUPS, validate_overrides
from autoresearch.patch_policy import LEARNER_PATHS
from autoresearch.proposers.anthropic_client import AnthropicClient
from autoresearch.proposers.base import Conclusion, Proposal, Proposer, ProposerUnavailable
from autoresearch.safe_git import git_argv

SEARCH_MAX_LINES = 100

SYSTEM_PROMPT = f"""You are the research agent of Tengen, a harness for AlphaZero-style Go \
(self-play + MCTS + a small ResNet, trained on CPU or GPU, scored by Elo against a fixed \
reference ladder: random, GNU Go, KataGo). A person asked a research question. You answer it \
with experiments, each a node of an experiment tree.

How an experiment runs: `python -m experiments.train <Hydra overrides> seed=<seed>` in a fresh \
git worktree of the repository, with your patch (if any) applied; its summary.json gives Elo \
with a 95% interval and the win rate against the reference. Config groups live in conf/ \
(board, model, mcts, selfplay, train, eval, budget); read them before proposing overrides.

Rules:
- Propose with propose_config (Hydra overrides like `train.lr=0.01`) or propose_code (a unified \
diff against the repository's HEAD, as `git diff` prints it; it replaces any patch of the \
parent). Overrides are applied on top of the parent's. Every proposal states a falsifiable \
hypothesis and names its parent node (default: the baseline).
- Never propose an experiment already in the tree (same overrides and patch); learn from the \
failures listed in the digest instead of repeating them.
- A patch may change only the learner: {", ".join(LEARNER_PATHS)}; anything else (the rules, \
the referee, the harness, tests, sitecustomize/conftest/.pth files, a module shadowing another, \
symlinks) is refused. Overrides may set only the groups {", ".join(LEARNER_GROUPS)} (and \
tracking=disabled); eval, budget, board, seed, device, hydra and launcher are fixed.
- A verdict `better`/`worse` means the Elo difference is outside the noise (z-test from the \
intervals, re-run with another seed when close); `inconclusive` means it is not. Do not claim \
more than the verdicts show.
- Conclude (tool conclude) when the evidence answers the question or more runs would not \
change the answer; cite the supporting node ids. Be brief in text; act through the tools.
"""

TOOLS: list[dict[str, Any]] = [
    {"name": "list_nodes",
     "description": "The digest of the experiment tree: every node with its change, status, "
                    "result (Elo with 95% interval) and verdict, and why failures failed.",
     "input_schema": {"type": "object", "properties": {}}},
    {"name": "read_node",
     "description": "Everything about one node: hypothesis, overrides, patch, metrics, verdict, "
                    "error and the tail of its log.",
     "input_schema": {"type": "object", "properties": {"node_id": {"type": "integer"}},
                      "required": ["node_id"]}},
    {"name": "read_file",
     "description": "Read a file of the repository (path relative to its root).",
     "input_schema": {"type": "object", "properties": {
         "path": {"type": "string"},
         "offset": {"type": "integer", "description": "first character to return (default 0)"}},
         "required": ["path"]}},
    {"name": "search_files",
     "description": "Search the repository's tracked files with a regular expression "
                    "(git grep -E); returns path:line:text, at most 100 lines.",
     "input_schema": {"type": "object", "properties": {
         "pattern": {"type": "string"},
         "path": {"type": "string", "description": "a folder or file to search in (optional)"}},
         "required": ["pattern"]}},
    {"name": "propose_config",
     "description": "Propose an experiment that changes only the config: Hydra overrides "
                    "applied on top of the parent node's.",
     "input_schema": {"type": "object", "properties": {
         "overrides": {"type": "array", "items": {"type": "string"},
                       "description": "e.g. [\"train.lr=0.01\", \"mcts.c_puct=2.5\"]"},
         "hypothesis": {"type": "string", "description": "what should happen and why"},
         "parent_id": {"type": "integer", "description": "the node it modifies (default: baseline)"}},
         "required": ["overrides", "hypothesis"]}},
    {"name": "propose_code",
     "description": "Propose an experiment that changes the code: a unified diff against the "
                    "repository's HEAD (git diff format), optionally with overrides.",
     "input_schema": {"type": "object", "properties": {
         "patch": {"type": "string"},
         "hypothesis": {"type": "string"},
         "overrides": {"type": "array", "items": {"type": "string"}},
         "parent_id": {"type": "integer"}},
         "required": ["patch", "hypothesis"]}},
    {"name": "conclude",
     "description": "Answer the question and stop proposing. Cite the nodes that support it.",
     "input_schema": {"type": "object", "properties": {
         "answer": {"type": "string"},
         "evidence": {"type": "array", "items": {"type": "integer"}}},
         "required": ["answer", "evidence"]}},
]
PROPOSING_TOOLS = ("propose_config", "propose_code")


def cached_tools() -> list[dict[str, Any]]:
    """The tool definitions with a cache breakpoint on the last one (tools precede the system
    prompt in the cached prefix)."""
    tools = [dict(t) for t in TOOLS]
    tools[-1]["cache_control"] = {"type": "ephemeral"}
    return tools


def _block_dict(block: Any) -> dict[str, Any]:
    if isinstance(block, dict):
        return block
    return block.model_dump(mode="json", exclude_none=True)


class AnthropicProposer(Proposer):
    name = "anthropic"

    def __init__(self, cfg: AnthropicConfig, store: Any, question_id: int,
                 repo_root: Path | str, client: Any = None):
        self.cfg = cfg
        self.store = store
        self.qid = question_id
        self.repo_root = Path(repo_root).resolve()
        if isinstance(client, AnthropicClient):
            self.client = client
        else:
            self.client = AnthropicClient(cfg, sdk=client)   # client=None: the real SDK

    # -- prompt --------------------------------------------------------------------------------
    def system(self) -> list[dict[str, Any]]:
        q = self.store.get_question(self.qid)
        return [{"type": "text", "text": SYSTEM_PROMPT},
                {"type": "text", "text": f"The research question (id {q.id}): {q.text}",
                 "cache_control": {"type": "ephemeral"}}]

    def take_usage(self) -> tuple[int, float]:
        return self.client.take_usage()

    def _cost_spent(self) -> bool:
        q = self.store.get_question(self.qid)
        cap = (q.budget or {}).get("cost_usd", self.cfg.cost_budget_usd)
        pending = self.client._pending_cost
        return cap is not None and q.cost_usd + pending >= float(cap)

    # -- propose / conclude --------------------------------------------------------------------
    def propose(self, digest: Any, n: int) -> list[Proposal] | Conclusion:
        messages: list[dict[str, Any]] = [{"role": "user", "content": (
            f"{digest.text}\n\nPropose up to {n} new experiment(s) with propose_config or "
            f"propose_code (use the read tools first if you need to), or conclude if the "
            f"question is answered.")}]
        proposals: list[Proposal] = []
        keys = set(digest.keys)
        nudged = False
        for _ in range(max(1, self.cfg.max_turns)):
            if self._cost_spent():
                break
            msg = self.client.create(system=self.system(), tools=cached_tools(),
                                     messages=messages)
            messages.append({"role": "assistant",
                             "content": [_block_dict(b) for b in msg.content]})
            uses = [b for b in msg.content if getattr(b, "type", None) == "tool_use"]
            if not uses:
                if proposals or nudged:
                    break
                nudged = True
                messages.append({"role": "user", "content": "Act through the tools: propose an "
                                 "experiment (propose_config / propose_code) or conclude."})
                continue
            results = []
            conclusion = None
            for use in uses:
                text, is_error, made = self.handle(use.name, dict(use.input or {}), digest, keys)
                if isinstance(made, Conclusion):
                    conclusion = made
                elif made is not None:
                    proposals.append(made)
                results.append({"type": "tool_result", "tool_use_id": use.id, "content": text,
                                **({"is_error": True} if is_error else {})})
            if conclusion is not None and not proposals:
                return conclusion
            if len(proposals) >= n:
                break
            messages.append({"role": "user", "content": results})
        return proposals[:n] if proposals else []

    def conclude(self, digest: Any) -> Conclusion | None:
        if self._cost_spent():
            return None
        msg = self.client.create(
            system=self.system(), tools=cached_tools(),
            tool_choice={"type": "tool", "name": "conclude"},
            messages=[{"role": "user", "content": f"{digest.text}\n\nThe budget is spent. "
                       "Answer the question from these results with the conclude tool, "
                       "citing the supporting nodes and saying how sure the verdicts allow."}])
        for b in msg.content:
            if getattr(b, "type", None) == "tool_use" and b.name == "conclude":
                args = dict(b.input or {})
                return Conclusion(str(args.get("answer", "")),
                                  [int(e) for e in args.get("evidence", []) if str(e).isdigit()])
        return None

    # -- tools ---------------------------------------------------------------------------------
    def handle(self, name: str, args: dict[str, Any], digest: Any, keys: set
               ) -> tuple[str, bool, Proposal | Conclusion | None]:
        """Run one tool call: (result text, is_error, a proposal/conclusion or None)."""
        try:
            if name == "list_nodes":
                return digest.text, False, None
            if name == "read_node":
                node = self.store.get_node(int(args["node_id"]))
                if node.question_id != self.qid:
                    return f"node {node.id} belongs to another question", True, None
                d = node.to_dict()
                return json.dumps(d, indent=1, default=str)[:self.cfg.max_file_chars], False, None
            if name == "read_file":
                return self.read_file(str(args["path"]), int(args.get("offset") or 0)), False, None
            if name == "search_files":
                return self.search(str(args["pattern"]), args.get("path")), False, None
            if name in PROPOSING_TOOLS:
                return self.make_proposal(name, args, digest, keys)
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
        key = proposal_key(*effective_change(parent, overrides, patch))
        if key in keys:
            return ("this experiment (same overrides and patch) is already in the tree; "
                    "propose something else"), True, None
        keys.add(key)
        proposal = Proposal(kind="code" if name == "propose_code" else "config",
                            hypothesis=hypothesis, overrides=overrides, patch=patch,
                            parent_id=parent.id if parent is not None else None)
        return "accepted: it will run as a new node", False, proposal

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


__all__ = ["AnthropicProposer", "ProposerUnavailable", "TOOLS", "SYSTEM_PROMPT"]
