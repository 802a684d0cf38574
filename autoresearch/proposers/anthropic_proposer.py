"""The Anthropic proposer: Claude reads the tree and the code through tools and proposes the next
experiments (Hydra overrides or a unified diff), each with a forecast and a track, or concludes.

Tools: list_nodes, read_node (with the node's learning-curve figure as an image when the report
has drawn it), read_file, search_files (the repository only), run_check (a pytest selection or a
snippet in a sandboxed worktree of a node, run_check.py), propose_config, propose_code,
propose_experiment (an x/y experiment planned by the offline planner's code, its arms run as nodes
with their seeds), conclude -- defined in anthropic_tools.py, run by anthropic_tool_calls.py;
this module holds the conversation. The brief is brief.md next to this file. The system prompt
and the tool definitions are a stable prefix marked with `cache_control` (prompt caching); each
round sends the current digest of the tree, the agent's forecast calibration and its tracks.
Before a round, every track due a step-back review gets one (stepback.py, its brief stepback.md).
"""
from __future__ import annotations

from pathlib import Path
from string import Template
from typing import Any

from autoresearch.agent_config import AnthropicConfig, PlannerConfig
from autoresearch.forecast import calibration_text
from autoresearch.health import health_text
from autoresearch.override_policy import LEARNER_GROUPS
from autoresearch.patch_policy import LEARNER_PATHS
from autoresearch.proposers.anthropic_client import AnthropicClient, check_model
from autoresearch.proposers.anthropic_tool_calls import ToolCalls
from autoresearch.proposers.anthropic_tools import cached_tools
from autoresearch.proposers.base import Conclusion, Proposal, Proposer, ProposerUnavailable
from autoresearch.proposers.stepback import due_reviews, review_track
from autoresearch.tracks import tracks_text

ANSWER_FIGURE = "node_strength.png"   # the report's strength-per-node figure, shown before the answer

BRIEF_PATH = Path(__file__).with_name("brief.md")   # the agent's brief (its program.md)


def system_prompt() -> str:
    """The agent's brief (brief.md) with the learner's paths and config groups filled in."""
    return Template(BRIEF_PATH.read_text()).substitute(
        learner_paths=", ".join(LEARNER_PATHS), learner_groups=", ".join(LEARNER_GROUPS))


SYSTEM_PROMPT = system_prompt()


def _block_dict(block: Any) -> dict[str, Any]:
    if isinstance(block, dict):
        return block
    return block.model_dump(mode="json", exclude_none=True)


class AnthropicProposer(Proposer):
    name = "anthropic"

    def __init__(self, cfg: AnthropicConfig, store: Any, question_id: int,
                 repo_root: Path | str, client: Any = None, planner: PlannerConfig | None = None):
        self.cfg = cfg
        self.store = store
        self.qid = question_id
        self.repo_root = Path(repo_root).resolve()
        self.tools = ToolCalls(cfg, planner or PlannerConfig(), store, question_id, self.repo_root)
        if isinstance(client, AnthropicClient):
            self.client = client
        else:
            self.client = AnthropicClient(cfg, sdk=client)   # client=None: the real SDK
        # a name the SDK lists may still be retired at the API: ask its models endpoint (online)
        check_model(self.client.sdk, cfg.model)

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
        cap = (q.settings or {}).get("cost_usd", self.cfg.max_cost_usd)
        pending = self.client._pending_cost
        return cap is not None and q.cost_usd + pending >= float(cap)

    # -- propose / conclude --------------------------------------------------------------------
    def context(self, digest: Any) -> str:
        """What the model reads each round: the digest, its forecast calibration, the tracks."""
        nodes = self.store.nodes(self.qid)
        return "\n\n".join(p for p in [digest.text, health_text(nodes), calibration_text(nodes),
                                        tracks_text(self.store, self.qid, nodes)] if p)

    def step_back(self, digest: Any) -> None:
        """A step-back review of every track due one (stepback_after non-better nodes in a row,
        or stepback_every settled nodes since its last review)."""
        for track, run in due_reviews(self.store, self.qid, self.cfg.stepback_after,
                                      self.cfg.stepback_every):
            if self._cost_spent():
                return
            review_track(self.client, self.store, track, run, self.context(digest))

    def propose(self, digest: Any, n: int) -> list[Proposal] | Conclusion:
        queued = self.tools.queued_arms(digest, n)
        if queued:                  # arms of an accepted experiment go first, without a model call
            return queued
        self.step_back(digest)
        messages: list[dict[str, Any]] = [{"role": "user", "content": (
            f"{self.context(digest)}\n\nPropose up to {n} new experiment(s) with propose_config or "
            f"propose_code, each with its forecast and track (use the read tools first if you "
            f"need to), or conclude if the question is answered.")}]
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
                text, is_error, made = self.tools.handle(use.name, dict(use.input or {}), digest, keys)
                if isinstance(made, Conclusion):
                    conclusion = made
                elif isinstance(made, list):        # propose_experiment: its arms
                    proposals.extend(made)
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
        content: list[dict[str, Any]] = [{"type": "text", "text": (
            f"{self.context(digest)}\n\nThe budget is spent. Answer the question from these "
            "results with the conclude tool, citing the supporting nodes and saying how sure the "
            "verdicts allow.")}]
        figure = self.tools.image(ANSWER_FIGURE)      # look at the strength of every node before answering
        if figure is not None:
            content += [{"type": "text", "text": f"The report's figure {ANSWER_FIGURE}:"}, figure]
        msg = self.client.create(
            system=self.system(), tools=cached_tools(),
            tool_choice={"type": "tool", "name": "conclude"},
            messages=[{"role": "user", "content": content}])
        for b in msg.content:
            if getattr(b, "type", None) == "tool_use" and b.name == "conclude":
                args = dict(b.input or {})
                return Conclusion(str(args.get("answer", "")),
                                  [int(e) for e in args.get("evidence", []) if str(e).isdigit()])
        return None

    def handle(self, name: str, args: dict[str, Any], digest: Any, keys: set
               ) -> tuple[str | list, bool, Proposal | Conclusion | None]:
        """Run one tool call (anthropic_tool_calls.py, `ToolCalls.handle`)."""
        return self.tools.handle(name, args, digest, keys)

    def rejected(self, proposal: Proposal, reason: str) -> None:
        """An arm the loop refused is not handed out again."""
        self.tools.rejected(proposal, reason)


__all__ = ["AnthropicProposer", "ProposerUnavailable", "SYSTEM_PROMPT"]
