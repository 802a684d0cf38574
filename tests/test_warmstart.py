"""Warm starts: random-game value targets, SGF supervision, a 9x9 net starting a 19x19 run."""
import numpy as np
import pytest
import torch

from go_core.game.board import Board
from go_core.learn.features import encode
from go_core.learn.net import NetConfig, PolicyValueNet, save_checkpoint
from go_core.game.sgf import record_from_board, write_sgf
from go_core.learn.training import TrainConfig
from go_core.learn.warmstart import init_from_checkpoint, pretrain, random_game_samples, sgf_samples

torch.set_num_threads(1)
SMALL = NetConfig(blocks=1, channels=16, gpool_every=1, gpool_channels=4, policy_channels=8,
                  value_channels=8, value_hidden=16)


def test_random_game_samples_carry_each_games_result():
    rng = np.random.default_rng(0)
    s = random_game_samples(6, 5, 0.5, rng, positions_per_game=5)
    assert len(s) == 30 and s.has_policy.all()
    np.testing.assert_allclose(s.policy.sum(1), 1.0, rtol=1e-5)
    # the random player's own moves: legal points, pass only when no point is left
    for i, pos in enumerate(s.positions()[:5]):
        assert np.all(s.policy[i][:-1][pos.stones != 0] == 0)
        assert s.policy[i][-1] == (1.0 if s.policy[i][:-1].sum() == 0 else 0.0)
    assert set(np.unique(s.value)) <= {-1.0, 1.0}  # komi 0.5: no draws
    for g in np.unique(s.game):
        rows = s.game == g
        # one winner per game: the value is +1 exactly for the positions where the winner is to move
        black_wins = s.value[rows & (s.to_play == 1)]
        white_wins = s.value[rows & (s.to_play == 2)]
        assert len(set(black_wins)) <= 1 and len(set(white_wins)) <= 1
        if len(black_wins) and len(white_wins):
            assert black_wins[0] == -white_wins[0]


def test_value_pretraining_learns_to_count():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    s = random_game_samples(200, 5, 0.5, rng, positions_per_game=4)
    net = PolicyValueNet(SMALL)
    cfg = TrainConfig(lr=3e-3, warmup_steps=5)
    x = torch.from_numpy(s.planes())
    with torch.no_grad():
        before = float(((net.eval()(x)[1] - torch.from_numpy(s.value)) ** 2).mean())
    stats = pretrain(net, s, 80, 64, cfg, torch.device("cpu"), rng)
    with torch.no_grad():
        after = float(((net(x)[1] - torch.from_numpy(s.value)) ** 2).mean())
    assert after < 0.8 * before, (before, after, stats)


def test_sgf_folder_gives_one_hot_moves_and_results(tmp_path):
    rng = np.random.default_rng(2)
    lengths = []
    for i in range(3):
        end = Board(5, 0.5).random_playout(rng)
        write_sgf(tmp_path / f"g{i}.sgf", record_from_board(end, result=end.result()))
        lengths.append(end.move_number)
    write_sgf(tmp_path / "other_size.sgf", record_from_board(Board(7, 0.5).random_playout(rng)))
    s = sgf_samples(tmp_path, 5)
    assert len(s) == sum(lengths) and s.has_policy.all()
    np.testing.assert_array_equal(s.policy.sum(1), 1.0)
    first = Board(5, 0.5).random_playout(np.random.default_rng(2))
    assert int(np.argmax(s.policy[0])) == first.history[0]
    with pytest.raises(FileNotFoundError, match="katago-games"):
        sgf_samples(tmp_path / "empty", 5)


def test_a_9x9_checkpoint_starts_a_19x19_run(tmp_path):
    torch.manual_seed(0)
    small = PolicyValueNet(SMALL)
    save_checkpoint(tmp_path / "n9.pt", small, board_size=9, step=7)
    net = PolicyValueNet(SMALL)
    info = init_from_checkpoint(net, tmp_path / "n9.pt", "cpu")
    assert info["init_board_size"] == 9 and info["init_step"] == 7
    x = encode([Board(19, 7.0)])
    with torch.no_grad():
        logits, value = net.eval()(x)
        logits9, _ = small.eval()(x)
    assert logits.shape == (1, 19 * 19 + 1) and torch.equal(logits, logits9)
    with pytest.raises(ValueError, match="model"):
        init_from_checkpoint(PolicyValueNet(NetConfig(blocks=1, channels=8, gpool_every=0)), tmp_path / "n9.pt", "cpu")


@pytest.mark.slow
@pytest.mark.katago
def test_katago_self_play_makes_sgf_games(tmp_path):
    from go_core.arena.engines import EngineNotFound, find_katago, find_katago_model
    from go_core.arena.katago_games import generate_katago_games
    try:
        find_katago(), find_katago_model()
    except EngineNotFound as e:
        pytest.skip(f"KataGo not available: {e}")
    paths = generate_katago_games(tmp_path, 2, size=9, visits=2, random_opening=2)
    assert len(paths) == 2
    s = sgf_samples(tmp_path, 9)
    assert len(s) > 20
