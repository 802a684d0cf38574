"""The 8 board symmetries map boards, moves and policy vectors consistently."""
import numpy as np
import pytest
import torch

from go_core.learn.features import encode_numpy
from go_core.learn.replay import Position
from go_core.game.symmetry import (augment_batch, inverse, source_index, transform_move, transform_planes,
                              transform_policy)


def stones_transform(stones: np.ndarray, k: int, size: int) -> np.ndarray:
    return transform_planes(stones.reshape(size, size), k).reshape(-1)


@pytest.mark.parametrize("size", [5, 9])
@pytest.mark.parametrize("k", range(8))
def test_a_stone_lands_where_its_move_lands(size, k):
    for m in range(size * size):
        stones = np.zeros(size * size, np.int8)
        stones[m] = 1
        assert np.flatnonzero(stones_transform(stones, k, size)).tolist() == [transform_move(m, k, size)]
    assert transform_move(size * size, k, size) == size * size  # pass stays pass


def test_the_eight_symmetries_are_distinct_and_invertible():
    size = 7
    seen = {tuple(source_index(k, size)) for k in range(8)}
    assert len(seen) == 8
    x = np.random.default_rng(0).random((3, size, size))
    p = np.random.default_rng(1).random((3, size * size + 1))
    for k in range(8):
        assert np.array_equal(transform_planes(transform_planes(x, k), inverse(k)), x)
        assert np.array_equal(transform_policy(transform_policy(p, k, size), inverse(k), size), p)


def test_known_corner_moves():
    # k=1 is a quarter-turn counter-clockwise: the top-right corner goes to the top-left
    size = 9
    top_right, top_left, bottom_left = 8, 0, 72
    assert transform_move(top_right, 1, size) == top_left
    assert transform_move(top_left, 1, size) == bottom_left
    # k=4 is a left-right mirror
    assert transform_move(top_left, 4, size) == top_right


@pytest.mark.parametrize("k", range(8))
def test_features_of_a_transformed_position_are_the_transformed_features(k):
    size = 9
    rng = np.random.default_rng(k)
    stones = rng.choice([0, 0, 1, 2], size=size * size).astype(np.int8)
    history = [int(m) for m in rng.choice(np.flatnonzero(stones), 2, replace=False)]
    pos = Position(size, stones, 2, history, 7.0)
    moved = Position(size, stones_transform(stones, k, size), 2,
                     [transform_move(m, k, size) for m in history], 7.0)
    a = transform_planes(encode_numpy([pos]), k)
    b = encode_numpy([moved])
    np.testing.assert_array_equal(a, b)


def test_numpy_and_torch_agree_and_augment_keeps_pairs_together():
    size = 5
    rng = np.random.default_rng(3)
    x = rng.random((16, 2, size, size)).astype(np.float32)
    for k in range(8):
        np.testing.assert_array_equal(transform_planes(torch.from_numpy(x), k).numpy(), transform_planes(x, k))
    # a policy that is one-hot on the marked point of plane 0 stays on it under augmentation
    planes = np.zeros((64, 1, size, size), np.float32)
    policy = np.zeros((64, size * size + 1), np.float32)
    for i in range(64):
        m = int(rng.integers(size * size))
        planes[i, 0].flat[m] = 1
        policy[i, m] = 1
    ax, ap = augment_batch(torch.from_numpy(planes), torch.from_numpy(policy), torch.Generator().manual_seed(0))
    assert not torch.equal(ax, torch.from_numpy(planes))  # something moved
    assert torch.equal(ax.flatten(1), ap[:, :-1])
