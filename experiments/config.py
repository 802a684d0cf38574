"""Typed schemas of the training job's config groups, registered in Hydra's ConfigStore.

Every field is documented where it is declared. `validate(cfg)` merges the composed config into
these schemas, so a misspelt field or a value of the wrong type is refused before anything runs,
with the group, the field and what was expected (Hydra itself refuses unknown group options and
names the valid ones).

Groups owned elsewhere (`tracking`, `launcher`) are passed through untyped here; their owners
validate them. The `eval` group's schema is `go_core.arena.rungs.EvalConfig`: `validate` checks the
group against it up front, so a bad key or value is refused before any self-play, not when the
first evaluation starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


@dataclass
class BoardConfig:
    size: int = 9                       # board width and height (the net is size-agnostic)
    komi: float = 7.0                   # points given to white (area scoring, Tromp-Taylor)


@dataclass
class ModelConfig:
    name: str = "b6c96"                 # label of this architecture in logs
    blocks: int = 6                     # residual blocks in the trunk
    channels: int = 96                  # channels of every trunk convolution
    gpool_every: int = 3                # every k-th block gets a KataGo global-pooling bias (0: none)
    gpool_channels: int = 32            # channels pooled in those blocks and in the policy head
    policy_channels: int = 32           # channels of the policy head's 1x1 convolution
    value_channels: int = 32            # channels of the value head's 1x1 convolution
    value_hidden: int = 64              # width of the value head's hidden layer
    ownership_head: bool = False        # KataGo auxiliary head: each point's final owner (trained with train.ownership_weight)
    score_head: bool = False            # KataGo auxiliary head: the final score margin (trained with train.score_weight)


@dataclass
class MCTSConfig:
    c_puct: float = 1.25                # PUCT exploration: U = c_puct * P * sqrt(N_parent) / (1 + N)
    c_puct_base: float = 19652.0        # AlphaZero's slow growth of c_puct with parent visits (0: off)
    fpu_reduction: float = 0.25         # first-play urgency: unvisited child's Q = parent Q - this * sqrt(visited prior)
    fpu_reduction_root: float = 0.0     # the same at the root
    dirichlet_alpha_total: float = 10.83  # root noise in self-play: alpha per move = this / legal moves
    dirichlet_eps: float = 0.25         # weight of that noise in the root prior (0: no noise)
    leaves_per_game: int = 8            # leaves gathered per game (virtual loss) before each batched forward pass...
    min_rounds: int = 8                 # ...at most simulations/min_rounds of them (small searches stay sequential)
    virtual_loss: float = 1.0           # a pending visit counts as a loss of this size on its path
    eval_visits: int = 64               # visits per move when the trained net is evaluated with search
    max_batch: int = 1024               # positions per forward pass at most
    root: str = "puct"                  # root search: puct (AlphaZero) | gumbel (Gumbel-top-m + Sequential Halving, improved-policy targets)
    gumbel_m: int = 16                  # gumbel: moves sampled at the root (Gumbel-top-m) for Sequential Halving
    gumbel_scale: float = 1.0           # gumbel: scale of the Gumbel noise in self-play's full searches (0: deterministic)
    gumbel_c_visit: float = 50.0        # gumbel: sigma(q) = (c_visit + max N) * c_scale * q, q rescaled to [0, 1]
    gumbel_c_scale: float = 0.1         # gumbel: see gumbel_c_visit
    forced_playouts: bool = False       # KataGo forced playouts + policy target pruning in self-play's noisy PUCT searches
    forced_k: float = 2.0               # forced playouts: a visited root child gets >= sqrt(k * P * sum N) visits


@dataclass
class SelfPlayConfig:
    parallel_games: int = 128           # games stepped at once in one process (their leaves share forward passes)
    games_per_iteration: int = 128      # games played before each training phase
    visits: int = 32                    # MCTS simulations of a full search (gives a policy target)
    cheap_visits: int = 8               # simulations of a cheap search (playout-cap randomization: no target)
    full_search_prob: float = 0.25      # probability a move gets a full search; 1.0 turns playout caps off
    temperature: float = 1.0            # move-sampling temperature for the opening moves
    temperature_moves: int = 8          # moves of a game sampled at `temperature`...
    temperature_final: float = 0.0      # ... then this temperature (0: the most visited move)
    tree_reuse: bool = True             # keep the chosen move's subtree for the next search
    resign_threshold: float = -0.9      # resign when the root value for the side to move is below this
    resign_consecutive: int = 2         # ... for this many of its moves in a row
    resign_min_moves: int = 20          # nobody resigns before this many moves (an early value net is overconfident)
    no_resign_fraction: float = 0.1     # fraction of games with resignation off (played out to the end)
    max_moves_factor: float = 2.0       # a game stops (scored as it stands) after factor * size^2 moves
    sgf_games_per_iteration: int = 2    # self-play games saved as SGF in games/ each iteration


@dataclass
class WarmStartConfig:
    init_checkpoint: Optional[str] = None   # start from this checkpoint's net (any board size); the steps below are then skipped...
    pretrain_after_init: bool = False   # ...unless this is true (then they train on top of the checkpoint's net)
    only: bool = False                  # apply the warm start, save checkpoints and summary.json, and stop (no self-play)
    random_value_games: int = 0         # value pre-training on this many random-play games (0: off)
    random_value_steps: int = 300       # training steps of that value pre-training
    sgf_dir: Optional[str] = None       # supervised pre-training on the SGF games in this folder
    sgf_steps: int = 500                # training steps of the supervised pre-training


@dataclass
class TrainConfig:
    batch_size: int = 256               # samples per optimizer step
    steps_per_iteration: int = 0        # optimizer steps per iteration (0: derived from sample_reuse)
    sample_reuse: float = 2.0           # when steps_per_iteration is 0: steps = reuse * new samples / batch_size
    max_steps_per_iteration: int = 200  # upper bound on derived steps, so training cannot starve self-play
    replay_samples: int = 50000         # replay window: most recent positions kept
    replay_games: int = 0               # ... and only those of the most recent games (0: no game limit)
    lr: float = 2e-3                    # peak learning rate of AdamW
    weight_decay: float = 1e-4          # AdamW weight decay (not applied to biases and norms)
    warmup_steps: int = 50              # linear learning-rate warmup
    schedule: str = "cosine"            # after warmup: cosine | step | constant
    decay_steps: int = 5000             # cosine: steps from peak to min_lr_ratio * lr
    min_lr_ratio: float = 0.1           # cosine: floor as a fraction of lr
    step_every: int = 1000              # step: multiply lr by step_gamma every this many steps
    step_gamma: float = 0.3             # step: the factor
    grad_clip: float = 1.0              # clip the gradient's global norm to this (0: off)
    policy_weight: float = 1.0          # weight of the policy cross-entropy
    value_weight: float = 1.0           # weight of the value loss
    value_loss: str = "mse"             # mse on v in [-1,1] | bce on (v+1)/2
    augment: bool = True                # random board symmetry per sample (8-fold)
    ownership_weight: float = 1.5       # weight of the ownership loss (per-point BCE, mean over points; needs model.ownership_head)
    score_weight: float = 0.02          # weight of the score loss (Huber on margin / board side; needs model.score_head)
    checkpoint_every: int = 1           # write checkpoints/latest.pt every this many iterations
    torch_threads: int = 0              # torch CPU threads (0: torch's default, one per core)
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)


@dataclass
class BudgetConfig:
    name: str = "tiny"                  # label for logs
    max_games: int = 0                  # self-play games in all; the last iteration is cut to hit it exactly (0: no limit)
    max_steps: int = 0                  # optimizer steps in all (0: derived per iteration from train.*; see steps_for_iteration)
    max_iterations: int = 0             # stop after this many collect -> train iterations (0: no limit)
    wall_clock_s: float = 0.0           # safety limit on warm start + self-play/training: past it the job ends as `timeout` (0: none)
    expected_s: float = 0.0             # about how long the job takes on 2 idle cores: for plans and progress estimates only, never a limit


@dataclass
class JobConfig:
    board: BoardConfig = field(default_factory=BoardConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    mcts: MCTSConfig = field(default_factory=MCTSConfig)
    selfplay: SelfPlayConfig = field(default_factory=SelfPlayConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    eval: Any = None                    # evaluation group (schema: go_core.arena.rungs.EvalConfig, checked in validate)
    tracking: Any = None                # tracking group (experiments/tracking.py)
    launcher: Any = None                # launcher group (Hydra launcher settings)
    seed: int = 0                       # seeds numpy, torch and the self-play games
    device: str = "auto"                # auto | cpu | cuda


GROUPS = {"board": BoardConfig, "model": ModelConfig, "mcts": MCTSConfig, "selfplay": SelfPlayConfig,
          "train": TrainConfig, "budget": BudgetConfig}

cs = ConfigStore.instance()
for _group, _schema in GROUPS.items():
    cs.store(group=_group, name="schema", node=_schema)
cs.store(name="job_schema", node=JobConfig)


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
                          f"their types, in experiments/config.py") from None
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
    if merged.get("eval") is not None:
        validate_eval(merged.eval)
    return merged


def validate_eval(eval_cfg: Any) -> None:
    """The `eval` group against go_core.arena.rungs.EvalConfig: unknown keys refused by name (with the
    known ones), and the per-iteration quick Elo keys checked (experiments/iteration_eval.py)."""
    from go_core.arena.rungs import EvalConfig

    raw = OmegaConf.to_container(eval_cfg, resolve=True) if isinstance(eval_cfg, DictConfig) else dict(eval_cfg)
    try:
        ecfg = EvalConfig.from_dict(raw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"invalid eval config: {e}. The eval group is conf/eval/*.yaml "
                          f"(schema: go_core/arena/rungs.py EvalConfig)") from None
    checks = [("every_iters", int, lambda v: v >= 0, "an integer >= 0 (0: no quick Elo during training)"),
              ("every_games", int, lambda v: v >= 1, "an integer >= 1"),
              ("every_player", str, lambda v: v in ("policy", "mcts"), "one of ['policy', 'mcts']"),
              ("every_start_elo", (int, float), lambda v: True, "a number")]
    for key, types, ok, expected in checks:
        value = getattr(ecfg, key)
        if isinstance(value, bool) or not isinstance(value, types) or not ok(value):
            raise ConfigError(f"eval.{key}={value!r} must be {expected}")
