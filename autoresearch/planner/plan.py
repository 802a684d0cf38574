"""A plan of an experiment: the arms to run (each a set of overrides, compared with the baseline
or another arm), the seeds per arm, the runs and minutes it costs, what was cut to fit the budget
and how the question was read; its text for the person who asked and its JSON form, stored on the
question and read by the report. autoresearch/planner/design.py makes plans.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Arm:
    """One configuration of the experiment; `seeds` nodes of it are trained."""
    label: str                      # e.g. "mcts.c_puct=2.5"
    x: dict[str, Any]               # factor key -> this arm's value (every factor of the plan)
    overrides: list[str]            # Hydra overrides vs the baseline (empty: the baseline runs it)
    compare_to: str = "baseline"    # the arm it is compared with: "baseline" or another arm's label
    role: str = "point"             # ab: control | treatment (the value the question asks about); else point

    @property
    def is_baseline(self) -> bool:
        return not self.overrides


@dataclass
class Plan:
    """The experiment planned for a question; stored as JSON on the question row."""
    question: str
    design: str                     # ab | sweep | grid | axes
    x_key: str                      # the factor on the x axis
    x_values: list[Any]             # its values, in plotting order
    y: str                          # the metric the answer reads (elo, winrate_vs_ref, value_loss, ...)
    y_direction: str                # maximize | minimize
    arms: list[Arm]
    seeds: int                      # training seeds per arm (the baseline's too)
    runs: int                       # nodes the plan needs, baseline included
    max_runs: int | None            # what the budget allows (None: no limit)
    minutes_per_node: float         # expected minutes of one node
    workers: int                    # nodes run at once
    expected_minutes: float         # runs / workers * minutes_per_node, rounded up to whole waves
    mde_elo: float | None           # expected smallest Elo difference between two arms seen (80%, 5%)
    x2_key: str | None = None       # the second factor of a grid
    x2_values: list[Any] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)   # each factor's baseline value
    cut: list[str] = field(default_factory=list)      # what was cut to fit the budget, and its cost
    notes: list[str] = field(default_factory=list)    # how the question was read
    board: str = "9x9"
    budget: str = "tiny"

    @property
    def factors(self) -> list[str]:
        return [self.x_key] + ([self.x2_key] if self.x2_key else [])

    @property
    def new_arms(self) -> list[Arm]:
        """Arms that need nodes of their own (the baseline arm is the question's baseline node)."""
        return [a for a in self.arms if not a.is_baseline]

    def arm(self, label: str) -> Arm:
        return next(a for a in self.arms if a.label == label)

    def arm_of_overrides(self, overrides: list[str]) -> Arm | None:
        """The arm a node ran, from its effective overrides (the report's arm <-> x mapping)."""
        from autoresearch.digest import normalise_overrides

        key = normalise_overrides([o for o in overrides if o.split("=", 1)[0].strip() in self.factors])
        return next((a for a in self.arms if normalise_overrides(a.overrides) == key), None)

    @property
    def description(self) -> str:
        """One paragraph for people: what runs, what it answers, what it costs."""
        d = self.defaults
        xs = ", ".join(fmt_value(v) for v in self.x_values)
        if self.design == "ab":
            treat = next(a for a in self.arms if a.role == "treatment")
            ctrl = next(a for a in self.arms if a.role == "control")

            def name(a: Arm) -> str:
                return f"{a.label}{' (the baseline)' if a.is_baseline else ''}"
            what = (f"An A/B test of {self.x_key}: {name(treat)} against {name(ctrl)}, the value "
                    f"the question asks about against its control"
                    + ("" if treat.is_baseline or ctrl.is_baseline else
                       f"; the baseline runs the default {fmt_value(d.get(self.x_key))} as well") + ".")
        elif self.design == "sweep":
            what = (f"A sweep of {self.x_key} over {xs} (the default {fmt_value(d.get(self.x_key))} is "
                    f"the baseline), to see how {self.y} depends on it and which value is best.")
        elif self.design == "grid":
            what = (f"A {len(self.x_values)}x{len(self.x2_values)} grid of {self.x_key} ({xs}) by "
                    f"{self.x2_key} ({', '.join(fmt_value(v) for v in self.x2_values)}), every combination, "
                    f"to find the best pair and whether the two interact.")
        else:
            what = (f"{self.x_key} ({xs}) and {self.x2_key} "
                    f"({', '.join(fmt_value(v) for v in self.x2_values)}) each varied alone, the other at "
                    f"its default.")
        cost = (f" ({len(self.new_arms)} new arm(s) + the baseline) x {self.seeds} seed(s) = "
                f"{self.runs} run(s), about {self.expected_minutes:.0f} minutes on {self.workers} worker(s) "
                f"({self.minutes_per_node:.1f} min per node).")
        y = f" The answer reads {self.y} ({self.y_direction})."
        mde = (f" With {self.seeds} seed(s) per arm, differences below about {self.mde_elo:.0f} Elo "
               f"can go unseen (from the seed-to-seed spread alone; game noise adds to it)."
               if self.mde_elo is not None else "")
        cut = f" Cut to fit the budget: {' '.join(self.cut)}" if self.cut else ""
        return what + cost + y + mde + cut

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["description"] = self.description
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Plan":
        raw = {k: v for k, v in raw.items() if k != "description"}
        raw["arms"] = [Arm(**a) for a in raw["arms"]]
        return cls(**raw)

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        return cls.from_dict(json.loads(text))

    def text(self) -> str:
        """The plan as printed before anything runs."""
        lines = [f"Plan for: {self.question}", f"  design: {self.design}; y = {self.y} ({self.y_direction})",
                 f"  x = {self.x_key}: {', '.join(fmt_value(v) for v in self.x_values)}"]
        if self.x2_key:
            lines.append(f"  x2 = {self.x2_key}: {', '.join(fmt_value(v) for v in self.x2_values)}")
        lines.append(f"  arms ({self.seeds} seed(s) each):")
        for a in self.arms:
            run = "the baseline node" if a.is_baseline else " ".join(a.overrides)
            vs = "" if a.is_baseline else f"  (vs {a.compare_to})"
            role = "" if a.role == "point" else f" [{a.role}]"
            lines.append(f"    - {a.label}{role}: {run}{vs}")
        budget = f" of {self.max_runs} allowed" if self.max_runs is not None else ""
        lines.append(f"  runs: {self.runs}{budget}; expected {self.expected_minutes:.0f} min "
                     f"({self.minutes_per_node:.1f} min/node, {self.workers} worker(s))")
        if self.mde_elo is not None:
            lines.append(f"  expected minimum detectable difference: about {self.mde_elo:.0f} Elo")
        for c in self.cut:
            lines.append(f"  cut: {c}")
        for n in self.notes:
            lines.append(f"  read: {n}")
        lines.append("  " + self.description)
        return "\n".join(lines)


def fmt_value(v: Any) -> str:
    """A factor's value as the plan writes it (0.01, not 0.010000000000000002)."""
    return f"{v:g}" if isinstance(v, float) else str(v)
