"""The search's settings (`MCTSConfig`, the `mcts` config group's schema), and the settings a
checkpoint was trained with (`search_config_from`), with which a rating plays it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MCTSConfig:
    """The search's settings (the `mcts` config group's schema). How many simulations a move gets,
    the move temperature and tree reuse belong to whoever runs the search (self-play:
    `go_core.learn.selfplay.SelfPlayConfig`; a rating: its visits)."""
    c_puct: float = 1.25              # PUCT exploration: U = c_puct * P * sqrt(N_parent) / (1 + N)
    c_puct_base: float = 19652.0      # AlphaZero's slow growth: c += log((1 + N_p + base) / base) (0: off)
    fpu_reduction: float = 0.25       # first-play urgency: unvisited child's Q = parent Q - this * sqrt(prior mass visited)
    fpu_reduction_root: float = 0.0   # the same at the root (0: explore the root's moves freely)
    dirichlet_alpha_total: float = 10.83  # root noise in self-play: alpha per move = this / legal moves (KataGo)
    dirichlet_eps: float = 0.25       # weight of that noise in the root prior (0: no noise)
    leaves_per_game: int = 8          # leaves per game gathered (virtual loss) before each forward pass, at most...
    min_rounds: int = 8               # ...simulations/min_rounds of them, so a small search stays sequential (16 visits in 2 rounds of 8 is a one-ply sample)
    virtual_loss: float = 1.0         # each pending visit counts as a loss of this size for its path
    max_batch: int = 1024             # positions per forward pass of the net at most (go_core.learn.evaluators.NetEvaluator)
    initial_nodes: int = 4096         # node capacity a new tree starts with (doubles when full)
    root: str = "puct"                # root search: puct (AlphaZero) | gumbel (Gumbel-top-m + Sequential Halving, improved-policy targets)
    gumbel_m: int = 16                # gumbel: moves sampled at the root (Gumbel-top-m) for Sequential Halving
    gumbel_scale: float = 1.0         # gumbel: scale of the Gumbel noise in searches with noise (0: deterministic)
    gumbel_c_visit: float = 50.0      # gumbel: sigma(q) = (c_visit + max N) * c_scale * q, q rescaled to [0, 1]
    gumbel_c_scale: float = 0.1       # gumbel: see gumbel_c_visit
    forced_playouts: bool = False     # KataGo forced playouts in noisy (self-play) PUCT searches; the policy target is pruned of them
    forced_k: float = 2.0             # forced playouts: a visited root child gets at least sqrt(forced_k * P * sum N) visits


def search_config_from(meta: dict, **overrides) -> MCTSConfig:
    """The search settings a checkpoint was trained with (`meta["mcts"]`, written by
    experiments/training_run.py), with `overrides` on top; defaults for a checkpoint that holds none.
    Ratings play a node with its own search settings this way; only the visits are the referee's."""
    known = {f for f in MCTSConfig.__dataclass_fields__}
    stored = {k: v for k, v in (meta.get("mcts") or {}).items() if k in known}
    return MCTSConfig(**{**stored, **overrides})
