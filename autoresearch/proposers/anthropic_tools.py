"""The tools the Anthropic proposer offers the model, as the API's tool definitions (name,
description, JSON schema of the input). What each call does is anthropic_tool_calls.py; the
conversation that offers them is anthropic_proposer.py."""
from __future__ import annotations

from typing import Any

FORECAST_SCHEMA = {
    "type": "object",
    "description": "your forecast of this node's verdict against its parent (scored afterwards)",
    "properties": {
        "diff_elo": {"type": "number", "description": "expected Elo difference child - parent"},
        "interval_80": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
                        "description": "[low, high]: holds the measured difference with 80% probability"},
        "p_better": {"type": "number", "minimum": 0, "maximum": 1,
                     "description": "probability that the verdict is `better`"}},
    "required": ["diff_elo", "interval_80", "p_better"]}
TRACK_PROPERTIES = {
    "track": {"type": "string", "description": "the line of inquiry this continues (its name) or opens "
                                               "(a new name)"},
    "track_aim": {"type": "string", "description": "what a new track should find out (required "
                                                   "when opening one)"}}

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
         "parent_id": {"type": "integer", "description": "the node it modifies (default: baseline)"},
         "forecast": FORECAST_SCHEMA, **TRACK_PROPERTIES},
         "required": ["overrides", "hypothesis", "forecast", "track"]}},
    {"name": "propose_code",
     "description": "Propose an experiment that changes the code: a unified diff against the "
                    "repository's HEAD (git diff format), optionally with overrides.",
     "input_schema": {"type": "object", "properties": {
         "patch": {"type": "string"},
         "hypothesis": {"type": "string"},
         "overrides": {"type": "array", "items": {"type": "string"}},
         "parent_id": {"type": "integer"},
         "forecast": FORECAST_SCHEMA, **TRACK_PROPERTIES},
         "required": ["patch", "hypothesis", "forecast", "track"]}},
    {"name": "propose_experiment",
     "description": "Propose an x/y experiment: one factor (x) over several values, optionally a "
                    "second (x2, every combination), each value an arm trained with `seeds` seeds "
                    "and compared with the baseline (seed k with baseline seed k); the answer is a "
                    "figure of y against x with 95% intervals. You get back the plan (arms, runs, "
                    "expected minutes, what the budget cut), the same plan `research run --x` "
                    "makes; every arm becomes a node.",
     "input_schema": {"type": "object", "properties": {
         "x": {"type": "string", "description": "KEY=v1,v2,... a learner config key and its values, "
                                                "e.g. \"selfplay.visits=8,16,32,64\""},
         "x2": {"type": "string", "description": "an optional second factor KEY=v1,v2,... (a grid)"},
         "y": {"type": "string", "description": "what the answer measures: elo (default) | "
                                                "winrate_vs_ref | policy_loss | value_loss | sims_per_s"},
         "seeds": {"type": "integer", "minimum": 1,
                   "description": "training seeds per arm, the baseline's too (default: the "
                                  "planner's; more seeds narrow each arm's interval)"},
         "hypothesis": {"type": "string", "description": "what the curve should show and why"},
         "forecast": {**FORECAST_SCHEMA, "description": "your forecast of each arm's verdict against "
                                                        "the baseline (one forecast for every arm)"},
         **TRACK_PROPERTIES},
         "required": ["x", "hypothesis", "forecast", "track"]}},
    {"name": "run_check",
     "description": "Investigate: run a pytest selection or a Python snippet in a fresh, "
                    "sandboxed worktree of one node (HEAD + its patch; no network), with a time "
                    "limit; returns the exit code and the output. Use it when a result looks "
                    "wrong (an infrastructure bug) before building on it; it costs the "
                    "question's time.",
     "input_schema": {"type": "object", "properties": {
         "node_id": {"type": "integer"},
         "pytest": {"type": "string", "description": "a pytest selection, e.g. 'tests/test_mcts.py -k puct'"},
         "python": {"type": "string", "description": "a Python snippet run with python -c"},
         "timeout_s": {"type": "number", "description": "time limit (default and maximum: the configured one)"}},
         "required": ["node_id"]}},
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
