"""The replay window: the most recent self-play positions, sampled uniformly for training.

A sample is one position, stored compactly (stones, side to move, the last few moves, komi: about
a hundred bytes on 9x9) and turned into the net's input planes by `features.encode_numpy` only
when it is drawn, plus the MCTS visit distribution as the policy target (absent for playout-cap
cheap searches) and the game's outcome from the view of the player to move (+1 win, -1 loss,
0 draw). The window keeps the last `max_samples` samples and, when `max_games` is set, only
samples of the last `max_games` games.

`state_dict()` / `load_state_dict()` hold everything (contents, order, counters), so a run resumed
from its checkpoint trains on exactly the window it had.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from go_core.learn.features import encode_numpy

HISTORY = 8   # moves of history kept per position (features use the last two)
NO_MOVE = -2  # history padding for positions early in a game


@dataclass
class Position:
    """What `features.encode` reads from a board; rebuilt from a stored sample."""
    size: int
    stones: np.ndarray
    to_play: int
    history: list
    komi: float


@dataclass
class Samples:
    """Positions from finished games (numpy arrays sharing their first axis)."""
    stones: np.ndarray        # (n, S*S) int8 board (0 empty, 1 black, 2 white)
    to_play: np.ndarray       # (n,) int8 colour to move
    history: np.ndarray       # (n, HISTORY) int16 last moves, oldest first, NO_MOVE padding
    komi: np.ndarray          # (n,) float32
    policy: np.ndarray        # (n, S*S+1) float32 visit distribution (zeros where has_policy is False)
    has_policy: np.ndarray    # (n,) bool: False for cheap (playout-cap) searches
    value: np.ndarray         # (n,) float32 outcome for the player to move
    game: np.ndarray          # (n,) int64 global game number
    ownership: np.ndarray     # (n, S*S) int8 final Tromp-Taylor owner of each point for the player to move (+1 own, -1 opponent's, 0 dame)
    score: np.ndarray         # (n,) float32 final score margin for the player to move (komi included)
    has_aux: np.ndarray       # (n,) bool: ownership/score are real (False: a resigned game, not played out)

    def __len__(self) -> int:
        return len(self.value)

    def take(self, idx) -> "Samples":
        return Samples(*(getattr(self, f.name)[idx] for f in fields(self)))

    @staticmethod
    def concat(parts: list["Samples"]) -> "Samples":
        return Samples(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Samples)))

    @staticmethod
    def from_positions(boards, policy, has_policy, value, game, ownership=None, score=None,
                       has_aux=None) -> "Samples":
        """Samples from Board-like positions (`size`, `stones`, `to_play`, `history`, `komi`);
        without ownership/score the auxiliary targets are zeros marked absent."""
        n = len(boards)
        size = boards[0].size if n else 0
        hist = np.full((n, HISTORY), NO_MOVE, dtype=np.int16)
        for i, b in enumerate(boards):
            tail = list(b.history)[-HISTORY:]
            if tail:
                hist[i, HISTORY - len(tail):] = tail
        return Samples(
            stones=np.array([b.stones for b in boards], dtype=np.int8).reshape(n, size * size),
            to_play=np.array([b.to_play for b in boards], dtype=np.int8),
            history=hist, komi=np.array([b.komi for b in boards], dtype=np.float32),
            policy=np.asarray(policy, dtype=np.float32).reshape(n, size * size + 1),
            has_policy=np.asarray(has_policy, dtype=bool).reshape(n),
            value=np.asarray(value, dtype=np.float32).reshape(n),
            game=np.asarray(game, dtype=np.int64).reshape(n),
            ownership=(np.zeros((n, size * size), np.int8) if ownership is None
                       else np.asarray(ownership, dtype=np.int8).reshape(n, size * size)),
            score=np.zeros(n, np.float32) if score is None else np.asarray(score, dtype=np.float32).reshape(n),
            has_aux=(np.full(n, ownership is not None) if has_aux is None
                     else np.asarray(has_aux, dtype=bool).reshape(n)))

    def positions(self) -> list[Position]:
        size = int(round(np.sqrt(self.stones.shape[1])))
        return [Position(size, self.stones[i], int(self.to_play[i]),
                         [int(m) for m in self.history[i] if m != NO_MOVE], float(self.komi[i]))
                for i in range(len(self))]

    def planes(self) -> np.ndarray:
        """The net's input planes (n, C, S, S) float32."""
        return encode_numpy(self.positions())


@dataclass
class Batch:
    planes: np.ndarray        # (B, C, S, S) float32
    policy: np.ndarray        # (B, S*S+1) float32
    has_policy: np.ndarray    # (B,) bool
    value: np.ndarray         # (B,) float32
    ownership: np.ndarray | None = None  # (B, S*S) float32 in {-1, 0, 1}, for the player to move
    score: np.ndarray | None = None      # (B,) float32 final margin for the player to move
    has_aux: np.ndarray | None = None    # (B,) bool: the two above are real


class ReplayBuffer:
    """A FIFO window over samples."""

    def __init__(self, max_samples: int, max_games: int | None = None):
        if max_samples <= 0:
            raise ValueError(f"replay max_samples must be positive, got {max_samples}")
        self.max_samples = int(max_samples)
        self.max_games = int(max_games) if max_games else None
        self._data: Samples | None = None
        self.total_added = 0          # samples ever added
        self.games_added = 0          # games ever added

    def __len__(self) -> int:
        return 0 if self._data is None else len(self._data)

    def add(self, samples: Samples) -> None:
        """Append samples (whole games, oldest first) and drop what falls out of the window."""
        if len(samples) == 0:
            return
        if self._data is not None and self._data.stones.shape[1] != samples.stones.shape[1]:
            raise ValueError(f"samples of a {samples.stones.shape[1]}-point board do not match the "
                             f"buffer's {self._data.stones.shape[1]}-point board (board size changed mid-run)")
        self.total_added += len(samples)
        self.games_added += len(np.unique(samples.game))
        data = samples if self._data is None else Samples.concat([self._data, samples])
        keep = np.ones(len(data), dtype=bool)
        if len(data) > self.max_samples:
            keep[: len(data) - self.max_samples] = False
        if self.max_games:
            games = np.unique(data.game)
            if len(games) > self.max_games:
                keep &= data.game >= games[-self.max_games]
        self._data = data if keep.all() else data.take(keep)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """`batch_size` samples drawn uniformly with replacement, encoded as planes."""
        if self._data is None:
            raise ValueError("the replay buffer is empty: play some games before training")
        s = self._data.take(rng.integers(0, len(self._data), size=batch_size))
        return Batch(s.planes(), s.policy, s.has_policy, s.value, s.ownership.astype(np.float32),
                     s.score, s.has_aux)

    def all(self) -> Samples | None:
        return self._data

    def state_dict(self) -> dict:
        d = self._data
        return {"max_samples": self.max_samples, "max_games": self.max_games,
                "total_added": self.total_added, "games_added": self.games_added,
                "data": None if d is None else {f.name: getattr(d, f.name) for f in fields(d)}}

    def load_state_dict(self, state: dict) -> None:
        self.total_added = int(state["total_added"])
        self.games_added = int(state["games_added"])
        data = state["data"]
        if data is not None and "ownership" not in data:  # a window saved before auxiliary targets
            n, points = np.asarray(data["stones"]).shape
            data = {**data, "ownership": np.zeros((n, points), np.int8), "score": np.zeros(n, np.float32),
                    "has_aux": np.zeros(n, bool)}
        self._data = None if data is None else Samples(**{k: np.asarray(v) for k, v in data.items()})
        # the window size comes from the current config: a resumed run may narrow it
        if self._data is not None and len(self._data) > self.max_samples:
            self._data = self._data.take(slice(len(self._data) - self.max_samples, None))
