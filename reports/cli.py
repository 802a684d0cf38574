"""`research report [QUESTION_ID]`: write the report of a question (default: the latest)."""
from __future__ import annotations

import argparse
import os
import sys

from experiment_tree.workspace import DEFAULT_WORKSPACE, Workspace


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="research report",
                                description="Write WORKSPACE/report/report.md and index.html, answer "
                                            "first: the question, the answer and its figure (y "
                                            "against x with 95% intervals and the trend, for an "
                                            "x/y experiment; the verdict for an A/B), then the "
                                            "tree, every node's strength, learning curves, the "
                                            "ladder and a table of nodes.")
    p.add_argument("question", nargs="?", type=int, default=None,
                   help="question id (default: the latest question)")
    p.add_argument("--workspace", "-w", default=os.environ.get("TENGEN_WORKSPACE", DEFAULT_WORKSPACE),
                   help="folder holding tree.db, runs/ and report/ (default: ./workspace)")
    p.add_argument("--ladder", default=None,
                   help="JSON file of the ladder calibration (default: the cached one, if any)")
    args = p.parse_args(argv)
    from reports.report import write_report
    try:
        index = write_report(Workspace(args.workspace), args.question, ladder=args.ladder)
    except (FileNotFoundError, KeyError, ValueError) as e:
        print(f"research report: {e.args[0] if e.args else e}", file=sys.stderr)
        return 1
    print(f"wrote {index.parent / 'report.md'} and {index}  (open file://{index})")
    return 0
