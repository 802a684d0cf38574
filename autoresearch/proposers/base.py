"""The proposer interface shared by the Anthropic (LLM) and the offline (Optuna) proposers."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROPOSAL_KINDS = ("config", "code", "sweep-trial")


@dataclass
class Proposal:
    """One experiment to run: a change relative to `parent_id` and why it might matter."""
    kind: str                                  # config | code | sweep-trial (a node kind)
    hypothesis: str                            # what should happen, and why
    overrides: list[str] = field(default_factory=list)  # Hydra overrides (on top of the parent's)
    patch: str | None = None                   # unified diff against the repo's HEAD (kind code)
    parent_id: int | None = None               # None: the question's baseline
    meta: dict[str, Any] = field(default_factory=dict)   # the proposer's own bookkeeping
    forecast: Any = None                       # autoresearch.forecast.Forecast vs the parent (scored after the verdict)
    track: str | None = None                   # the line of inquiry it opens or continues (autoresearch/tracks.py)
    track_aim: str | None = None               # the aim of the track, when this proposal opens it

    def __post_init__(self) -> None:
        if self.kind not in PROPOSAL_KINDS:
            raise ValueError(f"proposal kind must be one of {PROPOSAL_KINDS}, got {self.kind!r}")
        if self.kind == "code" and not (self.patch and self.patch.strip()):
            raise ValueError("a code proposal needs a patch (a unified diff)")


@dataclass
class Conclusion:
    """The proposer's answer to the question, with the nodes that support it."""
    answer: str
    evidence: list[int] = field(default_factory=list)


class ProposerUnavailable(RuntimeError):
    """The proposer cannot go on now (API down after retries, cost budget spent): the loop
    stops cleanly and the question can be resumed with `research run --resume`."""


class Proposer:
    """`propose(digest, n)` returns up to n proposals, or a Conclusion; `observe(node)` is told
    of every node once it has finished (ok or not)."""

    name = "base"

    def propose(self, digest: Any, n: int) -> list[Proposal] | Conclusion:
        raise NotImplementedError

    def observe(self, node: Any) -> None:
        pass

    def take_usage(self) -> tuple[int, float]:
        """LLM tokens and USD spent since the last call (the loop books them on the tree)."""
        return 0, 0.0

    def runs_reserved(self, digest: Any) -> int:
        """Runs this proposer still means to start (e.g. a plan's arms not yet in the tree): the
        verdicts' extra seed pairs come out of what is left after them, not before."""
        return 0

    def conclude(self, digest: Any) -> Conclusion | None:
        """Asked once when the budget is spent: an answer, or None for the loop's own summary."""
        return None

    def accepted(self, proposal: Proposal, node_id: int) -> None:
        """The loop made `proposal` into node `node_id` (to map trials to nodes)."""

    def rerun(self, old_node_id: int, new_node_id: int) -> None:
        """Node `new_node_id` re-runs `old_node_id`, which was interrupted."""

    def rejected(self, proposal: Proposal, reason: str) -> None:
        """The loop did not make `proposal` into a node (e.g. it repeats an experiment)."""
