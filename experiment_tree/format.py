"""How a node reads at a glance: its headline strength with an interval, and its colour class.

Shared by the terminal tree, the HTML tree and the reports, so all three say the same thing.
"""
from __future__ import annotations

import math
from typing import Any

from experiment_tree.records import Node
from go_core.arena.stats import wilson_interval

CRASHED = ("crash", "timeout", "invalid")
ACTIVE = ("pending", "running")


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _pair(x: Any) -> tuple[float, float] | None:
    if isinstance(x, (list, tuple)) and len(x) == 2:
        lo, hi = _num(x[0]), _num(x[1])
        if lo is not None and hi is not None:
            return (lo, hi)
    return None


def elo_of(metrics: dict[str, Any]) -> tuple[float, tuple[float, float] | None] | None:
    """(elo, (lo, hi) or None) from a node's metrics, or None when it has no Elo."""
    elo = _num(metrics.get("elo"))
    if elo is None:
        return None
    return elo, _pair(metrics.get("elo_ci95"))


def winrate_of(metrics: dict[str, Any]) -> tuple[float, tuple[float, float] | None, int | None] | None:
    """(win rate, Wilson interval, games) from a node's metrics, or None when it has none.

    The interval is the run's own `winrate_ci95` when present, else computed from the games.
    """
    p = _num(metrics.get("winrate_vs_ref"))
    if p is None:
        return None
    games = _num(metrics.get("games_vs_ref"))
    n = int(games) if games is not None else None
    ci = _pair(metrics.get("winrate_ci95"))
    if ci is None and n and n > 0:
        ci = wilson_interval(min(max(p, 0.0), 1.0) * n, n)
    return p, ci, n


def headline(metrics: dict[str, Any]) -> str:
    """`Elo 312 [280, 344]`, else `win 45% [38%, 52%] of 200`, else '' (no strength measured)."""
    e = elo_of(metrics or {})
    if e is not None:
        elo, ci = e
        return f"Elo {elo:.0f}" + (f" [{ci[0]:.0f}, {ci[1]:.0f}]" if ci else "")
    w = winrate_of(metrics or {})
    if w is not None:
        p, ci, n = w
        text = f"win {100 * p:.0f}%"
        if ci:
            text += f" [{100 * ci[0]:.0f}%, {100 * ci[1]:.0f}%]"
        if n:
            text += f" of {n}"
        return text
    return ""


def clip(text: str | None, width: int) -> str:
    """`text` cut to `width` characters, with an ellipsis when cut."""
    text = text or ""
    return text if len(text) <= width else text[: width - 1] + "…"


def first_line(text: str | None, width: int = 100) -> str:
    """The first non-empty line of an error (the last line of a traceback says what it was)."""
    if not text:
        return ""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    # A Python traceback's meaning is on its last line; anything else on its first.
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    return line if len(line) <= width else line[: width - 1] + "…"


def colour_class(node: Node) -> str:
    """One of better, worse, inconclusive, crashed, running, pending, baseline, other."""
    if node.status in CRASHED:
        return "crashed"
    if node.status in ACTIVE:
        return node.status
    if node.status != "ok":
        return "other"          # pruned, refused, interrupted
    if node.verdict in ("better", "worse", "inconclusive"):
        return node.verdict
    return "baseline"           # finished, nothing to compare with (a root) or not judged yet


def node_label(node: Node) -> str:
    """What a node is, in a few words: its hypothesis, else its overrides, else its kind."""
    if node.hypothesis:
        return node.hypothesis
    if node.overrides:
        return " ".join(node.overrides)
    return node.kind


def comparison_text(metrics: dict | None) -> str | None:
    """A head-to-head verdict in one line: `+120 Elo [+40, +200] over 400 games, 1 seed pair;
    minimum detectable difference 150 Elo` (None when the node has no such verdict)."""
    d = (metrics or {}).get("verdict_detail")
    if not isinstance(d, dict) or d.get("diff_elo") is None or not d.get("ci95"):
        return None
    lo, hi = d["ci95"]
    text = (f"{d['diff_elo']:+.0f} Elo [{lo:+.0f}, {hi:+.0f}] vs parent over {d.get('games_per_side')} "
            f"games, {d.get('seed_pairs')} seed pair(s)")
    if d.get("mde_elo") is not None:
        text += f"; minimum detectable difference {d['mde_elo']:.0f} Elo"
    if d.get("verdict") == "inconclusive":
        text += f"; rules out differences outside [{lo:+.0f}, {hi:+.0f}]"
    return text
