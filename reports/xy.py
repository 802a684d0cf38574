"""The answer of an x/y experiment: y against x with 95% intervals, one point per arm of the
question's plan pooled over the arm's seeds, and the trend in words with its uncertainty.

Which node ran which arm is read back from the tree: a node's arm from its overrides
(`Plan.arm_of_overrides`, the baseline by its kind), a seed re-run (kind `rerun`) belongs to the arm
of the node it re-runs. y per arm:
- `elo` with a head-to-head verdict (`metrics["verdict_detail"]`): the parent arm's ladder Elo plus
  the verdict's difference, interval from the verdict's ci95 (the verdict already pools the seed
  pairs). The interval is that of the difference: it leaves out the anchor's own ladder error,
  which every such point shares and which does not change their order;
- `elo` without one: the ladder Elo (its interval for one seed; mean and t-interval over seeds);
- any other y (winrate_vs_ref, policy_loss, value_loss, sims_per_s, ...): the node's summary metric,
  else the last metrics.jsonl line holding it; mean and t-interval over seeds, or for one seed the
  value alone (or its own interval when it has one), marked as one seed.
The trend is a weighted least-squares slope of y on x (on log2 x when x spans a factor of 4 or more),
weights 1 / se^2 from the intervals, widened by the misfit when the points scatter more than their
intervals say; `rises` or `falls` only when the slope's 95% interval excludes 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiment_tree.format import elo_of, winrate_of
from experiment_tree.show import node_run_dir
from experiment_tree.records import Node, Question
from experiment_tree.suspect import is_suspect
from experiments.rundir import read_metrics
from go_core.arena.stats import Z95

# two-sided 95% Student t quantiles by degrees of freedom (no scipy in this project)
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
       10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}
LOG_SPAN = 4.0     # x is fitted and drawn on a log scale when max(x) / min(x) reaches this
BASELINE = "baseline"


def t95(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom (the nearest tabled df
    at or below; the normal quantile beyond 30)."""
    if df < 1:
        return math.inf
    if df > 30:
        return Z95
    return T95[max(k for k in T95 if k <= df)]


@dataclass
class XYPoint:
    """One arm's y with its 95% interval, pooled over its seeds."""
    label: str                  # the arm's label (or "baseline")
    x: Any                      # its value of the plan's x factor
    x2: Any                     # its value of the second factor (None: no second factor)
    y: float | None             # None: no seed of the arm has a result yet
    lo: float | None = None
    hi: float | None = None
    seeds: int = 0              # seeds with a result
    how: str = ""               # how y and its interval were obtained, in a few words
    nodes: list[int] = field(default_factory=list)   # every node of the arm (main and re-runs)
    baseline: bool = False
    vs: str | None = None       # head-to-head points: the label of the point they were measured against

    @property
    def se(self) -> float | None:
        if self.lo is None or self.hi is None or self.hi <= self.lo:
            return None
        return (self.hi - self.lo) / (2 * Z95)

    def text(self, y_name: str) -> str:
        if self.y is None:
            return f"{self.label}: not measured yet"
        ci = f" [{_num(self.lo)}, {_num(self.hi)}]" if self.lo is not None else " (no interval)"
        return f"{self.label}: {y_name} {_num(self.y)}{ci}, {self.how}"


@dataclass
class Trend:
    """The slope of y on x (per unit of x, or per doubling when `log_x`) with its 95% interval."""
    slope: float
    lo: float | None
    hi: float | None
    points: int
    log_x: bool
    method: str

    @property
    def word(self) -> str:
        if self.lo is None or self.hi is None:
            return "no trend detected"
        return "rises" if self.lo > 0 else "falls" if self.hi < 0 else "no trend detected"


@dataclass
class XYResult:
    """Everything the report's x/y figure and its sentences need."""
    x_key: str
    x2_key: str | None
    y: str
    y_direction: str            # maximize | minimize
    points: list[XYPoint]
    trends: dict[Any, Trend | None]   # x2 value (None without a second factor) -> trend
    log_x: bool
    statement: str              # the best x and the trend, in words


def _num(v: float | None) -> str:
    if v is None:
        return "?"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def plan_of(question: Question) -> Any | None:
    """The question's stored plan (`question.settings["plan"]`), or None (no plan, or unreadable)."""
    raw = (question.settings or {}).get("plan")
    if not isinstance(raw, dict):
        return None
    from autoresearch.planner.plan import Plan
    try:
        return Plan.from_dict(raw)
    except (TypeError, KeyError, ValueError):
        return None


# -- which node ran which arm ------------------------------------------------------------------
def arm_nodes(plan: Any, nodes: list[Node]) -> dict[str, list[Node]]:
    """Arm label -> its nodes (first the node that ran it, then its seed re-runs); the baseline
    node and its re-runs under "baseline" when no arm of the plan is the baseline."""
    by_id = {n.id: n for n in nodes}
    base_arm = next((a.label for a in plan.arms if a.is_baseline), BASELINE)

    def root(n: Node) -> Node:
        seen = set()
        while n.kind == "rerun" and n.parent_id in by_id and n.id not in seen:
            seen.add(n.id)
            n = by_id[n.parent_id]
        return n

    out: dict[str, list[Node]] = {}
    for n in nodes:
        r = root(n)
        if is_suspect(r):
            continue        # a failed, unexplained health check: not in the answer's figure
        if r.kind == "baseline":
            label = base_arm
        else:
            arm = plan.arm_of_overrides(r.overrides)
            label = arm.label if arm is not None else None
        if label is not None:
            out.setdefault(label, []).append(n)
    for label in out:   # the node that ran the arm first, its re-runs after
        out[label].sort(key=lambda n: (n.kind == "rerun", n.id))
    return out


# -- one seed's y --------------------------------------------------------------------------------
def seed_value(node: Node, y: str, workspace_root: Path | None = None
               ) -> tuple[float, tuple[float, float] | None] | None:
    """One finished node's y and its own interval when it has one (Elo, win rate), else None."""
    if node.status != "ok":
        return None
    m = node.metrics or {}
    if y == "elo":
        e = elo_of(m)
        return (e[0], e[1]) if e else None
    if y == "winrate_vs_ref":
        w = winrate_of(m)
        if w:
            return w[0], w[1]
    v = m.get(y)
    if _numeric(v):
        return float(v), None
    run_dir = node_run_dir(node, workspace_root)
    if run_dir is None or not run_dir.exists():
        return None
    for rec in reversed(read_metrics(run_dir)):
        if _numeric(rec.get(y)):
            return float(rec[y]), None
    return None


def pool(values: list[tuple[float, tuple[float, float] | None]]) -> tuple[float, float | None, float | None, str]:
    """Mean over seeds with a 95% interval: t over the seeds (at least as wide as their own
    intervals pooled, since each seed's value carries that noise), or one seed's own interval."""
    k = len(values)
    ys = [v for v, _ in values]
    mean = sum(ys) / k
    own = [((ci[1] - ci[0]) / (2 * Z95)) ** 2 for _, ci in values if ci and ci[1] > ci[0]]
    if k == 1:
        ci = values[0][1]
        return mean, (ci[0] if ci else None), (ci[1] if ci else None), "one seed"
    sd = math.sqrt(sum((y - mean) ** 2 for y in ys) / (k - 1))
    half = t95(k - 1) * sd / math.sqrt(k)
    if len(own) == k:
        half = max(half, Z95 * math.sqrt(sum(own) / k) / math.sqrt(k))
    return mean, mean - half, mean + half, f"mean of {k} seeds, t-interval"


def _point(label: str, arm_x: dict, plan: Any, group: list[Node], y: str,
           anchors: dict[int, tuple[str, float]],
           workspace_root: Path | None, baseline: bool) -> XYPoint:
    p = XYPoint(label, arm_x.get(plan.x_key), arm_x.get(plan.x2_key) if plan.x2_key else None, None,
                nodes=[n.id for n in group], baseline=baseline)
    main = group[0] if group else None
    detail = (main.metrics or {}).get("verdict_detail") if main is not None else None
    if (y == "elo" and main is not None and main.status == "ok" and isinstance(detail, dict)
            and detail.get("diff_elo") is not None and detail.get("ci95")
            and main.parent_id in anchors):
        p.vs, anchor = anchors[main.parent_id]
        d, (lo, hi) = float(detail["diff_elo"]), detail["ci95"]
        pairs = int(detail.get("seed_pairs") or 1)
        p.y, p.lo, p.hi, p.seeds = anchor + d, anchor + float(lo), anchor + float(hi), pairs
        p.how = (f"head-to-head {d:+.0f} Elo [{float(lo):+.0f}, {float(hi):+.0f}] vs #{main.parent_id} "
                 f"({detail.get('games_per_side')} games, {pairs} seed pair(s)) on top of its ladder "
                 f"Elo {anchor:.0f}")
        return p
    values = [v for v in (seed_value(n, y, workspace_root) for n in group) if v is not None]
    if values:
        p.y, p.lo, p.hi, how = pool(values)
        p.seeds = len(values)
        p.how = ("ladder Elo, " if y == "elo" else "") + how
    return p


def xy_points(plan: Any, nodes: list[Node], workspace_root: Path | None = None) -> list[XYPoint]:
    """One point per arm of the plan (in the plan's order), plus the baseline at the default values
    when no arm is the baseline."""
    groups = arm_nodes(plan, nodes)
    y = plan.y
    # the ladder Elo an arm's head-to-head difference is added to: its parent arm's, pooled
    ladder: dict[str, float] = {}
    for label, group in groups.items():
        vals = [v for v in (seed_value(n, "elo", workspace_root) for n in group) if v is not None]
        if vals:
            ladder[label] = sum(v for v, _ in vals) / len(vals)
    anchors: dict[int, tuple[str, float]] = {}
    base_label = f"{BASELINE} (default)"
    for label, group in groups.items():
        if label in ladder:
            shown = base_label if label == BASELINE else label
            anchors.update({n.id: (shown, ladder[label]) for n in group})
    points = []
    arms = list(plan.arms)
    for arm in arms:
        points.append(_point(arm.label, arm.x, plan, groups.get(arm.label, []), y, anchors,
                             workspace_root, arm.is_baseline))
    if not any(a.is_baseline for a in arms) and BASELINE in groups:
        points.append(_point(base_label, dict(plan.defaults), plan, groups[BASELINE], y,
                             anchors, workspace_root, True))
    return points


# -- the trend -----------------------------------------------------------------------------------
def use_log_x(points: list[XYPoint]) -> bool:
    xs = [p.x for p in points if _numeric(p.x)]
    return bool(xs) and min(xs) > 0 and max(xs) / min(xs) >= LOG_SPAN


def fit_trend(points: list[XYPoint], log_x: bool) -> Trend | None:
    """Weighted least squares of y on x (log2 x when `log_x`): the slope and its 95% interval.
    None when fewer than two measured points have distinct numeric x."""
    pts = [p for p in points if p.y is not None and _numeric(p.x) and (not log_x or p.x > 0)]
    xs = [math.log2(p.x) if log_x else float(p.x) for p in pts]
    if len(pts) < 2 or len(set(xs)) < 2:
        return None
    ys = [p.y for p in pts]
    n = len(pts)
    ses = [p.se for p in pts]
    if all(s is not None and s > 0 for s in ses):
        w = [1 / s ** 2 for s in ses]
        method = f"weighted least squares over {n} points"
    else:
        w = [1.0] * n
        method = f"least squares over {n} points (some without an interval)"
    sw = sum(w)
    xb = sum(wi * x for wi, x in zip(w, xs)) / sw
    yb = sum(wi * y for wi, y in zip(w, ys)) / sw
    sxx = sum(wi * (x - xb) ** 2 for wi, x in zip(w, xs))
    slope = sum(wi * (x - xb) * (y - yb) for wi, x, y in zip(w, xs, ys)) / sxx
    resid = sum(wi * (y - yb - slope * (x - xb)) ** 2 for wi, x, y in zip(w, xs, ys))
    if method.startswith("weighted"):
        # known variances; when the points scatter more than their intervals say, widen by it
        scale = resid / (n - 2) if n > 2 else 1.0
        if scale > 1.0:
            half = t95(n - 2) * math.sqrt(scale / sxx)
        else:
            half = Z95 * math.sqrt(1.0 / sxx)
    elif n > 2:
        half = t95(n - 2) * math.sqrt(resid / (n - 2) / sxx)
    else:
        return Trend(slope, None, None, n, log_x, method + "; two points give no interval")
    return Trend(slope, slope - half, slope + half, n, log_x, method)


def _best(points: list[XYPoint], direction: str) -> XYPoint | None:
    measured = [p for p in points if p.y is not None]
    if not measured:
        return None
    return (min if direction == "minimize" else max)(measured, key=lambda p: p.y)


def _apart(a: XYPoint, b: XYPoint) -> bool:
    """Are two points' 95% intervals clear of each other? A head-to-head point against the point it
    was measured against: its own interval (of the difference) excludes the other's value."""
    if a.vs == b.label and a.lo is not None:
        return not (a.lo <= b.y <= a.hi)
    if b.vs == a.label and b.lo is not None:
        return not (b.lo <= a.y <= b.hi)
    if None in (a.lo, a.hi, b.lo, b.hi):
        return False
    return a.hi < b.lo or b.hi < a.lo


def statement(x_key: str, y: str, direction: str, points: list[XYPoint],
              trends: dict[Any, Trend | None], x2_key: str | None = None) -> str:
    """The best x with its interval, whether it is set apart from the rest, and the trend of each
    line (its slope with a 95% interval, and `rises` / `falls` / `no trend detected`)."""
    best = _best(points, direction)
    if best is None:
        return f"No arm has a measured {y} yet, so there is nothing to compare."
    parts = [f"Best {x_key}{' pair' if x2_key else ''}: {best.label}, {y} {_num(best.y)}"
             + (f" [{_num(best.lo)}, {_num(best.hi)}]" if best.lo is not None else " (one seed, no interval)")
             + f" ({best.seeds} seed(s))."]
    rivals = [p for p in points if p is not best and p.y is not None]
    if best.lo is None:
        parts.append("Whether it is really best cannot be told without an interval (run more seeds).")
    else:
        overlap = [p.label for p in rivals if not _apart(best, p)]
        if overlap:
            parts.append(f"Not set apart: its interval overlaps {', '.join(overlap)}.")
        elif rivals:
            parts.append("Its interval is clear of every other arm's.")
    xs = sorted({p.x for p in points if p.y is not None and _numeric(p.x)})
    if len(xs) >= 3 and _numeric(best.x) and xs[0] < best.x < xs[-1]:
        parts.append(f"The best lies inside the range swept (between {xs[0]:g} and {xs[-1]:g}): "
                     f"{y} peaks rather than only rising or falling, which a straight-line trend "
                     f"does not describe.")
    for x2, t in trends.items():
        line = f" (at {x2_key}={x2})" if x2_key is not None else ""
        if t is None:
            parts.append(f"Trend{line}: too few measured points to fit one.")
            continue
        unit = f"per doubling of {x_key}" if t.log_x else f"per unit of {x_key}"
        if t.lo is None:
            parts.append(f"Trend{line}: slope {t.slope:+.3g} {unit} ({t.method}): no trend detected.")
            continue
        verb = {"rises": f"{y} rises with {x_key}", "falls": f"{y} falls as {x_key} grows",
                "no trend detected": "no trend detected"}[t.word]
        parts.append(f"Trend{line}: {verb}: slope {t.slope:+.3g} [{t.lo:+.3g}, {t.hi:+.3g}] {unit} "
                     f"(95%, {t.method})"
                     + ("; a slope outside that interval is ruled out." if t.word == "no trend detected"
                        else "."))
    return " ".join(parts)


def xy_result(question: Question, nodes: list[Node], workspace_root: Path | None = None
              ) -> XYResult | None:
    """The x/y answer of a question whose plan has an x axis with two or more values (a sweep,
    grid or axes design, or --x); None for an A/B or a question without a plan."""
    plan = plan_of(question)
    if plan is None or plan.design == "ab" or not plan.x_key:
        return None
    points = xy_points(plan, nodes, workspace_root)
    log_x = use_log_x(points)
    series: dict[Any, list[XYPoint]] = {}
    for p in points:
        series.setdefault(p.x2 if plan.x2_key else None, []).append(p)
    trends = {k: fit_trend(v, log_x) for k, v in series.items()
              if sum(1 for p in v if p.y is not None) >= 2 or k in (plan.x2_values or [None])}
    return XYResult(plan.x_key, plan.x2_key, plan.y, plan.y_direction, points, trends, log_x,
                    statement(plan.x_key, plan.y, plan.y_direction, points, trends, plan.x2_key))
