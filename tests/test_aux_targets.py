"""KataGo's auxiliary targets: ownership and score from the end position, stored by self-play,
carried through the replay window and its symmetries, and learned by the net's extra heads."""
import numpy as np
import pytest
import torch

from go_core.game.board import BLACK, WHITE, Board
from go_core.learn.aux_targets import final_ownership, sample_targets
from go_core.learn.evaluators import UniformEvaluator
from go_core.learn.mcts import BatchedMCTS
from go_core.learn.mcts_config import MCTSConfig
from go_core.learn.net import NetConfig, PolicyValueNet
from go_core.learn.replay import Batch, ReplayBuffer, Samples
from go_core.learn.selfplay import SelfPlayConfig, play_games
from go_core.learn.training import TrainConfig, make_optimizer, train_step

torch.set_num_threads(1)

# Black owns the top-left (B5-A4 wall and the A5 eye), white the right side (D/E columns, E5 and
# E3 regions). C5 touches both colours, so it is dame; so is the A3-C3-C4 region and the bottom row.
END_5x5 = """
    .X.O.
    XX.OO
    ...O.
    OOOOX
    ....X
"""
EXPECTED = """
    + + 0 - -
    + + 0 - -
    0 0 0 - 0
    - - - - +
    0 0 0 0 +
"""


def test_final_ownership_on_an_ascii_board():
    board = Board.from_ascii(END_5x5, komi=0.5)
    own = final_ownership(board.stones, 5)
    expected = np.array([{"+": 1, "-": -1, "0": 0}[c] for c in EXPECTED.split()], dtype=np.int8)
    np.testing.assert_array_equal(own, expected)
    black, white = board.area()  # agrees with the rules engine's Tromp-Taylor count
    assert (own == 1).sum() == black and (own == -1).sum() == white
    # per sample, seen from the player to move; score = the margin with komi for that player
    o, s = sample_targets(board, np.array([BLACK, WHITE]))
    np.testing.assert_array_equal(o[0], expected)
    np.testing.assert_array_equal(o[1], -expected)
    assert s.tolist() == [black - white - 0.5, -(black - white - 0.5)] == [-3.5, 3.5]


def test_self_play_stores_the_targets_of_each_game():
    cfg = MCTSConfig(leaves_per_game=2)
    s = SelfPlayConfig(visits=4, cheap_visits=2, full_search_prob=1.0, parallel_games=2, no_resign_fraction=1.0)
    rng = np.random.default_rng(0)
    samples, games, _ = play_games(2, BatchedMCTS(UniformEvaluator(), cfg, rng), s, rng, size=5, komi=0.5)
    for g in games:
        part = samples.take(samples.game == g.index)
        assert part.has_aux.all()
        o, sc = sample_targets(g.board, part.to_play)
        np.testing.assert_array_equal(part.ownership, o)
        np.testing.assert_allclose(part.score, sc)
        # the score target agrees with the value target: the side ahead is the side that won
        won = part.value > 0
        assert np.all(part.score[won] > 0) and np.all(part.score[part.value < 0] < 0)


def test_resigned_games_have_no_aux_targets_and_old_windows_still_load():
    board = Board(5, 0.5)
    board.play(0)
    board.resign(WHITE)
    o, s = sample_targets(board, np.array([BLACK]))
    part = Samples.from_positions([board], np.zeros((1, 26)), [False], [1.0], [0], o, s, [False])
    buf = ReplayBuffer(10)
    buf.add(part)
    state = buf.state_dict()
    for k in ("ownership", "score", "has_aux"):
        del state["data"][k]  # a checkpoint written before the auxiliary targets existed
    old = ReplayBuffer(10)
    old.load_state_dict(state)
    b = old.sample(4, np.random.default_rng(0))
    assert not b.has_aux.any() and b.ownership.shape == (4, 25)


def test_training_with_the_aux_heads_lowers_their_losses_on_a_fixed_batch():
    torch.manual_seed(0)
    cfg = NetConfig(blocks=1, channels=16, gpool_every=1, gpool_channels=4, policy_channels=8,
                    value_channels=8, value_hidden=16, ownership_head=True, score_head=True)
    net = PolicyValueNet(cfg)
    play_cfg = MCTSConfig(leaves_per_game=1)
    rng = np.random.default_rng(1)
    samples, _, _ = play_games(4, BatchedMCTS(UniformEvaluator(), play_cfg, rng),
                               SelfPlayConfig(visits=2, cheap_visits=2, full_search_prob=1.0, temperature_moves=12,
                                              parallel_games=4, no_resign_fraction=1.0), rng, size=5, komi=0.5)
    buf = ReplayBuffer(10_000)
    buf.add(samples)
    batch = buf.sample(64, np.random.default_rng(2))
    assert batch.has_aux.all() and np.abs(batch.score).max() > 0
    opt_cfg = TrainConfig(lr=3e-3, warmup_steps=0, schedule="constant", augment=True)
    opt, sched = make_optimizer(net, opt_cfg)
    gen = torch.Generator().manual_seed(0)
    first = train_step(net, opt, sched, batch, opt_cfg, torch.device("cpu"), gen)
    for _ in range(60):
        last = train_step(net, opt, sched, batch, opt_cfg, torch.device("cpu"), gen)
    assert last["ownership_loss"] < 0.8 * first["ownership_loss"], (first, last)
    assert last["score_loss"] < 0.8 * first["score_loss"], (first, last)
    # without the heads the same batch trains exactly as before: no auxiliary losses
    plain = PolicyValueNet(NetConfig(blocks=1, channels=16, gpool_every=1, gpool_channels=4, policy_channels=8,
                                     value_channels=8, value_hidden=16))
    popt, psched = make_optimizer(plain, opt_cfg)
    stats = train_step(plain, popt, psched, batch, opt_cfg, torch.device("cpu"), gen)
    assert "ownership_loss" not in stats and "score_loss" not in stats


def test_ownership_follows_the_board_symmetry_in_augmentation():
    """The ownership plane must get the same random symmetry as the input planes."""
    from go_core.learn.training import losses
    import go_core.learn.training as training
    size = 5
    board = Board.from_ascii(END_5x5, komi=0.5)
    own, score = sample_targets(board, np.array([BLACK]))
    s = Samples.from_positions([board], np.full((1, 26), 1 / 26), [True], [-1.0], [0], own, score, [True])
    seen = {}

    def spy(net, planes, policy, has_policy, value, cfg, ownership=None, score=None, has_aux=None):
        seen["planes"], seen["own"] = planes, ownership
        return losses(net, planes, policy, has_policy, value, cfg, ownership, score, has_aux)
    net = PolicyValueNet(NetConfig(blocks=1, channels=8, gpool_every=0, policy_channels=4, value_channels=4,
                                   value_hidden=8, ownership_head=True))
    cfg = TrainConfig(augment=True)
    opt, sched = make_optimizer(net, cfg)
    orig = training.losses
    training.losses = spy
    try:
        for seed in range(6):
            b = ReplayBuffer(10)
            b.add(s)
            train_step(net, opt, sched, b.sample(1, np.random.default_rng(0)), cfg, torch.device("cpu"),
                       torch.Generator().manual_seed(seed))
            # the own-stones plane (player to move = black) and ownership +1 agree point by point
            mine = seen["planes"][0, 0].reshape(-1) > 0.5
            assert int(mine.sum()) == 5  # black's five stones
            assert torch.all(seen["own"][0][mine] == 1)
    finally:
        training.losses = orig


def test_checkpoints_without_aux_heads_stay_readable_by_older_code(tmp_path):
    from go_core.learn.net import load_checkpoint, save_checkpoint
    small = dict(blocks=1, channels=8, gpool_every=0, policy_channels=4, value_channels=4, value_hidden=8)
    save_checkpoint(tmp_path / "plain.pt", PolicyValueNet(NetConfig(**small)), board_size=9)
    stored = torch.load(tmp_path / "plain.pt", weights_only=False)["model_config"]
    assert "ownership_head" not in stored and "score_head" not in stored  # the keys older code knows
    save_checkpoint(tmp_path / "aux.pt", PolicyValueNet(NetConfig(**small, ownership_head=True)), board_size=9)
    net, meta = load_checkpoint(tmp_path / "aux.pt")
    assert net.cfg.ownership_head and not net.cfg.score_head and "ownership" in net.forward_all(
        torch.zeros(1, net.cfg.in_planes, 9, 9))
