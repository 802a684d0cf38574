"""Proposers: what to run next, given the digest of the tree (one interface, two kinds)."""
from autoresearch.proposers.base import Conclusion, Proposal, Proposer, ProposerUnavailable

__all__ = ["Conclusion", "Proposal", "Proposer", "ProposerUnavailable"]
