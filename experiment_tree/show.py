"""Everything about one node (`research show NODE`): what changed against its parent, the patch,
the metrics, the summary, the verdict, and the end of its log."""
from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from experiment_tree.format import comparison_text, first_line, headline
from experiment_tree.records import Node
from experiment_tree.store import TreeStore
from experiment_tree.suspect import health_of, mark
from experiments.rundir import read_metrics, read_summary

LOG_TAIL_LINES = 30


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """Hydra overrides as key -> value (`~key` deletions map to '<deleted>')."""
    out = {}
    for o in overrides:
        if o.startswith("~"):
            out[o[1:].split("=", 1)[0]] = "<deleted>"
        elif "=" in o:
            k, v = o.split("=", 1)
            out[k.lstrip("+")] = v
        else:
            out[o] = ""
    return out


def overrides_diff(parent: list[str], child: list[str]) -> list[str]:
    """Lines `+ key=value` (new), `- key=value` (dropped), `~ key: old -> new` (changed)."""
    a, b = parse_overrides(parent), parse_overrides(child)
    lines = []
    for k in sorted(set(a) | set(b)):
        if k not in a:
            lines.append(f"+ {k}={b[k]}")
        elif k not in b:
            lines.append(f"- {k}={a[k]}")
        elif a[k] != b[k]:
            lines.append(f"~ {k}: {a[k]} -> {b[k]}")
    return lines


def node_run_dir(node: Node, workspace_root: Path | None = None) -> Path | None:
    """The node's run directory: the one recorded, else `W/runs/<id>` when it exists."""
    if node.run_dir:
        return Path(node.run_dir)
    if workspace_root is not None:
        from experiment_tree.workspace import Workspace
        p = Workspace(workspace_root).run_dir(node.id)
        if p.exists():
            return p
    return None


def read_log_tail(run_dir: Path | None, lines: int = LOG_TAIL_LINES) -> str | None:
    if run_dir is None:
        return None
    log = Path(run_dir) / "log.txt"
    if not log.exists():
        return None
    with open(log, "rb") as f:      # read only the end of a long log
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 64_000))
        text = f.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def hydra_config(run_dir: Path | None) -> str | None:
    if run_dir is None:
        return None
    p = Path(run_dir) / ".hydra" / "config.yaml"
    return p.read_text() if p.exists() else None


def config_diff(parent_dir: Path | None, child_dir: Path | None) -> list[str] | None:
    """Unified diff of the two resolved configs, or None when either is missing."""
    a, b = hydra_config(parent_dir), hydra_config(child_dir)
    if a is None or b is None:
        return None
    return list(difflib.unified_diff(a.splitlines(), b.splitlines(), "parent/.hydra/config.yaml",
                                     "node/.hydra/config.yaml", lineterm="", n=1))


def _fmt_time(t: float | None) -> str:
    if not t:
        return "-"
    import datetime as dt
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def node_details(store: TreeStore, node_id: int, workspace_root: Path | None = None) -> dict[str, Any]:
    """Everything about a node as plain data (the text and HTML views both use it)."""
    node = store.get_node(node_id)
    parent = store.get_node(node.parent_id) if node.parent_id is not None else None
    run_dir = node_run_dir(node, workspace_root)
    parent_dir = node_run_dir(parent, workspace_root) if parent else None
    records = read_metrics(run_dir) if run_dir and run_dir.exists() else []
    summary = read_summary(run_dir) if run_dir and run_dir.exists() else None
    return {
        "node": node.to_dict(),
        "parent": parent.to_dict() if parent else None,
        "children": [c.id for c in store.children(node_id)],
        "headline": headline(node.metrics),
        "overrides_diff": overrides_diff(parent.overrides if parent else [], node.overrides),
        "config_diff": config_diff(parent_dir, run_dir) if parent else None,
        "run_dir": str(run_dir) if run_dir else None,
        "metrics_records": len(records),
        "last_metrics": records[-1] if records else None,
        "summary": summary,
        "log_tail": read_log_tail(run_dir) or node.log_tail,
    }


def health_line(node: Any) -> str:
    """suspect / explained / all passed / not checked, in one line."""
    h = health_of(node)
    if not h:
        return "not checked"
    return mark(node) or f"{sum(1 for f in h.get('flags', []) if f.get('ok'))} checks passed"


def render_node(store: TreeStore, node_id: int, workspace_root: Path | None = None) -> str:
    d = node_details(store, node_id, workspace_root)
    n = d["node"]
    out = [f"Node #{n['id']}  ({n['kind']}, question {n['question_id']})",
           f"  status:     {n['status']}"]
    if n["error"]:
        out.append(f"  error:      {first_line(n['error'], 200)}")
    out += [f"  parent:     {'#' + str(n['parent_id']) if n['parent_id'] else '(root)'}",
            f"  children:   {', '.join('#' + str(c) for c in d['children']) or '(none)'}",
            f"  hypothesis: {n['hypothesis'] or '-'}",
            f"  strength:   {d['headline'] or '(not measured)'}",
            f"  verdict:    {n['verdict'] or '-'}"
            + (f"  (test: {n['verdict_test']})" if n["verdict_test"] else ""),
            f"  comparison: {comparison_text(n['metrics']) or '-'}",
            f"  notes:      {n['notes'] or '-'}",
            f"  health:     {health_line(n)}",
            f"  seed:       {n['seed']}",
            f"  command:    {n['command'] or '-'}",
            f"  run dir:    {d['run_dir'] or '-'}",
            f"  W&B run:    {n['wandb_path'] or '-'}",
            f"  sandbox:    {n.get('sandbox') or '-'}",
            f"  created:    {_fmt_time(n['created_at'])}",
            f"  started:    {_fmt_time(n['started_at'])}",
            f"  finished:   {_fmt_time(n['finished_at'])}",
            f"  LLM usage:  {n['tokens']} tokens, ${n['cost_usd']:.4f}",
            "", "Overrides: " + (" ".join(n["overrides"]) or "(none)")]
    if d["parent"] is not None:
        out.append("Config diff against parent #%d (overrides):" % d["parent"]["id"])
        out += ["  " + ln for ln in d["overrides_diff"]] or ["  (same overrides)"]
        if d["config_diff"] is not None:
            out.append("Config diff against parent (.hydra/config.yaml):")
            out += ["  " + ln for ln in d["config_diff"]] or ["  (identical)"]
    out += ["", f"Patch{' (sha256 ' + n['patch_sha256'][:12] + ')' if n['patch_sha256'] else ''}:"]
    out += ["  " + ln for ln in (n["patch"] or "").splitlines()] or ["  (none)"]
    out += ["", "Metrics (summary):"]
    out += [f"  {k}: {json.dumps(v)}" for k, v in sorted(n["metrics"].items())] or ["  (none)"]
    if d["last_metrics"] is not None:
        out.append(f"Last of {d['metrics_records']} iterations in metrics.jsonl:")
        out.append("  " + json.dumps(d["last_metrics"]))
    if d["summary"] is not None:
        s = d["summary"]
        out += ["", "summary.json:",
                f"  status: {s.get('status')}  reference: {s.get('reference')}",
                f"  compute: {json.dumps(s.get('compute', {}))}",
                f"  checkpoint: {s.get('checkpoint')}",
                f"  git: {json.dumps(s.get('git', {}))}"]
    flags = health_of(n).get("flags") or []
    if flags:
        out += ["", "Health checks (the referee's):"]
        out += [f"  {'ok  ' if f.get('ok') else 'FAIL' if f.get('ok') is False else 'n/a '} "
                f"{f.get('check')}: {f.get('detail')}" for f in flags]
    if n["error"]:
        out += ["", "Error:"] + ["  " + ln for ln in n["error"].splitlines()]
    out += ["", "Log tail:"]
    out += ["  " + ln for ln in (d["log_tail"] or "").splitlines()] or ["  (no log)"]
    return "\n".join(out) + "\n"
