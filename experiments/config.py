"""Typed schemas of the training job's config groups, registered in Hydra's ConfigStore.

Each config value is declared once, with its one-line doc, next to the code that reads it: the
learner's groups by go_core/learn (`mcts`: mcts_config.MCTSConfig, `selfplay`: selfplay.SelfPlayConfig,
`train`: training.TrainConfig with warmstart.WarmStartConfig, `model`: net.NetConfig plus a label),
the job's own (`board`, `budget`) here. `JobConfig` is stored as `job_schema`, which conf/config.yaml
extends, and each group's class as `<group>/schema`, which the learner's YAML (conf/model|mcts|
selfplay|train) extend, holding only what differs from it: Hydra type-checks every value and
refuses unknown keys when it composes. conf/board and conf/budget are the referee's (pinned at a
question's start and composed by the rating without the learner's code), so each of their files
states all its values; they are typed through `job_schema` all the same.
tests/test_config_declared_once.py keeps all this true. `validate(cfg)` then checks what a type
cannot say (choices, ranges, a budget that sets work).

Groups owned elsewhere (`tracking`, `launcher`) are passed through untyped here; their owners
validate them. The `rating` group's schema is `go_core.arena.rungs.RatingConfig` (the referee's, so
its YAML, like the learner's, holds only what differs); `validate` also checks what its types cannot
say, so a bad value is refused before any self-play, not when the first rating starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from go_core.arena.rungs import RatingConfig
from go_core.learn.mcts_config import MCTSConfig
from go_core.learn.net import NetConfig
from go_core.learn.selfplay import SelfPlayConfig
from go_core.learn.training import TrainConfig


@dataclass
class BoardConfig:
    """The `board` group: the game every process of a job plays."""
    size: int = 9                       # board width and height (the net is size-agnostic)
    komi: float = 7.0                   # points given to white (area scoring, Tromp-Taylor)


@dataclass
class ModelConfig(NetConfig):
    """The `model` group: the net's architecture (`go_core.learn.net.NetConfig`) and its label."""
    name: str = "b6c96"                 # label of this architecture in logs (not passed to the net)


@dataclass
class BudgetConfig:
    """The `budget` group: how much work a job does (work, not time, so nodes compare fairly)."""
    name: str = "tiny"                  # label for logs and plans: the conf/budget file's name
    max_games: int = 0                  # self-play games in all; the last iteration is cut to hit it exactly (0: no limit)
    max_steps: int = 0                  # optimizer steps in all (0: derived per iteration from train.*; see steps_for_iteration)
    max_iterations: int = 0             # stop after this many collect -> train iterations (0: no limit)
    wall_clock_s: float = 0.0           # safety limit on warm start + self-play/training: past it the job ends as `timeout` (0: none)
    expected_s: float = 0.0             # about how long the job takes on 2 idle cores: for plans and progress estimates only, never a limit


@dataclass
class JobConfig:
    """The training job's whole config (conf/config.yaml's schema, `job_schema`)."""
    board: BoardConfig = field(default_factory=BoardConfig)           # the game: conf/board
    model: ModelConfig = field(default_factory=ModelConfig)           # the net's architecture: conf/model
    mcts: MCTSConfig = field(default_factory=MCTSConfig)              # the search's settings: conf/mcts
    selfplay: SelfPlayConfig = field(default_factory=SelfPlayConfig)  # self-play's settings: conf/selfplay
    train: TrainConfig = field(default_factory=TrainConfig)           # training and the warm start: conf/train
    budget: BudgetConfig = field(default_factory=BudgetConfig)        # the amount of work: conf/budget
    rating: RatingConfig = field(default_factory=RatingConfig)        # how a checkpoint is rated: conf/rating
    tracking: Any = None                # tracking group (experiments/tracking.py)
    launcher: Any = None                # launcher group (Hydra launcher settings)
    seed: int = 0                       # seeds numpy, torch and the self-play games
    device: str = "auto"                # auto | cpu | cuda


GROUPS = {"board": BoardConfig, "model": ModelConfig, "mcts": MCTSConfig, "selfplay": SelfPlayConfig,
          "train": TrainConfig, "budget": BudgetConfig, "rating": RatingConfig}

cs = ConfigStore.instance()
for _group, _schema in GROUPS.items():
    cs.store(group=_group, name="schema", node=_schema)   # conf/<group>/*.yaml extend it (defaults: [schema])
cs.store(name="job_schema", node=JobConfig)               # conf/config.yaml extends it


# Config keys whose change alters a run's starting point (the warm start): a node that overrides
# one of them cannot begin from its question's shared start checkpoint and must train its own.
# A key matches a prefix ending in "." when it starts with it, and one without when it is equal
# (a group choice such as `model=b2c32`).
WARM_START_KEYS = ("train.warm_start.", "model", "model.", "board", "board.")
# Files whose change alters the start as well (the net, its input features, the warm start itself).
WARM_START_FILES = ("go_core/learn/warmstart.py", "go_core/learn/net.py", "go_core/learn/features.py")


def concerns_warm_start(overrides: list[str] | tuple[str, ...] = (), changed_files=()) -> bool:
    """Whether a node needs its own warm start instead of its question's shared start checkpoint:
    `overrides` are the Hydra overrides the node adds to its question's (not the question's own
    board/budget ones), `changed_files` the paths its patch touches."""
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~").strip()
        if any(key.startswith(k) if k.endswith(".") else key == k for k in WARM_START_KEYS):
            return True
    return any(str(f).lstrip("./").removeprefix("a/").removeprefix("b/") in WARM_START_FILES for f in changed_files)


class ConfigError(ValueError):
    """The composed config does not fit the schema; the message names the field and what to do."""


def validate(cfg: DictConfig) -> DictConfig:
    """The composed config merged into `JobConfig`: types checked, unknown fields refused."""
    schema = OmegaConf.structured(JobConfig)
    try:
        merged = OmegaConf.merge(schema, cfg)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        msg = str(e).splitlines()[0]
        raise ConfigError(f"invalid config at '{key}': {msg}. Fields of each group are declared, with "
                          f"their types and docs, by the classes of experiments/config.py GROUPS "
                          f"(the learner's in go_core/learn)") from None
    choices = {"schedule": ("cosine", "step", "constant"), "value_loss": ("mse", "bce")}
    for name, allowed in choices.items():
        if merged.train[name] not in allowed:
            raise ConfigError(f"train.{name}={merged.train[name]!r} is not one of {list(allowed)}")
    if merged.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device={merged.device!r} is not one of ['auto', 'cpu', 'cuda']")
    if merged.board.size < 2 or merged.board.size > 19:
        raise ConfigError(f"board.size={merged.board.size} is outside 2..19")
    if not 0.0 <= merged.selfplay.no_resign_fraction <= 1.0:
        raise ConfigError("selfplay.no_resign_fraction must be in [0, 1]")
    if not 0.0 < merged.selfplay.full_search_prob <= 1.0:
        raise ConfigError("selfplay.full_search_prob must be in (0, 1]")
    b = merged.budget
    if min(b.max_games, b.max_steps, b.max_iterations) < 0 or b.wall_clock_s < 0:
        raise ConfigError("budget.max_games, max_steps, max_iterations and wall_clock_s must be >= 0 (0: no limit)")
    if not (b.max_games or b.max_steps or b.max_iterations or merged.train.warm_start.only):
        raise ConfigError(f"budget '{b.name}' sets no amount of work: set budget.max_games, budget.max_steps or "
                          f"budget.max_iterations (the wall clock is only a safety limit), e.g. budget=tiny")
    if merged.get("rating") is not None:
        validate_rating(merged.rating)
    return merged


def validate_rating(rating_cfg: Any) -> None:
    """The `rating` group against go_core.arena.rungs.RatingConfig: unknown keys refused by name (with the
    known ones), and the per-iteration quick Elo keys checked (experiments/iteration_rating.py)."""
    raw = OmegaConf.to_container(rating_cfg, resolve=True) if isinstance(rating_cfg, DictConfig) else dict(rating_cfg)
    try:
        ecfg = RatingConfig.from_dict(raw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"invalid rating config: {e}. The rating group is conf/rating/*.yaml "
                          f"(schema: go_core/arena/rungs.py RatingConfig)") from None
    checks = [("every_iters", int, lambda v: v >= 0, "an integer >= 0 (0: no quick Elo during training)"),
              ("every_games", int, lambda v: v >= 1, "an integer >= 1"),
              ("every_player", str, lambda v: v in ("policy", "mcts"), "one of ['policy', 'mcts']"),
              ("every_start_elo", (int, float), lambda v: True, "a number")]
    for key, types, ok, expected in checks:
        value = getattr(ecfg, key)
        if isinstance(value, bool) or not isinstance(value, types) or not ok(value):
            raise ConfigError(f"rating.{key}={value!r} must be {expected}")
