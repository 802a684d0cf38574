"""The experiment tree: SQLite store of questions and nodes, and its terminal and HTML views."""
from experiment_tree.records import KINDS, STATUSES, VERDICTS, Node, Question
from experiment_tree.store import TreeStore
from experiment_tree.workspace import Workspace

__all__ = ["KINDS", "STATUSES", "VERDICTS", "Node", "Question", "TreeStore", "Workspace"]
