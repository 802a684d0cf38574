"""The replay window keeps the most recent positions, encodes them on draw, and survives a checkpoint."""
import io

import numpy as np
import pytest
import torch

from go_core.learn.features import NUM_PLANES, encode_numpy
from go_core.learn.replay import Position, ReplayBuffer, Samples


def fake_game(game: int, n: int, size: int = 5, seed: int = 0) -> Samples:
    rng = np.random.default_rng(seed + game)
    boards = [Position(size, rng.choice([0, 1, 2], size * size).astype(np.int8), 1 + i % 2,
                       [int(m) for m in rng.integers(0, size * size + 1, i % 4)], 7.0) for i in range(n)]
    policy = rng.dirichlet(np.full(size * size + 1, 0.1), n).astype(np.float32)  # peaked, like visits
    return Samples.from_positions(boards, policy, rng.random(n) < 0.5, np.where(rng.random(n) < .5, 1, -1),
                                  np.full(n, game))


def test_window_keeps_the_most_recent_samples():
    buf = ReplayBuffer(max_samples=25)
    for g in range(5):
        buf.add(fake_game(g, 10))
    assert len(buf) == 25
    assert buf.all().game.tolist() == [2] * 5 + [3] * 10 + [4] * 10
    assert buf.total_added == 50 and buf.games_added == 5


def test_window_by_number_of_games():
    buf = ReplayBuffer(max_samples=1000, max_games=2)
    for g in range(4):
        buf.add(fake_game(g, 3 + g))
    assert sorted(set(buf.all().game.tolist())) == [2, 3]
    assert len(buf) == 5 + 6


def test_sample_encodes_the_stored_positions():
    buf = ReplayBuffer(max_samples=100)
    s = fake_game(0, 20)
    buf.add(s)
    batch = buf.sample(8, np.random.default_rng(0))
    assert batch.planes.shape == (8, NUM_PLANES, 5, 5)
    # every drawn sample is one of the stored ones, with its own targets
    stored = encode_numpy(s.positions())
    for i in range(8):
        j = [k for k in range(20) if np.array_equal(stored[k], batch.planes[i])]
        assert j, "drawn planes match no stored position"
        assert np.array_equal(s.policy[j[0]], batch.policy[i])


def test_history_longer_than_kept_is_truncated_not_lost():
    pos = Position(5, np.zeros(25, np.int8), 1, list(range(12)), 7.0)
    s = Samples.from_positions([pos], np.zeros((1, 26)), [False], [0.0], [0])
    assert s.positions()[0].history == list(range(4, 12))


def test_state_dict_round_trip_is_exact():
    buf = ReplayBuffer(max_samples=30, max_games=5)
    for g in range(4):
        buf.add(fake_game(g, 9))
    f = io.BytesIO()
    torch.save(buf.state_dict(), f)
    f.seek(0)
    other = ReplayBuffer(max_samples=30, max_games=5)
    other.load_state_dict(torch.load(f, weights_only=False))
    a, b = buf.sample(16, np.random.default_rng(7)), other.sample(16, np.random.default_rng(7))
    np.testing.assert_array_equal(a.planes, b.planes)
    np.testing.assert_array_equal(a.value, b.value)
    assert (other.total_added, other.games_added, len(other)) == (buf.total_added, buf.games_added, len(buf))


def test_empty_buffer_and_size_change_are_refused():
    buf = ReplayBuffer(max_samples=10)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(1, np.random.default_rng(0))
    buf.add(fake_game(0, 3, size=5))
    with pytest.raises(ValueError, match="board size changed"):
        buf.add(fake_game(1, 3, size=7))
