"""From a reading of the question (or --x/--x2 flags) to a `Plan`: the arms to run, their seeds, the
runs and minutes they cost, and what had to be cut to fit the budget.

Designs:
- `ab`:    one factor, one value against the baseline, or two named values against each other
           (the second named is the control; the first is trained as its child, so the verdict is
           the head-to-head comparison the question asks for);
- `sweep`: one factor over 3-5 values (the question asks how y depends on x, which x is best, or
           names a range or 3+ values); the arm at the default value is the baseline itself;
- `grid`:  two factors, every combination (at most `grid_points` values each);
- `axes`:  a grid cut to fit the budget: each factor varied alone, the other at its default.
Every arm is compared with the baseline unless it says otherwise (`compare_to`).
The plan itself (its arms, text and JSON form) is autoresearch/planner/plan.py.
"""
from __future__ import annotations

import math
from typing import Any

from autoresearch.planner.parse import Mention, PlanRefused, Reading
from autoresearch.planner.plan import Arm, Plan, fmt_value
from autoresearch.planner.vocabulary import Factor, Vocabulary, defaults, load_vocabulary
from autoresearch.search_space import format_value

DESIGNS = ("ab", "sweep", "grid", "axes")
Z_POWER = 1.96 + 0.84       # a two-sided 5% test with 80% power: MDE = (z_a + z_b) * standard error


# -- the levels of one factor ----------------------------------------------------------------------
def spread(lo: float, hi: float, n: int, factor: Factor) -> list[Any]:
    """n values from lo to hi (log-spaced for log factors with lo > 0), rounded for the type."""
    if n < 2 or lo == hi:
        return [factor.coerce(lo)]
    if factor.log and lo > 0:
        pts = [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]
    else:
        pts = [lo + (hi - lo) * i / (n - 1) for i in range(n)]
    out: list[Any] = []
    for p in pts:
        v = factor.coerce(float(f"{p:.3g}"))
        if v not in out:
            out.append(v)
    return out


def thin(values: list[Any], default: Any, k: int, factor: Factor) -> list[Any]:
    """At most k of `values`, in their order: the default first (free: the baseline runs it), then
    the extremes, then the value farthest from those kept (ties: the larger), until k are kept."""
    if len(values) <= k:
        return list(values)
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not numeric:
        kept = ([default] if default in values else []) + [v for v in values if v != default]
        return [v for v in values if v in kept[:k]]
    use_log = factor.log and all(v > 0 for v in values)

    def pos(v: float) -> float:
        return round(math.log(v) if use_log else float(v), 6)

    kept = [default] if default in values else []
    lo, hi = min(values), max(values)
    if kept:     # the extreme farther from the default first (ties: the larger)
        order = sorted((lo, hi), key=lambda v: (-abs(pos(v) - pos(default)), -v))
    else:
        order = [hi, lo]
    for v in order:
        if len(kept) < k and v not in kept:
            kept.append(v)
    while len(kept) < k:
        rest = [v for v in values if v not in kept]
        kept.append(max(rest, key=lambda v: (min(abs(pos(v) - pos(w)) for w in kept), v)))
    return [v for v in values if v in kept]


def levels(m: Mention, default: Any, sweep_points: int) -> tuple[list[Any], str]:
    """The values one factor takes, control first, and what kind of design that factor asks for."""
    f = m.factor
    if m.explicit and len(m.values) >= 2:
        vals = list(dict.fromkeys(m.values))
        return (sorted(vals) if f.type in ("int", "float") else vals), "sweep"
    if m.values:
        vals = []
        for v in m.values:
            if v not in vals:
                vals.append(v)
        if len(vals) >= 3:
            return sorted(vals) if f.type in ("int", "float") else vals, "sweep"
        if len(vals) == 2:
            treat, ctrl = vals
            return [ctrl, treat], "ab"
        (v,) = vals
        if v != default:
            return [default, v], "ab"
        if f.off is not None and f.off != default:
            return [f.off, default], "ab"
        raise PlanRefused(f"{f.key}={fmt_value(v)} is already the baseline's value; name the value to "
                          f"compare it with (e.g. \"{fmt_value(v)} vs {fmt_value(_other(f, default))}\") or ask "
                          f"how {f.key} matters to get a sweep")
    if m.range is not None:
        return sorted(set(spread(m.range[0], m.range[1], sweep_points, f))), "sweep"
    if m.multiplier is not None:
        v = f.coerce(default * m.multiplier)
        f.check(v)
        if v == default:
            raise PlanRefused(f"{m.multiplier:g} x the default {f.key} ({fmt_value(default)}) is the "
                              f"default again; name a value")
        return [default, v], "ab"
    if m.with_without:
        on = default if default != f.off else _other(f, f.off)
        return [f.off, on], "ab"
    if m.off:
        if default == f.off:
            raise PlanRefused(f"{f.key} is already off ({fmt_value(f.off)}) in the baseline; ask whether "
                              f"turning it on helps")
        return [default, f.off], "ab"
    vals = list(f.sweep)
    if default not in vals and f.type in ("int", "float"):
        vals = sorted(vals + [default])
    elif default not in vals:
        vals = [default] + vals
    return vals, "sweep"


def _other(f: Factor, value: Any) -> Any:
    return next((v for v in f.sweep if v != value), value)


# -- the plan --------------------------------------------------------------------------------------
def _arm(xs: dict[str, Any], defaults_: dict[str, Any], compare_to: str = "baseline") -> Arm:
    overrides = [f"{k}={format_value(v)}" for k, v in xs.items() if v != defaults_.get(k)]
    label = ", ".join(f"{k}={fmt_value(v)}" for k, v in xs.items())
    return Arm(label=label, x=dict(xs), overrides=overrides, compare_to=compare_to)


def arms_for(design: str, keys: list[str], values: list[list[Any]], defaults_: dict[str, Any]
             ) -> list[Arm]:
    if design == "ab" and len(keys) == 1:
        ctrl, treat = values[0]
        c = _arm({keys[0]: ctrl}, defaults_)
        t = _arm({keys[0]: treat}, defaults_, compare_to="baseline" if c.is_baseline else c.label)
        c.role, t.role = "control", "treatment"
        return [c, t]
    if len(keys) == 1:
        return [_arm({keys[0]: v}, defaults_) for v in values[0]]
    (k1, k2), (v1, v2) = keys, values
    if design == "grid":
        return [_arm({k1: a, k2: b}, defaults_) for a in v1 for b in v2]
    base = _arm({k1: defaults_[k1], k2: defaults_[k2]}, defaults_)     # axes
    return [base] + [_arm({k1: a, k2: defaults_[k2]}, defaults_) for a in v1 if a != defaults_[k1]] \
        + [_arm({k1: defaults_[k1], k2: b}, defaults_) for b in v2 if b != defaults_[k2]]


def runs_needed(arms: list[Arm], seeds: int) -> int:
    return seeds * (1 + sum(1 for a in arms if not a.is_baseline))


def mde(sigma: float, seeds: int) -> float:
    """Smallest Elo difference between two arms of `seeds` seeds each that a 5% test sees 80% of
    the time, from the seed-to-seed spread alone."""
    return Z_POWER * sigma * math.sqrt(2.0 / seeds)


def make_plan(question: str, *, reading: Reading | None = None,
              x: tuple[str, list[Any]] | None = None, x2: tuple[str, list[Any]] | None = None,
              y: str | None = None, seeds: int = 1, max_nodes: int | None = None,
              max_hours: float | None = None, workers: int = 1, board: str = "9x9",
              budget: str = "tiny", sweep_points: int = 4, grid_points: int = 3,
              minutes_per_node: float = 4.0, sigma_train_elo: float | None = 120.0,
              vocab: Vocabulary | None = None) -> Plan:
    """The plan for `question`: from --x/--x2 when given, else from the reading of the question.
    PlanRefused when nothing can be planned or the smallest plan does not fit the budget."""
    from autoresearch.planner.parse import read_question

    vocab = vocab or load_vocabulary()
    if seeds < 1:
        raise PlanRefused(f"--seeds must be at least 1, got {seeds}")
    notes: list[str] = []
    if x is not None:
        mentions = [explicit_mention(k, v, vocab) for k, v in [x] + ([x2] if x2 else [])]
        metric_reading = None
        try:
            metric_reading = read_question(question, vocab)
        except PlanRefused:
            pass
        y = y or (metric_reading.metric if metric_reading else vocab.default_metric)
        notes.append(f"factors from --x{'/--x2' if x2 else ''}")
        asks_sweep = True
    else:
        reading = reading or read_question(question, vocab)
        mentions, notes, asks_sweep = reading.mentions, list(reading.notes), reading.asks_sweep
        y = y or reading.metric
    if len(mentions) > 2:
        raise PlanRefused(f"the question names {len(mentions)} factors "
                          f"({', '.join(m.factor.key for m in mentions)}); the planner designs for one "
                          f"or two. Ask about two at most, or give them with --x and --x2.")
    if y not in vocab.metrics:
        raise PlanRefused(f"--y {y!r} is not a metric the planner knows; use one of "
                          f"{sorted(vocab.metrics)}")
    defaults_ = defaults(board, budget)
    for m in mentions:
        defaults_.setdefault(m.factor.key, explicit_default(m.factor.key, board, budget))
    keys = [m.factor.key for m in mentions]
    lv = [levels(m, defaults_[m.factor.key], sweep_points) for m in mentions]
    values = [v for v, _ in lv]
    if len(keys) == 1:
        design = lv[0][1]
        if design == "ab" and len(values[0]) > 2:
            design = "sweep"
    else:
        design = "grid"
        values = [thin(v, defaults_[k], grid_points, vocab.factors.get(k) or m.factor)
                  for v, k, m in zip(values, keys, mentions)]
    factors = [m.factor for m in mentions]
    max_runs = _max_runs(max_nodes, max_hours, workers, minutes_per_node)
    cut: list[str] = []
    arms = arms_for(design, keys, values, defaults_)
    seeds0 = seeds
    while max_runs is not None and runs_needed(arms, seeds) > max_runs:
        if seeds > 1:
            seeds = max(1, min(seeds - 1, max_runs // (1 + len([a for a in arms if not a.is_baseline]))))
            arms = arms_for(design, keys, values, defaults_)
            continue
        smaller = _shrink(design, keys, values, defaults_, factors)
        if smaller is None:
            need = runs_needed(arms, 1)
            raise PlanRefused(f"the smallest plan that answers {question!r} needs {need} runs "
                              f"({design} of {', '.join(keys)}, 1 seed, baseline included); the "
                              f"budget allows {max_runs}. Give --max-nodes {need} (and --max-hours "
                              f"to match), or ask about fewer values.")
        design_new, values_new, what = smaller
        cut.append(what)
        design, values = design_new, values_new
        arms = arms_for(design, keys, values, defaults_)
    if seeds < seeds0:
        cut.insert(0, f"seeds per arm {seeds0} -> {seeds}: each arm's interval widens "
                      f"x{math.sqrt(seeds0 / seeds):.2f}"
                      + (f" (detectable difference {mde(sigma_train_elo, seeds0):.0f} -> "
                         f"{mde(sigma_train_elo, seeds):.0f} Elo)." if sigma_train_elo else "."))
    runs = runs_needed(arms, seeds)
    metric = vocab.metrics[y]
    return Plan(question=question, design=design, x_key=keys[0], x_values=values[0], y=y,
                y_direction=metric.direction, arms=arms, seeds=seeds, runs=runs, max_runs=max_runs,
                minutes_per_node=minutes_per_node, workers=workers,
                expected_minutes=math.ceil(runs / workers) * minutes_per_node,
                mde_elo=round(mde(sigma_train_elo, seeds)) if sigma_train_elo else None,
                x2_key=keys[1] if len(keys) > 1 else None,
                x2_values=values[1] if len(keys) > 1 else [],
                defaults={k: defaults_[k] for k in keys}, cut=cut, notes=notes, board=board,
                budget=budget)


def _max_runs(max_nodes: int | None, max_hours: float | None, workers: int,
              minutes_per_node: float) -> int | None:
    caps = []
    if max_nodes is not None:
        caps.append(int(max_nodes))
    if max_hours is not None:
        caps.append(int(max_hours * 60 * workers // minutes_per_node))
    return min(caps) if caps else None


def _shrink(design: str, keys: list[str], values: list[list[Any]], defaults_: dict[str, Any],
            factors: list[Factor]) -> tuple[str, list[list[Any]], str] | None:
    """One step smaller: fewer sweep points, then a smaller grid, then a grid into axes."""
    if design == "sweep":
        (vals,) = values
        if len(vals) <= 2:
            return None
        kept = thin(vals, defaults_[keys[0]], len(vals) - 1, factors[0])
        dropped = [v for v in vals if v not in kept]
        new_design = "sweep" if len(kept) > 2 else "ab"
        if new_design == "ab":
            kept = [defaults_[keys[0]]] + [v for v in kept if v != defaults_[keys[0]]]
        return (new_design, [kept],
                f"{keys[0]}={', '.join(fmt_value(v) for v in dropped)} not measured: the curve has "
                f"{len(kept)} points instead of {len(vals)}, so the best value is placed only "
                f"among {', '.join(fmt_value(v) for v in kept)}.")
    if design == "grid":
        i = max(range(2), key=lambda j: len(values[j]))
        if len(values[i]) > 2:
            kept = thin(values[i], defaults_[keys[i]], len(values[i]) - 1, factors[i])
            dropped = [v for v in values[i] if v not in kept]
            new = list(values)
            new[i] = kept
            return ("grid", new, f"{keys[i]}={', '.join(fmt_value(v) for v in dropped)} dropped from "
                                 f"the grid ({len(new[0])}x{len(new[1])} now).")
        if all(defaults_[k] in v for k, v in zip(keys, values)):
            return ("axes", values, f"the grid became one-factor-at-a-time: the interaction of "
                                    f"{keys[0]} and {keys[1]} is not measured (each is varied with "
                                    f"the other at its default).")
    if design == "axes":
        return None
    return None


def explicit_mention(key: str, raw_values: list[Any], vocab: Vocabulary) -> Mention:
    """A Mention from `--x KEY=v1,v2`: KEY must be a learner field; values coerced to its type."""
    from autoresearch.planner.vocabulary import LEARNER_GROUPS, config_docs

    key = key.strip()
    factor = vocab.factors.get(key)
    if factor is None:
        docs = config_docs()
        if key.split(".")[0] not in LEARNER_GROUPS or key not in docs:
            raise PlanRefused(f"--x {key}: not a field a node may vary. Keys are fields of the "
                              f"learner's groups {LEARNER_GROUPS} in experiments/config.py; the "
                              f"planner's own factors are:\n{vocab.listing()}")
        default = explicit_default(key)
        kind = ("bool" if isinstance(default, bool) else "int" if isinstance(default, int)
                else "float" if isinstance(default, float) else "choice")
        factor = Factor(key=key, words=[key], type=kind, sweep=list(raw_values), doc=docs[key])
    vals = []
    for v in raw_values:
        try:
            vals.append(factor.coerce(v))
        except ValueError as e:
            raise PlanRefused(f"--x {key}: {e}") from None
        factor.check(vals[-1])
    return Mention(factor=factor, phrase=key, start=0, values=vals, explicit=True)


def explicit_default(key: str, board: str = "9x9", budget: str = "tiny") -> Any:
    from omegaconf import OmegaConf

    from autoresearch.planner.vocabulary import _composed

    return OmegaConf.select(_composed(board, budget), key)


def parse_x_flag(text: str) -> tuple[str, list[str]]:
    """`selfplay.visits=8,16,32` -> ("selfplay.visits", ["8", "16", "32"])."""
    key, sep, vals = text.partition("=")
    values = [v.strip() for v in vals.split(",") if v.strip()]
    if not sep or not key.strip() or not values:
        raise PlanRefused(f"--x {text!r}: give KEY=v1,v2,... e.g. --x selfplay.visits=8,16,32,64")
    return key.strip(), values
