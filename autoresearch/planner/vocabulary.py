"""The planner's vocabulary (vocabulary.yaml) loaded and checked, plus the defaults it is read against.

The YAML is data: the phrases researchers use for each learner factor, its sweep values and its
bounds. This module turns it into `Factor` objects and reads two things from the project itself:
each factor's one-line doc (the comment beside its field where it is declared, so the planner
never keeps a second copy) and its default value under the question's board and budget (Hydra
composes conf/ exactly as a node's job would).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VOCABULARY_YAML = Path(__file__).with_name("vocabulary.yaml")
# The groups a node may change (DESIGN.md: the learner); anything else is the question's or the referee's.
LEARNER_GROUPS = ("model", "mcts", "selfplay", "train")
FACTOR_TYPES = ("float", "int", "bool", "choice")


class PlanRefused(ValueError):
    """The planner will not guess: the message says why and what it can vary."""


@dataclass
class Factor:
    key: str                      # Hydra override key, e.g. `selfplay.visits` (`model`: a conf/model option)
    words: list[str]              # phrases that name it, lower case
    type: str                     # float | int | bool | choice
    sweep: list[Any]              # values a 1-D sweep tries when the question names none
    log: bool = False             # spread values on a log scale
    off: Any = None               # the value meaning "without it" (None: the factor cannot be off)
    bounds: tuple[float, float] | None = None   # values outside are refused
    percent: bool = False         # "10%" means 0.1
    doc: str = ""                 # the field's doc from experiments/config.py

    def coerce(self, value: Any) -> Any:
        """`value` as this factor's type (ints rounded); ValueError says what was expected."""
        if self.type == "int":
            return int(round(float(value)))
        if self.type == "float":
            return float(value)
        if self.type == "bool":
            if isinstance(value, str):
                return value.lower() in ("true", "on", "yes", "1")
            return bool(value)
        if str(value) not in [str(c) for c in self.sweep]:
            raise ValueError(f"{self.key} takes one of {self.sweep}, not {value!r}")
        return str(value)

    def check(self, value: Any) -> None:
        if self.bounds is not None and self.type in ("int", "float"):
            lo, hi = self.bounds
            if not lo <= float(value) <= hi:
                raise PlanRefused(f"{self.key}={value} is outside its sensible range [{lo}, {hi}]")


@dataclass
class Metric:
    name: str                     # summary/metrics key, e.g. `elo`
    words: list[str]              # phrases that ask for it
    direction: str                # maximize | minimize
    doc: str = ""


@dataclass
class Vocabulary:
    factors: dict[str, Factor]
    metrics: dict[str, Metric]
    default_metric: str
    not_factors: dict[str, str] = field(default_factory=dict)   # phrase -> why it cannot be varied

    def phrases(self) -> list[tuple[str, Factor]]:
        """(phrase, factor), longest phrase first, so 'cheap visits' wins over 'visits'."""
        out = [(w, f) for f in self.factors.values() for w in f.words]
        return sorted(out, key=lambda t: -len(t[0]))

    def listing(self) -> str:
        """The factors the planner can vary, one per line with the config's doc (for refusals)."""
        lines = []
        for f in self.factors.values():
            lines.append(f"  {f.key:<36} ({', '.join(f.words[:3])}): {f.doc}")
        return "\n".join(lines)


def config_docs() -> dict[str, str]:
    """`group.field` -> the comment beside the field where it is declared (the learner's groups of
    experiments/config.py JobConfig: go_core/learn's config classes)."""
    from experiments.config import JobConfig
    from experiments.config_docs import walk_fields

    docs = {key: doc for key, _, doc in walk_fields(JobConfig) if key.split(".")[0] in LEARNER_GROUPS and "." in key}
    docs["model"] = "the conf/model option: the whole net architecture (blocks x channels)"
    return docs


@lru_cache(maxsize=4)
def load_vocabulary(path: str = str(VOCABULARY_YAML)) -> Vocabulary:
    raw = yaml.safe_load(Path(path).read_text())
    docs = config_docs()
    factors: dict[str, Factor] = {}
    for key, spec in (raw.get("factors") or {}).items():
        if key.split(".")[0] not in LEARNER_GROUPS:
            raise ValueError(f"{path}: factor {key!r} is not in a learner group {LEARNER_GROUPS}; "
                             f"nodes may change only those")
        if key not in docs:
            raise ValueError(f"{path}: factor {key!r} is not a field of experiments/config.py")
        if spec.get("type") not in FACTOR_TYPES:
            raise ValueError(f"{path}: factor {key!r}: type must be one of {FACTOR_TYPES}")
        bounds = spec.get("bounds")
        factors[key] = Factor(
            key=key, words=[str(w).lower() for w in spec["words"]], type=spec["type"],
            sweep=list(spec["sweep"]), log=bool(spec.get("log", False)), off=spec.get("without"),
            bounds=(float(bounds[0]), float(bounds[1])) if bounds else None,
            percent=bool(spec.get("percent", False)), doc=docs[key])
    mraw = dict(raw.get("metrics") or {})
    default = str(mraw.pop("default", "elo"))
    metrics = {name: Metric(name=name, words=[str(w).lower() for w in m.get("words", [])],
                            direction=m.get("direction", "maximize"), doc=m.get("doc", ""))
               for name, m in mraw.items()}
    if default not in metrics:
        raise ValueError(f"{path}: default metric {default!r} is not among {sorted(metrics)}")
    return Vocabulary(factors=factors, metrics=metrics, default_metric=default,
                      not_factors={k.lower(): v for k, v in (raw.get("not_factors") or {}).items()})


@lru_cache(maxsize=8)
def _composed(board: str, budget: str) -> Any:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import experiments.config  # noqa: F401  registers the schemas conf/ extends (job_schema, <group>/schema)

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base=None):
        return compose(config_name="config", overrides=[f"board={board}", f"budget={budget}"])


def defaults(board: str = "9x9", budget: str = "tiny") -> dict[str, Any]:
    """Each factor's value in the baseline of `board`/`budget` (what a node gets with no override)."""
    from omegaconf import OmegaConf

    cfg = _composed(board, budget)
    out: dict[str, Any] = {}
    for key in load_vocabulary().factors:
        if key == "model":
            out[key] = str(cfg.model.name)
        else:
            out[key] = OmegaConf.select(cfg, key)
    return out


def budget_expected_s(board: str = "9x9", budget: str = "tiny") -> float:
    """About how long the budget's job takes on 2 idle cores (`budget.expected_s`, for plans)."""
    b = _composed(board, budget).budget
    return float(b.get("expected_s") or b.wall_clock_s)
