"""`research tree` and `research show`: browse the experiment tree in the terminal or the browser."""
from __future__ import annotations

import argparse
import os
import sys

from experiment_tree.workspace import DEFAULT_WORKSPACE, Workspace


def _workspace_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", "-w", default=os.environ.get("TENGEN_WORKSPACE", DEFAULT_WORKSPACE),
                   help="folder holding tree.db, runs/ and report/ (default: ./workspace)")


def _use_colour(no_color: bool) -> bool:
    if no_color or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"


def main_tree(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="research tree",
                                description="Show the experiment tree: status, strength with its "
                                            "interval, verdict against the parent, hypothesis.")
    _workspace_arg(p)
    p.add_argument("--question", "-q", type=int, default=None, help="only this question id")
    p.add_argument("--html", action="store_true",
                   help="write WORKSPACE/report/tree.html (one self-contained page) instead")
    p.add_argument("--no-color", action="store_true", help="plain text (also when not a tty)")
    args = p.parse_args(argv)
    ws = Workspace(args.workspace)
    try:
        store = ws.store(create=False)
        if args.html:
            from experiment_tree.html import write_tree_html
            store.close()
            path = write_tree_html(ws, args.question)
            print(f"wrote {path}  (open it in a browser: file://{path})")
            return 0
        from experiment_tree.terminal import render_tree
        sys.stdout.write(render_tree(store, args.question, color=_use_colour(args.no_color)))
        return 0
    except (FileNotFoundError, KeyError) as e:
        print(f"research tree: {e.args[0] if e.args else e}", file=sys.stderr)
        return 1


def main_show(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="research show",
                                description="Everything about one node: config diff against its "
                                            "parent, patch, metrics, summary, verdict, log tail.")
    p.add_argument("node", type=int, help="node id (see `research tree`)")
    _workspace_arg(p)
    args = p.parse_args(argv)
    ws = Workspace(args.workspace)
    try:
        store = ws.store(create=False)
        from experiment_tree.show import render_node
        sys.stdout.write(render_node(store, args.node, ws.root))
        return 0
    except (FileNotFoundError, KeyError) as e:
        print(f"research show: {e.args[0] if e.args else e}", file=sys.stderr)
        return 1


def main_explain(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="research explain",
                                description="Explain a suspect node's failed health check(s): the "
                                            "node counts in the answer again, with this note shown.")
    p.add_argument("node", type=int, help="node id (research tree marks suspect nodes)")
    p.add_argument("reason", help="why the failed check does not invalidate the node's result")
    _workspace_arg(p)
    args = p.parse_args(argv)
    ws = Workspace(args.workspace)
    try:
        from experiment_tree.suspect import explain, mark
        store = ws.store(create=False)
        node = explain(store, args.node, args.reason, by="user")
        print(f"node {node.id}: {mark(node)}")
        return 0
    except (FileNotFoundError, KeyError, ValueError) as e:
        print(f"research explain: {e.args[0] if e.args else e}", file=sys.stderr)
        return 1
