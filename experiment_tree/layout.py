"""Tree layout for drawing: each node gets a column (x) and a depth (y).

Leaves take consecutive columns in depth-first order; a parent sits midway over its first and last
child. Simple, deterministic, and no two nodes overlap.
"""
from __future__ import annotations

from dataclasses import dataclass

from experiment_tree.records import Node


@dataclass
class Placed:
    node: Node
    x: float      # column, in leaf units (0, 1, 2, ...)
    depth: int


def roots_and_children(nodes: list[Node]) -> tuple[list[Node], dict[int, list[Node]]]:
    """Roots (no parent, or a parent outside `nodes`) and each node's children, by id order."""
    ids = {n.id for n in nodes}
    kids: dict[int, list[Node]] = {n.id: [] for n in nodes}
    roots = []
    for n in sorted(nodes, key=lambda n: n.id):
        if n.parent_id is None or n.parent_id not in ids:
            roots.append(n)
        else:
            kids[n.parent_id].append(n)
    return roots, kids


def layout(nodes: list[Node]) -> list[Placed]:
    roots, kids = roots_and_children(nodes)
    placed: dict[int, Placed] = {}
    next_leaf = 0.0

    def visit(n: Node, depth: int) -> float:   # iterative would only matter past ~1000 levels
        nonlocal next_leaf
        children = kids[n.id]
        if not children:
            x = next_leaf
            next_leaf += 1
        else:
            xs = [visit(c, depth + 1) for c in children]
            x = (xs[0] + xs[-1]) / 2
        placed[n.id] = Placed(n, x, depth)
        return x

    for r in roots:
        visit(r, 0)
    return [placed[n.id] for n in sorted(nodes, key=lambda n: n.id)]
