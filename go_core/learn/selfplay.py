"""Self-play: many games at once in one process, their searches batched into shared forward passes.

Each move of every live game gets a search planned by playout-cap randomization (KataGo): a full
search (`visits`, Dirichlet noise at the root, its visit distribution recorded as a policy target)
with probability `full_search_prob`, else a cheap one (`cheap_visits`, no noise, no target). All
live games search together (`mcts.BatchedMCTS.search_many`: one evaluator call per round for the
leaves of all games). The move is sampled from the visits at `temperature` for the first
`temperature_moves` moves, then the most visited one is played; the searched subtree is kept.

Resignation: a player resigns when the root value of its search stays below `resign_threshold`
for `resign_consecutive` of its moves in a row (never before move `resign_min_moves`). In a `no_resign_fraction` of the games resignation
is off and the game is played to the end, so the value head keeps seeing real endgames; those
games also measure how often a resignation would have been wrong (`resign_false_positive`).

A game that reaches `max_moves_factor * size^2` moves is stopped and scored as it stands
(Tromp-Taylor). Every position of a game becomes a sample whose value target is that game's result
for the player to move, with KataGo's auxiliary targets from the end position (`aux_targets`:
each point's final owner and the score margin, for the player to move; none for resigned games).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from go_core.game.board import BLACK, WHITE, Board, format_result
from go_core.learn.aux_targets import sample_targets
from go_core.learn.mcts import BatchedMCTS
from go_core.learn.mcts_config import MCTSConfig
from go_core.learn.search_tree import Tree
from go_core.learn.replay import HISTORY, Position, Samples


@dataclass
class SelfPlayConfig:
    """Self-play's settings (the `selfplay` config group's schema); the search's own are `MCTSConfig`."""
    parallel_games: int = 128           # games stepped at once in one process (their leaves share forward passes)
    games_per_iteration: int = 128      # games played before each training phase (experiments/train.py)
    visits: int = 32                    # MCTS simulations of a full search (noise at the root, gives a policy target)
    cheap_visits: int = 8               # simulations of a cheap search (playout-cap randomization: no noise, no target)
    full_search_prob: float = 0.25      # probability a move gets a full search; 1.0 turns playout caps off
    temperature: float = 1.0            # move-sampling temperature (visits N^(1/T)) for the opening moves...
    temperature_moves: int = 8          # ...of this many moves of a game...
    temperature_final: float = 0.0      # ...then this temperature (0: the most visited move)
    tree_reuse: bool = True             # keep the chosen move's subtree for the next search
    resign_threshold: float = -0.9      # resign when the root value for the side to move is below this...
    resign_consecutive: int = 2         # ...for this many of its moves in a row
    resign_min_moves: int = 20          # nobody resigns before this many moves (an early value net is overconfident)
    no_resign_fraction: float = 0.1     # fraction of games with resignation off (played out to the end)
    max_moves_factor: float = 2.0       # a game stops (scored as it stands) after factor * size^2 moves
    sgf_games_per_iteration: int = 2    # self-play games saved as SGF in games/ each iteration (experiments/train.py)


class SearchPlan(NamedTuple):
    simulations: int   # how many simulations to run
    noise: bool        # root noise (Dirichlet, or Gumbel with mcts.root=gumbel)
    full: bool         # True: record a policy target from this search


def plan_search(sp: SelfPlayConfig, mcts: MCTSConfig, rng: np.random.Generator) -> SearchPlan:
    """Playout-cap randomization (KataGo): with probability `sp.full_search_prob` a full search
    (`sp.visits`, root noise, policy target), else a cheap one (`sp.cheap_visits`, no noise, no target)."""
    noisy = mcts.gumbel_scale > 0 if mcts.root == "gumbel" else mcts.dirichlet_eps > 0
    if sp.full_search_prob >= 1.0 or rng.random() < sp.full_search_prob:
        return SearchPlan(sp.visits, noisy, True)
    return SearchPlan(sp.cheap_visits, False, False)


def temperature_for_move(move_number: int, sp: SelfPlayConfig) -> float:
    """The temperature schedule: sp.temperature for the first sp.temperature_moves moves."""
    return sp.temperature if move_number < sp.temperature_moves else sp.temperature_final


@dataclass
class FinishedGame:
    board: Board                   # the final position (history holds every move)
    winner: int                    # BLACK, WHITE or 0 (draw)
    result: str                    # "B+3.5", "W+R", "0"
    resign_allowed: bool
    would_have_resigned: int = 0   # in a no-resign game: the first colour that fell below the threshold
    index: int = 0                 # global game number


@dataclass
class SelfPlayStats:
    games: int = 0
    samples: int = 0
    policy_samples: int = 0
    moves: int = 0
    simulations: int = 0
    evaluations: int = 0
    wall_s: float = 0.0
    black_wins: int = 0
    resigned: int = 0
    no_resign_games: int = 0
    resign_false_positive: int = 0   # no-resign games the would-be resigner went on to win
    resign_checked: int = 0          # no-resign games where someone would have resigned
    game_lengths: list = field(default_factory=list)

    def as_metrics(self) -> dict:
        return {
            "games": self.games, "samples": self.samples, "policy_samples": self.policy_samples,
            "simulations": self.simulations, "evaluations": self.evaluations,
            "sims_per_s": self.simulations / self.wall_s if self.wall_s else 0.0,
            "selfplay_s": self.wall_s,
            "mean_game_length": float(np.mean(self.game_lengths)) if self.game_lengths else 0.0,
            "black_winrate": self.black_wins / self.games if self.games else 0.0,
            "resign_rate": self.resigned / self.games if self.games else 0.0,
            "resign_false_positive_rate": (self.resign_false_positive / self.resign_checked
                                           if self.resign_checked else None),
        }


class _Game:
    """One live game: its tree, the samples so far, and its resignation bookkeeping."""

    def __init__(self, index: int, tree: Tree, resign_allowed: bool):
        self.index = index
        self.tree = tree
        self.resign_allowed = resign_allowed
        self.positions: list[Position] = []
        self.policies: list[np.ndarray | None] = []
        self.low_streak = {BLACK: 0, WHITE: 0}
        self.would_have_resigned = 0


def game_result(board: Board) -> tuple[int, str]:
    """Winner and result text of a finished or stopped game (a resignation decides)."""
    if board.resigned:
        return 3 - board.resigned, format_result(0.0, board.resigned)
    s = board.score()
    return (BLACK if s > 0 else WHITE if s < 0 else 0), format_result(s)


def play_games(n_games: int, searcher: BatchedMCTS, settings: SelfPlayConfig, rng: np.random.Generator, *,
               size: int, komi: float, first_index: int = 0, on_game: Callable[[int], None] | None = None
               ) -> tuple[Samples | None, list[FinishedGame], SelfPlayStats]:
    """Play `n_games` self-play games on a `size` board with `komi`, `settings.parallel_games` at a
    time, searching with `searcher` (and its `MCTSConfig`); returns their samples
    (whole games, in the order they finished), the finished games, and statistics.

    `on_game(k)`, when given, is called each time a game ends, with the number ended so far in
    this call (live progress: keep it cheap, it runs inside the move loop)."""
    t0 = time.perf_counter()
    sims0, evals0 = searcher.simulations, searcher.evaluations
    cfg = searcher.cfg
    max_moves = max(1, int(settings.max_moves_factor * size ** 2))
    A = size ** 2 + 1
    stats = SelfPlayStats()
    parts: list[Samples] = []
    finished: list[FinishedGame] = []
    started = 0
    live: list[_Game] = []

    def start() -> _Game:
        nonlocal started
        g = _Game(first_index + started, Tree(Board(size, komi), cfg),
                  resign_allowed=bool(rng.random() >= settings.no_resign_fraction))
        started += 1
        return g

    while live or started < n_games:
        while started < n_games and len(live) < settings.parallel_games:
            live.append(start())
        plans = [plan_search(settings, cfg, searcher.rng) for _ in live]
        searcher.search_many([g.tree for g in live], [p.simulations for p in plans], [p.noise for p in plans])
        still = []
        for g, plan in zip(live, plans):
            board = g.tree.board
            me = board.to_play
            g.positions.append(Position(board.size, board.stones, me, board.history[-HISTORY:], board.komi))
            g.policies.append(g.tree.policy_target() if plan.full else None)
            stats.moves += 1
            # resignation: the root value for the player to move, over its consecutive moves
            v = g.tree.root_value()
            low = v < settings.resign_threshold and board.move_number >= settings.resign_min_moves
            g.low_streak[me] = g.low_streak[me] + 1 if low else 0
            done = False
            if g.low_streak[me] >= settings.resign_consecutive:
                if g.resign_allowed:
                    final = board.copy()
                    final.resign(me)
                    done = True
                elif not g.would_have_resigned:
                    g.would_have_resigned = me
            if not done:
                move = g.tree.pick_move(temperature_for_move(board.move_number, settings), rng)
                g.tree.advance(move, keep_subtree=settings.tree_reuse)
                final = g.tree.board
                done = final.is_over or final.move_number >= max_moves
            if done:
                finished.append(_finish(g, final, A, stats, parts))
                if on_game is not None:
                    on_game(len(finished))
            else:
                still.append(g)
        live = still
    stats.wall_s = time.perf_counter() - t0
    stats.simulations = searcher.simulations - sims0
    stats.evaluations = searcher.evaluations - evals0
    finished.sort(key=lambda f: f.index)
    return (Samples.concat(parts) if parts else None), finished, stats


def _finish(g: _Game, final: Board, A: int, stats: SelfPlayStats, parts: list[Samples]) -> FinishedGame:
    winner, result = game_result(final)
    n = len(g.positions)
    has = np.array([p is not None for p in g.policies])
    policy = np.zeros((n, A), dtype=np.float32)
    for i, p in enumerate(g.policies):
        if p is not None:
            policy[i] = p
    to_play = np.array([p.to_play for p in g.positions])
    value = np.where(winner == 0, 0.0, np.where(to_play == winner, 1.0, -1.0)).astype(np.float32)
    # auxiliary targets from the end position; a resigned game was not played out, so it has none
    ownership, score = sample_targets(final, to_play)
    parts.append(Samples.from_positions(g.positions, policy, has, value, np.full(n, g.index), ownership,
                                        score, np.full(n, not final.resigned)))
    stats.games += 1
    stats.samples += n
    stats.policy_samples += int(has.sum())
    stats.black_wins += int(winner == BLACK)
    stats.resigned += int(bool(final.resigned))
    stats.game_lengths.append(final.move_number)
    if not g.resign_allowed:
        stats.no_resign_games += 1
        if g.would_have_resigned:
            stats.resign_checked += 1
            stats.resign_false_positive += int(winner == g.would_have_resigned)
    return FinishedGame(final, winner, result, g.resign_allowed, g.would_have_resigned, g.index)


def sample_record(game: FinishedGame, samples: Samples) -> dict:
    """One finished game with the targets training got from it, as the run directory's
    `selfplay_sample.jsonl` stores it (contract: experiments/rundir.py): the referee replays
    `moves` with its own rules engine and checks `value` and `policy` against them."""
    rows = np.flatnonzero(samples.game == game.index)
    policy = []
    for i in rows:
        if samples.has_policy[i]:
            nz = np.flatnonzero(samples.policy[i])
            policy.append([[int(m), float(samples.policy[i, m])] for m in nz])
        else:
            policy.append(None)
    return {"game": int(game.index), "size": int(game.board.size), "komi": float(game.board.komi),
            "moves": [int(m) for m in game.board.history], "resigned": int(game.board.resigned),
            "result": game.result, "value": [float(v) for v in samples.value[rows]], "policy": policy}


def save_sgf(game: FinishedGame, path, player: str = "tengen") -> None:
    """Write one self-play game as SGF (go_core.game.sgf, sgfmill underneath)."""
    from go_core.game.sgf import record_from_board, write_sgf
    rec = record_from_board(game.board, black=player, white=player, result=game.result,
                            root_comment=f"self-play game {game.index}; resignation "
                                         f"{'on' if game.resign_allowed else 'off'}")
    write_sgf(path, rec)
