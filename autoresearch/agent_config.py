"""Typed configuration of the agent loop: every field declared once, here, with its doc and default.

`conf/agent/default.yaml` (or `--agent-config FILE`) holds only the values that differ from these
defaults; `research run` flags (autoresearch/run_cli.py) win over both and take their help text and
default from the fields below."""
from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_AGENT_YAML = REPO_ROOT / "conf" / "agent" / "default.yaml"


@dataclass
class NodeJobConfig:
    """How each node's job is launched (the agent's `job:` block; the job's own config is
    experiments/config.py JobConfig)."""
    module: str = "experiments.train"     # `python -m MODULE <overrides> hydra.run.dir=...`
    wall_clock_s: float = 1800.0          # a node running longer is killed -> timeout
    mem_limit_mb: int = 16384             # RLIMIT_AS of the job in MiB (0: no limit; CUDA jobs need 0)
    extra_overrides: list[str] = field(default_factory=list)  # Hydra overrides appended to every node's (e.g. tracking=disabled)
    keep_worktrees: bool = False          # keep W/worktrees/<id> after the run (the branch node/<id> stays anyway)
    sandbox: str = "auto"                 # auto (bubblewrap where it runs, else recorded "none: why") | bwrap (required) | none
    disk_limit_mb: float = 20480          # a node whose run directory grows past this is killed (0: none)
    readonly: list[str] = field(default_factory=list)  # more paths a sandboxed job may read (warm-start checkpoint, SGF folder)


@dataclass
class SlurmConfig:
    """`--launcher slurm`: each node is one SLURM job (autoresearch/jobs/slurm.py). Resource
    fields left null come from `resources_from` (the Hydra submitit launcher's YAML), else the
    cluster's defaults."""
    resources_from: str | None = "conf/launcher/slurm.yaml"  # its hydra.launcher block fills the null fields below (null: none)
    partition: str | None = None          # sbatch --partition (null: from resources_from / cluster default)
    account: str | None = None            # sbatch --account
    qos: str | None = None                # sbatch --qos
    constraint: str | None = None         # sbatch --constraint (e.g. a GPU type)
    cpus_per_task: int | None = None      # sbatch --cpus-per-task
    gpus_per_node: int | None = None      # sbatch --gpus-per-node (0: no GPU)
    gres: str | None = None               # sbatch --gres, e.g. "gpu:1" where --gpus-per-node is not used
    mem_gb: float | None = None           # sbatch --mem in GB (the node's memory limit on SLURM; job.mem_limit_mb is not applied)
    setup: list[str] | None = None        # shell lines before the job, e.g. ["module load cuda"]
    name: str | None = None               # job name prefix (the node id is appended)
    additional: dict[str, Any] | None = None  # more sbatch options verbatim, e.g. {"mail-type": "END"}
    time_margin_min: float = 10.0         # sbatch --time = job.wall_clock_s / 60 + this
    folder: str = "submitit"              # submitit's pickles and logs: W/<folder>/<job id>/
    python: str | None = None             # interpreter on the compute nodes (null: this one; shared disk)
    poll_s: float = 30.0                  # seconds between sacct queries of a running node
    rc_grace_s: float = 30.0              # wait for job.rc this long after SLURM says a job ended (shared disk lag)


@dataclass
class VerdictConfig:
    """Child vs parent. The head-to-head fields drive autoresearch/verdict.py (paired seeds, game
    pairs, sequential test); `z` and `max_reruns` drive the legacy ladder z-test (ladder_verdict.py)."""
    z: float = 1.96                       # legacy ladder test: critical |z| of the Elo difference
    max_reruns: int = 1                   # legacy ladder test: seed re-runs of a node within the noise
    delta_elo: float = 100.0              # Elo difference each one-sided SPRT is powered for (+delta better, -delta worse)
    alpha: float = 0.05                   # max share of better|worse verdicts for a child equal to its parent (alpha/2 a side)
    beta: float = 0.2                     # share of misses at +-delta_elo allowed by the SPRT bounds (the caps add more)
    pairs_per_seed_pair: int = 200        # cap of colour-swapped game pairs (2 games each) per seed pair
    max_seed_pairs: int = 3               # cap of seed pairs (child seed k vs parent seed k) per verdict
    settle_ratio: float = 0.25            # a seed pair's games are settled once their Elo variance is this share of sigma_paired^2
    sigma_paired_prior_elo: float = 170.0  # prior sd of a paired difference from training alone: sqrt(2) x sigma_train 120 (issue 12), i.e. no pairing gain assumed
    sigma_prior_df: float = 2.0           # weight of that prior, in degrees of freedom, against the tree's pooled seed pairs


@dataclass
class OfflineConfig:
    """The Optuna search of `--sweep NAME`."""
    sweep: str = "agent_default"          # conf/sweep/NAME.yaml or a path: the search space


@dataclass
class PlannerConfig:
    """The offline planner (autoresearch/planner/): how it sizes the experiment a question asks for."""
    seeds: int = 1                        # training seeds per arm (--seeds); the baseline gets as many
    sweep_points: int = 4                 # values of a 1-D sweep over a range ("between 8 and 64")
    grid_points: int = 3                  # values per factor of a two-factor grid
    minutes_per_node: float | None = None  # expected minutes of one node (null: the budget's expected_s + rating_minutes)
    rating_minutes: float = 1.5             # minutes the referee's rating adds to a node (2 cores, tiny budget)
    sigma_train_elo: float = 120.0        # Elo spread between seeds of one config (issue 12: 4 seeds, tiny budget)


@dataclass
class Prices:
    """USD per million tokens: Opus 4.5's list prices -- check the current price list for the model you use."""
    input: float = 5.0                    # USD per million input tokens
    output: float = 25.0                  # USD per million output tokens
    cache_write: float = 6.25             # USD per million tokens written to the prompt cache
    cache_read: float = 0.50              # USD per million tokens read from the prompt cache


@dataclass
class AnthropicConfig:
    """The `anthropic` proposer (Claude through tool use)."""
    model: str = "claude-opus-5-5"        # Claude model: the newest Opus the installed SDK (2.15) lists and does not deprecate (research needs the strongest reasoning on offer; research doctor checks the name)
    max_tokens: int = 4096                # per response
    max_turns: int = 16                   # model calls per propose() round before giving up on it
    max_cost_usd: float = 5.0          # stop proposing once the question spent this much
    retries: int = 5                      # attempts per API call
    backoff_s: float = 2.0                # first backoff (doubles per retry)
    max_file_chars: int = 20000           # read_file returns at most this many characters
    stepback_after: int = 3               # a track's nodes in a row not `better` before a step-back review (0: never)
    stepback_every: int = 0               # also a step-back review every this many settled nodes of a track, whatever their verdicts (0: never)
    max_retry_after_s: float = 120.0      # longest wait a 429/529 retry-after header may ask for
    check_timeout_s: float = 120.0        # run_check: time limit of one investigation command (and its maximum)
    check_sandbox: str = "auto"           # run_check: auto (bubblewrap where it runs) | bwrap (required) | none
    prices_per_mtok: Prices = field(default_factory=Prices)  # token prices, for max_cost_usd


@dataclass
class HealthConfig:
    """The referee's health checks of every node that finished ok (autoresearch/health.py)."""
    enabled: bool = True                  # false: no health checks (nodes are never marked suspect)
    sandbox: str = "auto"                 # where the checks run the node's code: auto | bwrap | none
    black_share: list = field(default_factory=lambda: [0.1, 0.9])  # self-play black win share expected with the run's komi (weak nets lean to white at komi 7)
    alpha: float = 0.01                   # false-alarm rate of the black-share test (exact binomial, one-sided at the nearer edge)
    symmetry_max_tv: float = 0.35         # mean total-variation distance allowed between a position's policy and its 8 symmetric copies' (augmented training)
    symmetry_positions: int = 8           # positions the symmetry probe evaluates under all 8 symmetries
    sims_per_s: dict = field(default_factory=lambda: {"cpu": [100.0, 200000.0], "cuda": [500.0, 5000000.0]})  # self-play simulations/s expected per device kind [lo, hi]


@dataclass
class RefereeConfig:
    """Who rates nodes that run the real training job (autoresearch/referee.py)."""
    enabled: bool = True                  # false: the job's own summary.json Elo is believed (never for real questions)
    sandbox: str = "auto"                 # auto (bubblewrap when it works, else none, recorded) | bwrap | none


@dataclass
class AgentConfig:
    """The agent loop (`research run`)."""
    proposer: str = "auto"                # auto (anthropic if ANTHROPIC_API_KEY is set, else offline) | anthropic | offline
    workers: int = 1                      # nodes run at once
    max_nodes: int = 4                  # nodes per question (baseline, re-runs included)
    max_hours: float | None = None     # wall-clock hours per question (null: no limit)
    board: str = "9x9"                    # conf/board option of every node
    budget: str = "tiny"                  # conf/budget option of every node
    seed: int = 0                         # baseline seed; re-runs use seed+1, seed+2, ...
    launcher: str = "local"               # where nodes run: local (subprocesses here) | slurm (one SLURM job per node, via submitit) | submitit-local
    job: NodeJobConfig = field(default_factory=NodeJobConfig)      # how each node's job is launched
    slurm: SlurmConfig = field(default_factory=SlurmConfig)        # --launcher slurm: workspace, repo and venv on a disk the compute nodes share
    verdict: VerdictConfig = field(default_factory=VerdictConfig)  # child vs parent
    referee: RefereeConfig = field(default_factory=RefereeConfig)  # rates every node that runs experiments.train, from a pinned copy of go_core/game|arena
    health: HealthConfig = field(default_factory=HealthConfig)     # the referee's health checks of every finished node
    shared_start: bool = True             # with the referee on: train the warm start once per question; nodes that do not change it start from it
    offline: OfflineConfig = field(default_factory=OfflineConfig)  # the Optuna search of --sweep
    planner: PlannerConfig = field(default_factory=PlannerConfig)  # the offline default: plans the experiment the question names
    anthropic: AnthropicConfig = field(default_factory=AnthropicConfig)  # the anthropic proposer


def _build(cls, raw: dict[str, Any], where: str):
    known = {f.name: f for f in fields(cls)}
    bad = set(raw) - set(known)
    if bad:
        raise ValueError(f"{where}: unknown field(s) {sorted(bad)}; known: {sorted(known)}")
    kwargs = {}
    for name, value in raw.items():
        default = known[name].default_factory() if callable(known[name].default_factory) else None
        if is_dataclass(default) and isinstance(value, dict):
            value = _build(type(default), value, f"{where}.{name}")
        kwargs[name] = value
    return cls(**kwargs)


def load_agent_config(path: Path | str | None = None) -> AgentConfig:
    """Read the agent YAML (default conf/agent/default.yaml); a missing file gives the defaults."""
    path = Path(path) if path else DEFAULT_AGENT_YAML
    if not path.exists():
        if path == DEFAULT_AGENT_YAML:
            return AgentConfig()
        raise FileNotFoundError(f"agent config {path} not found (default: {DEFAULT_AGENT_YAML})")
    raw = yaml.safe_load(path.read_text()) or {}
    return _build(AgentConfig, raw, str(path))
