"""The planner proposer (the offline default): runs the arms of a `Plan` and answers from them.

Each arm that needs a node of its own becomes one proposal (kind `config`) whose hypothesis says
which arm it is and what the question asks, and the planner's stated prior as its forecast (0 Elo,
80% interval +-(the plan's minimum detectable difference), P(better) 0.5), so its forecasts are
scored on the same scale as the model's. An arm compared with another arm (the control of an
A/B between two named values) waits until that arm is in the tree, so the loop's verdict compares
the two directly. Once every arm has finished, the proposer concludes; when the budget ends first,
`conclude` answers from what finished. Which node ran which arm is read back from each node's
overrides (`Plan.arm_of_overrides`), so `--resume` needs no state of its own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from autoresearch.forecast import prior_forecast
from autoresearch.planner.plan import Arm, Plan, fmt_value
from autoresearch.proposers.base import Conclusion, Proposal, Proposer

UNFINISHED = ("pending", "running")
DESIGN_NAMES = {"ab": "A/B test", "sweep": "sweep", "grid": "grid",
                "axes": "one-factor-at-a-time design"}


@dataclass
class ArmResult:
    arm: Arm
    entry: Any | None             # the DigestEntry of the arm's node (None: not run)


class PlannerProposer(Proposer):
    name = "planner"

    def __init__(self, plan: Plan):
        self.plan = plan
        self.refused: dict[str, str] = {}      # arm label -> why the loop would not run it

    def nodes_of_arms(self, digest: Any) -> dict[str, Any]:
        """Arm label -> the DigestEntry of the node that ran it (first result; re-runs excluded)."""
        out: dict[str, Any] = {}
        for e in digest.entries:
            if e.kind == "rerun" or e.status == "interrupted":
                continue
            arm = self.plan.arm_of_overrides(e.overrides) if e.kind != "baseline" else \
                next((a for a in self.plan.arms if a.is_baseline), None)
            if arm is not None and arm.label not in out:
                out[arm.label] = e
        return out

    def propose(self, digest: Any, n: int) -> list[Proposal] | Conclusion:
        baseline = digest.baseline()
        if baseline is None:
            return []
        done = self.nodes_of_arms(digest)
        out: list[Proposal] = []
        for arm in self.plan.new_arms:
            if len(out) >= n:
                break
            if arm.label in done or arm.label in self.refused:
                continue
            parent = baseline if arm.compare_to == "baseline" else done.get(arm.compare_to)
            if parent is None:
                continue              # its control arm is not in the tree yet: next round
            out.append(Proposal(kind="config", overrides=list(arm.overrides),
                                parent_id=parent.node_id, hypothesis=self.hypothesis(arm),
                                meta={"arm": arm.label, "x": dict(arm.x), "seeds": self.plan.seeds},
                                forecast=prior_forecast(self.plan.mde_elo), track=self.track_name(),
                                track_aim=f"the {DESIGN_NAMES[self.plan.design]} that '{self.plan.question}' asks for"))
        if out:
            return out
        waiting = [a for a in self.plan.new_arms if a.label not in self.refused
                   and (a.label not in done or done[a.label].status in UNFINISHED)]
        if waiting or any(e.status in UNFINISHED for e in digest.entries):
            return []         # an arm's seed runs still train: its verdict pools them all first
        return self.conclude(digest)

    def runs_reserved(self, digest: Any) -> int:
        """The plan's arms not yet in the tree (nor refused), each with its planned seeds: an open
        verdict's next seed pair must not take the runs of arms the question asked for."""
        done = self.nodes_of_arms(digest)
        left = [a for a in self.plan.new_arms if a.label not in done and a.label not in self.refused]
        return len(left) * max(1, int(self.plan.seeds))

    def track_name(self) -> str:
        """The planner's one track: its design over the factor(s) it varies."""
        return f"{DESIGN_NAMES[self.plan.design]} over {', '.join(self.plan.factors)}"

    def rejected(self, proposal: Proposal, reason: str) -> None:
        if "arm" in proposal.meta:
            self.refused[proposal.meta["arm"]] = reason

    def conclude(self, digest: Any) -> Conclusion:
        results = [ArmResult(a, self.nodes_of_arms(digest).get(a.label)) for a in self.plan.arms]
        evidence = [r.entry.node_id for r in results if r.entry is not None]
        return Conclusion(write_answer(self.plan, results), evidence=evidence)

    def hypothesis(self, arm: Arm) -> str:
        p = self.plan
        i = p.arms.index(arm) + 1
        vs = "the baseline" if arm.compare_to == "baseline" else f"the arm {arm.compare_to}"
        role = {"control": "the control of", "treatment": "the value asked about in"}.get(arm.role, "a point of")
        return (f"Arm {i} of {len(p.arms)} ({arm.label}) is {role} the {DESIGN_NAMES[p.design]} the question "
                f"'{p.question}' asks for: it measures {p.y} at {arm.label}, compared with {vs}"
                f" ({p.seeds} seed(s)).")


# -- the answer --------------------------------------------------------------------------------------
def y_of(entry: Any, y: str) -> tuple[float, list[float] | None] | None:
    """The arm's y with its interval, from what the digest holds (ladder Elo or win rate)."""
    if entry is None or entry.status != "ok":
        return None
    if y == "winrate_vs_ref" and entry.winrate is not None:
        return entry.winrate, entry.winrate_ci95
    if entry.elo is not None:
        return entry.elo, entry.elo_ci95
    return None


def claim(entry: Any, sign: int = 1) -> str:
    """One node's comparison with its parent in words: verdict, Elo difference with its interval
    and the minimum detectable difference when the verdict gives them (`verdict_detail` with
    `diff`, `ci95`, `mde`), else the ladder Elo with its interval. `sign` -1 reads it the other
    way round (the question's value is the parent)."""
    if entry is None:
        return "not run (the budget ended first)"
    if entry.status != "ok":
        return f"{entry.status}: {entry.why_failed or 'no result'}"
    verdict = entry.verdict or "no verdict yet"
    if sign < 0:
        verdict = {"better": "worse", "worse": "better"}.get(verdict, verdict)
    detail = getattr(entry, "verdict_detail", None) or {}
    if detail.get("diff") is not None:
        lo, hi = detail.get("ci95") or (None, None)
        d = sign * detail["diff"]
        ci = f" [{min(sign * lo, sign * hi):+.0f}, {max(sign * lo, sign * hi):+.0f}]" if lo is not None else ""
        mde = f", minimum detectable difference {detail['mde']:.0f} Elo" if detail.get("mde") else ""
        text = f"{verdict}: {d:+.0f} Elo{ci} head-to-head{mde}"
        if verdict == "inconclusive" and lo is not None:
            text += (f"; it rules out differences below {min(sign * lo, sign * hi):+.0f} and above "
                     f"{max(sign * lo, sign * hi):+.0f} Elo")
        return text
    ci = entry.elo_ci95
    elo = f"Elo {entry.elo:.0f}" + (f" [{ci[0]:.0f}, {ci[1]:.0f}]" if ci and None not in ci else "") \
        if entry.elo is not None else "no Elo"
    test = f" ({entry.verdict_test})" if entry.verdict_test else ""
    return f"{verdict}{test}; {elo}"


def write_answer(plan: Plan, results: list[ArmResult]) -> str:
    """What the evidence says about the question, each claim with its numbers and interval."""
    head = f"{plan.question} -- {DESIGN_NAMES[plan.design]} of {', '.join(plan.factors)}, {plan.seeds} seed(s) per arm."
    if plan.design == "ab":
        treat = next(r for r in results if r.arm.role == "treatment")
        ctrl = next(r for r in results if r.arm.role == "control")
        compared, sign = (treat, 1) if not treat.arm.is_baseline else (ctrl, -1)
        other = ctrl if compared is treat else treat
        yv = y_of(other.entry, "elo")
        ref = (f" ({other.arm.label}{' = the baseline' if other.arm.is_baseline else ''}: Elo "
               f"{yv[0]:.0f}" + (f" [{yv[1][0]:.0f}, {yv[1][1]:.0f}]" if yv[1] and None not in yv[1] else "")
               + ")") if yv is not None else ""
        line = f"{treat.arm.label} vs {ctrl.arm.label}: {claim(compared.entry, sign)}{ref}."
        more = ""
        verdict = compared.entry.verdict if compared.entry is not None else None
        if verdict in (None, "inconclusive"):
            seeds = plan.seeds * 4
            extra = (seeds - plan.seeds) * (1 + len(plan.new_arms)) * plan.minutes_per_node / plan.workers
            more = (f" Not settled: {seeds} seeds per arm (--seeds {seeds}) would halve the interval, "
                    f"about {extra:.0f} more minutes.")
        return f"{head}\n{line}{more}"
    lines = [head]
    scored = []
    base = next((r for r in results if r.arm.is_baseline), None)
    base_elo = y_of(base.entry, "elo") if base is not None else None
    for r in results:
        yv = y_of(r.entry, plan.y)
        detail = getattr(r.entry, "verdict_detail", None) or {}
        if (plan.y == "elo" and not r.arm.is_baseline and r.arm.compare_to == "baseline"
                and base_elo is not None and detail.get("diff") is not None and detail.get("ci95")):
            # the head-to-head difference placed on the ladder's scale: what the verdict measured,
            # far sharper than two independent ladder walks
            yv = (base_elo[0] + detail["diff"], [base_elo[0] + detail["ci95"][0],
                                                 base_elo[0] + detail["ci95"][1]])
        where = "the baseline" if r.arm.is_baseline else claim(r.entry)
        if yv is not None:
            ci = f" [{_y(yv[1][0])}, {_y(yv[1][1])}]" if yv[1] and None not in yv[1] else ""
            lines.append(f"- {r.arm.label}: {plan.y if plan.y in ('elo', 'winrate_vs_ref') else 'elo'} "
                         f"{_y(yv[0])}{ci}" + ("" if r.arm.is_baseline else f" (vs baseline: {where})"))
            scored.append((r, yv))
        else:
            lines.append(f"- {r.arm.label}: {where}")
    if plan.y not in ("elo", "winrate_vs_ref"):
        lines.append(f"({plan.y} is not in the digest yet: the arms are ranked by ladder Elo.)")
    if not scored:
        lines.append("No arm finished with a result, so the question stays open.")
        return "\n".join(lines)
    sign = -1 if plan.y_direction == "minimize" and plan.y in ("elo", "winrate_vs_ref") else 1
    best_r, best = max(scored, key=lambda t: sign * t[1][0])
    rivals = [r.arm.label for r, yv in scored if r is not best_r and _overlap(best, yv)]
    lines.append(f"Best: {best_r.arm.label} ({_y(best[0])}"
                 + (f" [{_y(best[1][0])}, {_y(best[1][1])}]" if best[1] and None not in best[1] else "")
                 + (f"); its interval overlaps {', '.join(rivals)}, so the data do not single it out."
                    if rivals else "), clear of every other arm's interval."))
    if plan.design == "sweep" and len(scored) >= 3:
        lines.append(trend(plan, scored))
    return "\n".join(lines)


def _y(v: float) -> str:
    """A y value for people: whole numbers for Elo-sized values, three digits for losses."""
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _overlap(a: tuple[float, Any], b: tuple[float, Any]) -> bool:
    if not a[1] or not b[1] or None in a[1] or None in b[1]:
        return True
    return a[1][0] <= b[1][1] and b[1][0] <= a[1][1]


def trend(plan: Plan, scored: list[tuple[ArmResult, tuple[float, Any]]]) -> str:
    """Whether y rises or falls with x: the sign of the least-squares slope, called only when the
    lowest and highest x have disjoint intervals."""
    pts = sorted(((r.arm.x[plan.x_key], yv) for r, yv in scored), key=lambda t: t[0])
    xs = [math.log(x) if x > 0 else x for x, _ in pts]
    ys = [yv[0] for _, yv in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    lo, hi = pts[0], pts[-1]
    word = "rises" if slope > 0 else "falls"
    if _overlap(lo[1], hi[1]):
        return (f"Trend: {plan.y} {word} with {plan.x_key} on these points, but the intervals at "
                f"{fmt_value(lo[0])} and {fmt_value(hi[0])} overlap, so the data do not show a trend.")
    return (f"Trend: {plan.y} {word} with {plan.x_key}: {fmt_value(lo[0])} -> {_y(lo[1][0])}, "
            f"{fmt_value(hi[0])} -> {_y(hi[1][0])}, intervals disjoint.")
