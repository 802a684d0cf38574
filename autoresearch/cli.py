"""The `research` command: one entry point, each subcommand implemented by the module that owns it.

Subcommands forward their remaining arguments to a `main(argv)` in the owning module, imported
lazily so that `research gtp` starts without loading torch, optuna or the agent.
"""
from __future__ import annotations

import importlib
import sys

# subcommand -> (module, function, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("autoresearch.run_cli", "main", "answer a research question with the agent loop"),
    "sweep": ("autoresearch.sweep", "main", "run an Optuna sweep from conf/sweep/NAME.yaml"),
    "tree": ("experiment_tree.cli", "main_tree", "show the experiment tree (terminal or --html)"),
    "show": ("experiment_tree.cli", "main_show", "show everything about one node"),
    "explain": ("experiment_tree.cli", "main_explain", "explain a suspect node's failed health check"),
    "report": ("reports.cli", "main", "write report.md and index.html for a question"),
    "gtp": ("go_core.arena.gtp_server", "main", "play over GTP on stdin/stdout"),
    "ladder": ("experiments.ladder", "main", "calibrate or show the reference ladder"),
    "doctor": ("autoresearch.doctor", "main", "check everything the project uses; say how to fix"),
}


def usage() -> str:
    lines = ["usage: research COMMAND [ARGS...]", "", "commands:"]
    for name, (_, _, doc) in SUBCOMMANDS.items():
        lines.append(f"  {name:<8} {doc}")
    lines.append("")
    lines.append("`research COMMAND --help` for a command's options.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"research: unknown command '{name}'\n\n{usage()}", file=sys.stderr)
        return 2
    module, func, _ = SUBCOMMANDS[name]
    rc = getattr(importlib.import_module(module), func)(rest)
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
