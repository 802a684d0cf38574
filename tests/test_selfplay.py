"""Self-play: many games at once, the right samples and targets, resignation and its no-resign fraction."""
import numpy as np

from go_core.game.board import BLACK, WHITE
from go_core.learn.evaluators import UniformEvaluator
from go_core.learn.mcts import BatchedMCTS
from go_core.learn.mcts_config import MCTSConfig
from go_core.learn.selfplay import SelfPlayConfig, play_games, save_sgf
from go_core.game.sgf import read_sgf


class WhiteDespairs(UniformEvaluator):
    """Uniform prior; black is sure to win (value +1 when black is to move, -1 when white is)."""

    def evaluate(self, boards):
        priors, _ = super().evaluate(boards)
        return priors, np.array([1.0 if b.to_play == BLACK else -1.0 for b in boards], np.float32)


def run(evaluator, n=6, parallel=3, full=1.0, **settings):
    cfg = MCTSConfig(leaves_per_game=2)
    s = SelfPlayConfig(visits=6, cheap_visits=2, full_search_prob=full, temperature_moves=4,
                       parallel_games=parallel, max_moves_factor=2.0)
    for k, v in settings.items():
        setattr(s, k, v)
    rng = np.random.default_rng(0)
    return play_games(n, BatchedMCTS(evaluator, cfg, rng), s, rng, size=5, komi=0.5, first_index=10)


def test_games_give_one_sample_per_move_with_the_right_targets():
    samples, games, stats = run(UniformEvaluator(), no_resign_fraction=1.0)
    assert stats.games == len(games) == 6 and [g.index for g in games] == list(range(10, 16))
    assert len(samples) == sum(g.board.move_number for g in games) == stats.samples
    np.testing.assert_allclose(samples.policy.sum(1), 1.0, rtol=1e-5)  # every search was full
    for g in games:
        rows = samples.game == g.index
        assert rows.sum() == g.board.move_number
        # value target: the game's result for the player to move at each position
        expected = np.where(samples.to_play[rows] == g.winner, 1.0, -1.0) if g.winner else 0.0
        np.testing.assert_array_equal(samples.value[rows], expected)
        assert g.board.is_over or g.board.move_number >= 50
    assert stats.as_metrics()["sims_per_s"] > 0


def test_cheap_searches_give_no_policy_target():
    samples, games, stats = run(UniformEvaluator(), full=0.3, no_resign_fraction=1.0)
    has = samples.has_policy
    assert 0 < has.sum() < len(has)
    assert np.all(samples.policy[~has] == 0)
    np.testing.assert_allclose(samples.policy[has].sum(1), 1.0, rtol=1e-5)
    assert stats.policy_samples == has.sum()


def test_a_hopeless_side_resigns_unless_the_game_is_a_no_resign_one():
    samples, games, stats = run(WhiteDespairs(), n=4, resign_threshold=-0.8, resign_consecutive=2,
                                no_resign_fraction=0.0, resign_min_moves=0)
    assert all(g.result == "B+R" and g.board.move_number == 3 for g in games)  # white's second move resigns
    assert stats.resigned == 4
    assert np.all(samples.value[samples.to_play == WHITE] == -1)
    _, games, stats = run(WhiteDespairs(), n=4, resign_threshold=-0.8, resign_consecutive=2,
                          no_resign_fraction=1.0, resign_min_moves=0)
    assert stats.resigned == 0 and stats.no_resign_games == 4
    assert all(not g.board.resigned and g.would_have_resigned == WHITE for g in games)
    assert stats.resign_checked == 4  # each tells whether resigning would have been right
    # no resignation before move 6: white's moves 7 and 9 are its first two hopeless ones
    _, games, stats = run(WhiteDespairs(), n=2, resign_threshold=-0.8, resign_consecutive=2,
                          no_resign_fraction=0.0, resign_min_moves=6)
    assert all(g.result == "B+R" and g.board.move_number == 9 for g in games)


def test_sgf_sample_round_trips(tmp_path):
    _, games, _ = run(UniformEvaluator(), n=2, parallel=2, no_resign_fraction=1.0)
    save_sgf(games[0], tmp_path / "g.sgf")
    rec = read_sgf(tmp_path / "g.sgf")
    assert [m for _, m in rec.moves] == games[0].board.history
    assert rec.result == games[0].result and rec.size == 5


def test_gumbel_self_play_records_improved_policy_targets():
    cfg = MCTSConfig(leaves_per_game=2, root="gumbel", gumbel_m=4)
    s = SelfPlayConfig(visits=8, cheap_visits=2, full_search_prob=0.5, temperature_moves=4, parallel_games=3,
                       max_moves_factor=2.0, no_resign_fraction=1.0)
    rng = np.random.default_rng(0)
    samples, games, stats = play_games(4, BatchedMCTS(UniformEvaluator(), cfg, rng), s, rng, size=5, komi=0.5)
    assert stats.games == 4 and 0 < samples.has_policy.sum() < len(samples)
    pol = samples.policy[samples.has_policy]
    np.testing.assert_allclose(pol.sum(1), 1, atol=1e-5)
    # improved policy: every legal move keeps some probability, not only the <= 7 visited ones
    assert np.mean((pol > 0).sum(1)) > 7


def test_on_game_reports_each_finished_game():
    seen = []
    cfg = MCTSConfig(leaves_per_game=2)
    s = SelfPlayConfig(visits=6, cheap_visits=2, full_search_prob=1.0, temperature_moves=4, parallel_games=3,
                       max_moves_factor=2.0)
    rng = np.random.default_rng(0)
    _, games, _ = play_games(5, BatchedMCTS(UniformEvaluator(), cfg, rng), s, rng, size=5, komi=0.5,
                             on_game=seen.append)
    assert seen == [1, 2, 3, 4, 5] and len(games) == 5
