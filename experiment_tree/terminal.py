"""The experiment tree as text: one line per node, indented under its parent.

    #1 ok     Elo 120 [90, 150]               baseline  the default config
    ├─ #2 ok     Elo 180 [150, 210]  better   config    higher learning rate
    │  └─ #4 crash  error: RuntimeError: out of memory   code  bigger net
    └─ #3 running                              config    more simulations
"""
from __future__ import annotations

from experiment_tree.format import first_line, headline, node_label
from experiment_tree.layout import roots_and_children
from experiment_tree.records import Node, Question
from experiment_tree.store import TreeStore
from experiment_tree.suspect import mark
from experiment_tree.tracks_view import track_groups, track_text

RESET = "\033[0m"
STYLE = {  # ANSI SGR codes by colour class
    "better": "\033[1;32m", "worse": "\033[31m", "inconclusive": "\033[33m",
    "crashed": "\033[1;31m", "running": "\033[36m", "pending": "\033[2m",
    "baseline": "\033[1m", "other": "\033[35m",
}
STATUS_STYLE = {"ok": "\033[32m", "crash": "\033[1;31m", "timeout": "\033[1;31m",
                "invalid": "\033[1;31m", "running": "\033[36m", "pending": "\033[2m"}


def _paint(text: str, style: str | None, color: bool) -> str:
    return f"{style}{text}{RESET}" if color and style else text


def node_line(node: Node, color: bool = False, hyp_width: int = 70) -> str:
    """`#id status  metric  verdict  kind  hypothesis` (a crash shows its error instead of a metric)."""
    status = _paint(f"{node.status:<8}", STATUS_STYLE.get(node.status, "\033[35m"), color)
    if node.status in ("crash", "timeout", "invalid"):
        err = first_line(node.error, 80) or "(no error recorded)"
        middle = _paint(f"error: {err}", STYLE["crashed"], color)
        verdict = ""
    else:
        middle = f"{headline(node.metrics):<28}"
        verdict = _paint(f"{node.verdict or '':<12}", STYLE.get(node.verdict or ""), color)
    hyp = node_label(node)
    if len(hyp) > hyp_width:
        hyp = hyp[: hyp_width - 1] + "…"
    suspect = mark(node)
    parts = [_paint(f"#{node.id}", "\033[1m", color), status, middle, verdict,
             _paint(f"[{suspect}]", STYLE["crashed"] if "SUSPECT" in suspect else None, color)
             if suspect else "", f"{node.kind:<11}", hyp]
    return " ".join(p for p in parts if p).rstrip()


def question_header(q: Question, color: bool = False) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in q.settings.items()) or "none"
    head = _paint(f"Question {q.id}: {q.text}", "\033[1m", color)
    lines = [f"{head}  [{q.status}]  settings: {settings}  "
             f"LLM: {q.tokens} tokens, ${q.cost_usd:.2f}"]
    if q.answer:
        ev = ", ".join(f"#{e}" for e in q.evidence) or "none"
        lines.append(f"  answer: {q.answer}  (evidence: {ev})")
    return "\n".join(lines)


def render_nodes(nodes: list[Node], color: bool = False) -> list[str]:
    roots, kids = roots_and_children(nodes)
    lines: list[str] = []

    def visit(n: Node, prefix: str, branch: str) -> None:
        lines.append(prefix + branch + node_line(n, color))
        child_prefix = prefix + ("" if not branch else ("   " if branch == "└─ " else "│  "))
        children = kids[n.id]
        for i, c in enumerate(children):
            visit(c, child_prefix, "└─ " if i == len(children) - 1 else "├─ ")

    for r in roots:
        visit(r, "", "")
    return lines


def render_tree(store: TreeStore, question_id: int | None = None, color: bool = False) -> str:
    """The whole tree (one question, or every question) as text."""
    questions = ([store.get_question(question_id)] if question_id is not None
                 else store.questions())
    if not questions:
        return f"(no questions in {store.path}; start one with `research run \"QUESTION\"`)"
    out = []
    for q in questions:
        out.append(question_header(q, color))
        nodes = store.nodes(q.id)
        out.extend(render_nodes(nodes, color) if nodes else ["  (no nodes yet)"])
        groups = track_groups(store, q.id, nodes)
        if groups:
            out += ["", "Tracks:"] + ["  " + line for line in track_text(groups)]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
