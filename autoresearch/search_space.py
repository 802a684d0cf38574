"""Sweep files (`conf/sweep/NAME.yaml`): a search space of Hydra overrides, an objective and a pruner.

    name: lr_cpuct                      # the Optuna study name (one study per sweep)
    objective: elo                      # or [elo, compute] with directions: [maximize, minimize]
    intermediate: elo                   # metrics.jsonl key reported per iteration (for pruning)
    params:                             # Hydra override key -> distribution
      train.lr: {type: float, low: 1.0e-4, high: 0.1, log: true}
      mcts.c_puct: {type: float, low: 0.5, high: 4.0}
      selfplay.visits: {type: int, low: 16, high: 128, step: 16}
      model.blocks: {type: categorical, choices: [2, 4, 6]}
    pruner: {type: median, n_startup_trials: 2, n_warmup_steps: 1}
    sampler: {type: tpe, seed: 0}
    base_overrides: [budget=tiny]       # applied to every trial, before the sampled values
    trials: 20                          # default for --trials
    job: {module: experiments.train, wall_clock_s: 3600}
    heartbeat: {interval_s: 60, grace_s: 180, max_retry: 1}   # or `heartbeat: off`
    enqueue: [{train.lr: 0.002, mcts.c_puct: 1.5}]   # tried first when the study is new

`suggest_overrides(trial, spec)` turns an Optuna trial into the job's Hydra override list.
This module knows nothing of Go; the keys are whatever `conf/` defines.
"""
from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PARAM_TYPES = ("float", "int", "categorical", "log")
# Default direction of well-known objective metrics; others must say theirs.
DEFAULT_DIRECTIONS = {"elo": "maximize", "winrate_vs_ref": "maximize", "policy_acc": "maximize",
                      "compute": "minimize", "wall_s": "minimize", "cpu_s": "minimize",
                      "gpu_s": "minimize", "value_loss": "minimize"}
# Objective names that are not keys of summary["metrics"]: where to find them in summary.json.
METRIC_ALIASES = {"compute": "compute.wall_s", "wall_s": "compute.wall_s", "cpu_s": "compute.cpu_s",
                  "gpu_s": "compute.gpu_s"}


class SweepSpecError(ValueError):
    """A sweep file that cannot be used; the message names the file and the field."""


@dataclass
class ParamSpec:
    key: str                          # Hydra override key, e.g. `train.lr` (a leading `+` adds a key)
    type: str                         # float | int | categorical (`log` = float with log=True)
    low: float | None = None          # lower bound (float/int)
    high: float | None = None         # upper bound, inclusive (float/int)
    log: bool = False                 # sample on a log scale (float/int)
    step: float | None = None         # grid step (float/int); None = continuous / step 1 for int
    choices: list[Any] = field(default_factory=list)   # the options (categorical)

    @property
    def name(self) -> str:
        """The Optuna parameter name: the override key without Hydra's `+`/`++`/`~` prefix."""
        return self.key.lstrip("+~")


@dataclass
class PrunerSpec:
    type: str = "median"              # median | percentile | successive_halving | hyperband | threshold | none
    args: dict[str, Any] = field(default_factory=dict)   # keyword arguments of the Optuna pruner


@dataclass
class SweepJob:
    """The sweep file's `job:` block: how each trial runs (jobs.JobSpec is one trial's launch)."""
    module: str = "experiments.train"  # `python -m MODULE <overrides>` runs one trial
    wall_clock_s: float = 3600.0       # a trial running longer is killed and told as FAIL (timeout)
    mem_limit_mb: int | None = None    # address-space limit of the trial's process (None = none)


@dataclass
class HeartbeatSpec:
    """Optuna heartbeats: a trial whose worker died (machine lost, `kill -9`) is failed and retried.

    Each worker records a heartbeat for its running trial every `interval_s`; a worker that starts
    or asks for a trial first fails every RUNNING trial whose last heartbeat is older than
    `grace_s`, marks its node `interrupted` and queues the same parameters again as a new trial
    (at most `max_retry` times per original trial)."""
    interval_s: int = 60              # seconds between heartbeats of a running trial
    grace_s: int = 180                # a trial silent this long is stale (> interval_s; allow for clock skew)
    max_retry: int = 1                # new trials with the same parameters for one stale trial (0: none)


@dataclass
class SweepSpec:
    name: str                                           # study name; also the tree question text
    params: list[ParamSpec]                             # the search space
    objectives: list[str] = field(default_factory=lambda: ["elo"])        # summary metrics
    directions: list[str] = field(default_factory=lambda: ["maximize"])   # one per objective
    intermediate: str | None = "elo"                    # metrics.jsonl key reported per step
    pruner: PrunerSpec = field(default_factory=PrunerSpec)
    sampler: dict[str, Any] = field(default_factory=lambda: {"type": "tpe"})
    base_overrides: list[str] = field(default_factory=list)
    trials: int = 10                                    # default number of trials (--trials wins)
    job: SweepJob = field(default_factory=SweepJob)
    enqueue: list[dict[str, Any]] = field(default_factory=list)  # points tried first (new study)
    heartbeat: HeartbeatSpec | None = field(default_factory=HeartbeatSpec)  # None: `heartbeat: off`
    description: str = ""                               # what the sweep asks, for people
    path: str | None = None                             # the file it was loaded from

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1


def _fail(path: Any, msg: str) -> SweepSpecError:
    return SweepSpecError(f"sweep file {path}: {msg}")


def _parse_param(path: Any, key: str, raw: Any) -> ParamSpec:
    if isinstance(raw, list):                      # shorthand: `model.blocks: [2, 4, 6]`
        raw = {"type": "categorical", "choices": raw}
    if not isinstance(raw, dict):
        raise _fail(path, f"param {key!r} must be a mapping like {{type: float, low: 0.1, high: 1}}")
    raw = dict(raw)
    kind = str(raw.pop("type", "categorical" if "choices" in raw else "float")).lower()
    if kind in ("loguniform", "log"):
        kind, raw["log"] = "float", True
    if kind not in ("float", "int", "categorical"):
        raise _fail(path, f"param {key!r}: type must be one of {PARAM_TYPES}, got {kind!r}")
    known = {"low", "high", "log", "step", "choices"}
    if set(raw) - known:
        raise _fail(path, f"param {key!r}: unknown fields {sorted(set(raw) - known)}")
    p = ParamSpec(key=key, type=kind, low=raw.get("low"), high=raw.get("high"),
                  log=bool(raw.get("log", False)), step=raw.get("step"),
                  choices=list(raw.get("choices") or []))
    if kind == "categorical":
        if not p.choices:
            raise _fail(path, f"param {key!r}: categorical needs a non-empty `choices` list")
        return p
    if p.low is None or p.high is None:
        raise _fail(path, f"param {key!r}: {kind} needs `low` and `high`")
    try:
        p.low, p.high = float(p.low), float(p.high)   # YAML reads `1e-4` as a string
        p.step = None if p.step is None else float(p.step)
    except (TypeError, ValueError):
        raise _fail(path, f"param {key!r}: low/high/step must be numbers") from None
    if kind == "int":
        if p.low != int(p.low) or p.high != int(p.high):
            raise _fail(path, f"param {key!r}: int bounds must be whole numbers")
        p.low, p.high = int(p.low), int(p.high)
        p.step = None if p.step is None else int(p.step)
    if p.low > p.high:
        raise _fail(path, f"param {key!r}: low {p.low} > high {p.high}")
    if p.log and p.low <= 0:
        raise _fail(path, f"param {key!r}: log scale needs low > 0, got {p.low}")
    if p.log and p.step is not None:
        raise _fail(path, f"param {key!r}: Optuna cannot combine log: true with a step")
    return p


def _parse_objective(path: Any, raw: dict[str, Any]) -> tuple[list[str], list[str]]:
    obj = raw.get("objective", "elo")
    directions = raw.get("directions", raw.get("direction"))
    names: list[str] = []
    dirs: list[str | None] = []
    items = obj if isinstance(obj, list) else [obj]
    for item in items:
        if isinstance(item, dict):                     # {metric: elo, direction: maximize}
            names.append(str(item["metric"]))
            dirs.append(item.get("direction"))
        else:
            names.append(str(item))
            dirs.append(None)
    if directions is not None:
        directions = directions if isinstance(directions, list) else [directions]
        if len(directions) != len(names):
            raise _fail(path, f"{len(names)} objectives {names} but {len(directions)} directions")
        dirs = list(directions)
    out = []
    for name, d in zip(names, dirs):
        d = d or DEFAULT_DIRECTIONS.get(name)
        if d not in ("maximize", "minimize"):
            raise _fail(path, f"objective {name!r}: give its direction (maximize or minimize)")
        out.append(d)
    if len(set(names)) != len(names):
        raise _fail(path, f"objective metrics repeat: {names}")
    return names, out


def _parse_pruner(path: Any, raw: Any, multi: bool) -> PrunerSpec:
    if raw is None:
        return PrunerSpec("none" if multi else "median", {})
    if isinstance(raw, str):
        raw = {"type": raw}
    raw = dict(raw)
    kind = str(raw.pop("type", "median")).lower().replace("-", "_")
    args = dict(raw.pop("args", {}) or {})
    args.update(raw)
    if kind not in ("median", "percentile", "successive_halving", "hyperband", "threshold", "none"):
        raise _fail(path, f"pruner type {kind!r} unknown; use median, percentile, "
                          "successive_halving, hyperband, threshold or none")
    if multi and kind != "none":
        raise _fail(path, "Optuna cannot prune multi-objective studies; set `pruner: none`")
    spec = PrunerSpec(kind, args)
    make_pruner(spec)   # check the arguments now, not when the first worker starts
    return spec


def _parse_heartbeat(path: Any, raw: Any) -> HeartbeatSpec | None:
    if raw is None or raw is True:
        return HeartbeatSpec()
    if raw is False or (isinstance(raw, str) and raw.lower() in ("off", "none", "false")):
        return None
    if not isinstance(raw, dict):
        raise _fail(path, "heartbeat must be a mapping {interval_s: 60, grace_s: 180, max_retry: 1} or `off`")
    known = set(HeartbeatSpec.__dataclass_fields__)
    if set(raw) - known:
        raise _fail(path, f"heartbeat: unknown fields {sorted(set(raw) - known)}; known: {sorted(known)}")
    hb = HeartbeatSpec(**raw)
    for name in ("interval_s", "grace_s", "max_retry"):
        value = getattr(hb, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "max_retry" else 1):
            raise _fail(path, f"heartbeat.{name} must be a whole number of "
                              f"{'retries >= 0' if name == 'max_retry' else 'seconds >= 1'}, got {value!r}")
    if hb.grace_s <= hb.interval_s:
        raise _fail(path, f"heartbeat.grace_s ({hb.grace_s}) must exceed interval_s ({hb.interval_s}), "
                          f"or live trials would be failed as stale")
    return hb


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file; every mistake is reported with the file and field."""
    path = Path(path)
    shipped = Path(__file__).resolve().parents[1] / "conf/sweep"
    if not path.exists() and path.suffix == "" and (shipped / f"{path}.yaml").exists():
        path = shipped / f"{path}.yaml"          # `research sweep lr_cpuct`
    if not path.exists():
        avail = sorted(p.name for p in shipped.glob("*.yaml"))
        raise SweepSpecError(f"sweep file {path} not found (conf/sweep/ has {avail})")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise _fail(path, f"not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise _fail(path, "must be a YAML mapping")
    known = {"name", "description", "objective", "directions", "direction", "intermediate", "params",
             "pruner", "sampler", "base_overrides", "trials", "job", "enqueue", "heartbeat"}
    if set(raw) - known:
        raise _fail(path, f"unknown fields {sorted(set(raw) - known)}; known: {sorted(known)}")
    name = str(raw.get("name") or path.stem)
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        raise _fail(path, f"name {name!r} may hold only letters, digits, '_', '-', '.'")
    params_raw = raw.get("params") or {}
    if not isinstance(params_raw, dict) or not params_raw:
        raise _fail(path, "`params` must map Hydra override keys to distributions")
    params = [_parse_param(path, str(k), v) for k, v in params_raw.items()]
    if len({p.name for p in params}) != len(params):
        raise _fail(path, "a parameter appears twice (keys differ only by a +/~ prefix)")
    objectives, directions = _parse_objective(path, raw)
    multi = len(objectives) > 1
    sampler = raw.get("sampler") or {"type": "tpe"}
    if isinstance(sampler, str):
        sampler = {"type": sampler}
    job_raw = dict(raw.get("job") or {})
    if set(job_raw) - set(SweepJob.__dataclass_fields__):
        raise _fail(path, f"job: unknown fields {sorted(set(job_raw) - set(SweepJob.__dataclass_fields__))}")
    base = raw.get("base_overrides") or []
    if not isinstance(base, list) or not all(isinstance(o, str) and "=" in o for o in base):
        raise _fail(path, "`base_overrides` must be a list of `key=value` strings")
    spec = SweepSpec(name=name, params=params, objectives=objectives, directions=directions,
                     intermediate=raw.get("intermediate", objectives[0] if not multi else None),
                     pruner=_parse_pruner(path, raw.get("pruner"), multi), sampler=dict(sampler),
                     base_overrides=list(base), trials=int(raw.get("trials", 10)),
                     job=SweepJob(**job_raw), enqueue=[dict(e) if isinstance(e, dict) else e
                                                      for e in (raw.get("enqueue") or [])],
                     description=str(raw.get("description", "")).strip(),
                     heartbeat=_parse_heartbeat(path, raw.get("heartbeat")), path=str(path))
    names = {p.name for p in params}
    for point in spec.enqueue:
        if not isinstance(point, dict) or set(point) - names:
            raise _fail(path, f"enqueue: each entry maps parameter names {sorted(names)} to values; "
                              f"got {point!r}")
    make_sampler(spec)  # unknown sampler types fail here
    return spec


def make_pruner(spec: PrunerSpec):
    """The Optuna pruner a PrunerSpec names, its arguments checked against the constructor."""
    import optuna

    classes = {"median": optuna.pruners.MedianPruner, "percentile": optuna.pruners.PercentilePruner,
               "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
               "hyperband": optuna.pruners.HyperbandPruner,
               "threshold": optuna.pruners.ThresholdPruner, "none": optuna.pruners.NopPruner}
    cls = classes[spec.type]
    allowed = set(inspect.signature(cls).parameters)
    bad = set(spec.args) - allowed
    if bad:
        raise SweepSpecError(f"pruner {spec.type}: unknown arguments {sorted(bad)}; "
                             f"{cls.__name__} takes {sorted(allowed)}")
    return cls(**spec.args)


def make_sampler(spec: SweepSpec, seed: int | None = None):
    """The sweep's Optuna sampler; `seed` replaces the file's seed (each worker gets its own)."""
    import optuna

    args = dict(spec.sampler)
    if seed is not None:
        args["seed"] = seed
    kind = str(args.pop("type", "tpe")).lower()
    classes = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
               "nsga2": optuna.samplers.NSGAIISampler, "cmaes": optuna.samplers.CmaEsSampler,
               "qmc": optuna.samplers.QMCSampler}
    if kind not in classes:
        raise SweepSpecError(f"sweep {spec.name}: sampler type {kind!r} unknown; use {sorted(classes)}")
    cls = classes[kind]
    bad = set(args) - set(inspect.signature(cls).parameters)
    if bad:
        raise SweepSpecError(f"sweep {spec.name}: sampler {kind}: unknown arguments {sorted(bad)}")
    return cls(**args)


def format_value(value: Any) -> str:
    """A Python value as Hydra override syntax (strings quoted where Hydra would misread them)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    text = str(value)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-./]*", text) and text.lower() not in (
            "true", "false", "null", "nan", "inf"):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def suggest(trial, p: ParamSpec) -> Any:
    """Ask the trial for one parameter's value."""
    if p.type == "categorical":
        return trial.suggest_categorical(p.name, p.choices)
    if p.type == "int":
        return trial.suggest_int(p.name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(p.name, float(p.low), float(p.high), step=p.step, log=p.log)


def suggest_overrides(trial, spec: SweepSpec) -> list[str]:
    """The trial's full Hydra override list: the sweep's base overrides, then `key=value` per param."""
    out = list(spec.base_overrides)
    for p in spec.params:
        out.append(f"{p.key}={format_value(suggest(trial, p))}")
    return out


def objective_values(summary: dict[str, Any], spec: SweepSpec) -> list[float]:
    """The objective values of a finished run from its summary.json; KeyError names what is missing."""
    values = []
    for name in spec.objectives:
        metrics = summary.get("metrics") or {}
        if name in metrics and metrics[name] is not None:
            values.append(float(metrics[name]))
            continue
        node: Any = summary
        for part in METRIC_ALIASES.get(name, name).split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            raise KeyError(f"objective {name!r} not in summary.json metrics {sorted(metrics)} "
                           f"(nor at {METRIC_ALIASES.get(name, name)!r})")
        values.append(float(node))
    return values
