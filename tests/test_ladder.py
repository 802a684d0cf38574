"""The reference ladder: config checks, calibration cache, the adaptive walk, and real-engine matches."""
import json

import numpy as np
import pytest

from go_core.arena import calibration, engines, rating_walk
from go_core.arena.elo import expected_score
from go_core.arena.rungs import RatingConfig, RungConfig, rung_player
from go_core.arena.match import MatchGame, MatchConfig, MatchResult, PlayerSpec, play_match
from go_core.arena.stats import wilson_interval

TRUTH = {"random": 0.0, "r1": 250.0, "r2": 500.0, "r3": 750.0, "r4": 1000.0, "candidate": 600.0}


def config(tmp_path, **kw):
    rungs = [{"name": "random", "kind": "random"}] + [
        {"name": f"r{i}", "kind": "gtp", "argv": ["true"], "elo_default": 250.0 * i} for i in range(1, 5)]
    d = {"rungs": rungs, "reference": "r2", "cache_path": str(tmp_path / "ladder.json"),
         "games_vs_reference": 8, "games_per_rung": 8, "max_rungs": 3, "workers": 1}
    d.update(kw)
    return RatingConfig.from_dict(d)


@pytest.fixture
def simulated(monkeypatch):
    """Replace real games by games drawn from TRUTH (the ladder logic is what is under test)."""
    rng = np.random.default_rng(7)
    log = []

    def fake_match(a, b, cfg, sgf_dir=None, on_game=None, first_index=0):
        log.append((a.name, b.name, cfg.games))
        games = []
        for i in range(first_index, first_index + cfg.games):
            black, white = (a.name, b.name) if i % 2 == 0 else (b.name, a.name)
            bw = rng.random() < expected_score(TRUTH[black], TRUTH[white])
            games.append(MatchGame(index=i, black=black, white=white, winner=black if bw else white,
                                    result="B+1" if bw else "W+1", reason="two passes", score=1.0))
            if on_game:
                on_game(games[-1])
        return MatchResult(a.name, b.name, games)
    monkeypatch.setattr(calibration, "play_match", fake_match)
    monkeypatch.setattr(rating_walk, "play_match", fake_match)
    return log


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown rating config keys"):
        config(tmp_path, gamez=3)
    with pytest.raises(ValueError, match="not a rung"):
        config(tmp_path, reference="nope")
    with pytest.raises(ValueError, match="random"):
        RatingConfig.from_dict({"rungs": [{"name": "g", "kind": "gnugo"}], "reference": "g"})


def test_calibration_is_cached_with_machine_date_games_and_recovers_the_order(tmp_path, simulated):
    cfg = config(tmp_path)
    data = calibration.calibrate(cfg, games=40, log=lambda m: None)
    cached = json.loads((tmp_path / "ladder.json").read_text())
    assert cached["machine"]["hostname"] and cached["date"] and cached["games_per_pair"] == 40
    assert len(cached["games"]) == 40 * (4 + 3)      # neighbours + rungs two apart
    elos = {n: r["elo"] for n, r in cached["rungs"].items()}
    assert elos["random"] == 0.0
    assert sorted(elos, key=elos.get) == ["random", "r1", "r2", "r3", "r4"]
    for n in ("r1", "r2", "r3", "r4"):
        lo, hi = cached["rungs"][n]["ci95"]
        assert lo - 100 < TRUTH[n] < hi + 100
    assert "random" in calibration.calibration_table(data)
    # Calibrating again tops pairs up to the new count (resumable); nothing is replayed.
    simulated.clear()
    calibration.calibrate(cfg, games=40, log=lambda m: None)
    assert simulated == []
    calibration.calibrate(cfg, games=50, log=lambda m: None)
    assert {n for _, _, n in simulated} == {10}
    assert len(json.loads((tmp_path / "ladder.json").read_text())["games"]) == 50 * 7
    # A changed rung definition makes its calibration stale.
    changed = config(tmp_path)
    changed.rungs[4].argv = ["false"]
    assert "r4" not in calibration.load_calibration(changed)["rungs"]


def test_adaptive_walk_starts_in_the_middle_and_plays_only_nearby_rungs(tmp_path, simulated):
    cfg = config(tmp_path)
    calibration.calibrate(cfg, games=60, log=lambda m: None)
    simulated.clear()
    cand = PlayerSpec("candidate", ["true"])
    out = rating_walk.rate_candidate(cand, cfg, log=lambda m: None)
    played = [b for _, b, _ in simulated]
    assert played[0] == "r2"                         # the middle rung of five
    assert len(set(played)) == 3 and "random" not in played and "r1" not in played  # far from 600
    assert out["reference"] == "r2" and out["games_vs_ref"] == 8
    assert out["elo_ci95"][0] < out["elo"] < out["elo_ci95"][1]
    assert abs(out["elo"] - TRUTH["candidate"]) < 300
    assert out["ladder_source"] == "calibration" and out["failures"] == []


def test_uncalibrated_machine_uses_the_configured_defaults(tmp_path, simulated):
    cfg = config(tmp_path)
    elos, sds, source = calibration.ladder_elos(cfg)
    assert source == "defaults" and elos["r3"] == 750.0 and sds["r3"] > 0


# ----------------------------------------------------------------------------- real engines
def _need(finder):
    try:
        return finder()
    except engines.EngineNotFound as e:
        pytest.skip(str(e))


def _random():
    return rung_player(RungConfig("random", "random"))


@pytest.mark.katago
def test_katago_one_visit_beats_random_in_every_game(tmp_path):
    _need(engines.find_katago)
    _need(engines.find_katago_model)
    kata = rung_player(RungConfig("katago-v1", "katago", visits=1))
    res = play_match(kata, _random(), MatchConfig(games=2, board_size=9, workers=2), sgf_dir=tmp_path)
    assert [g.winner for g in res.games] == ["katago-v1"] * 2, [(g.result, g.reason, g.detail) for g in res.games]


@pytest.mark.slow
@pytest.mark.katago
@pytest.mark.timeout(1800)
def test_katago_one_visit_beats_random_in_every_game_of_ten(tmp_path):
    _need(engines.find_katago)
    _need(engines.find_katago_model)
    kata = rung_player(RungConfig("katago-v1", "katago", visits=1))
    res = play_match(kata, _random(), MatchConfig(games=10, board_size=9, workers=2), sgf_dir=tmp_path)
    assert res.win_rate("katago-v1").wins == 10


@pytest.mark.slow
@pytest.mark.gnugo
@pytest.mark.timeout(3600)   # 80 games: L10 scored 20/30 (0.67) here, too few games to say so; ~7 min on 2 cores
def test_gnugo_level_10_beats_level_0_clearly(tmp_path):
    _need(engines.find_gnugo)
    strong = rung_player(RungConfig("gnugo-L10", "gnugo", level=10))
    weak = rung_player(RungConfig("gnugo-L0", "gnugo", level=0))
    res = play_match(strong, weak, MatchConfig(games=80, board_size=9, workers=2, random_opening_moves=4))
    wr = res.win_rate("gnugo-L10")
    assert not any(g.failure for g in res.games), res.reasons()
    assert wilson_interval(wr.wins, wr.games)[0] > 0.5, wr


def test_a_prior_estimate_starts_the_walk_at_the_nearest_rung(tmp_path, simulated):
    cfg = config(tmp_path, max_rungs=2)
    calibration.calibrate(cfg, games=60, log=lambda m: None)
    simulated.clear()
    out = rating_walk.rate_candidate(PlayerSpec("candidate", ["true"]), cfg, log=lambda m: None,
                                    start_elo=980.0)
    played = [b for _, b, _ in simulated]
    assert played[0] == "r4"
    assert "r2" in played and out["games_vs_ref"] == 8   # the reference is always played


def test_an_interrupted_calibration_resumes_where_it_stopped(tmp_path, simulated, monkeypatch):
    cfg = config(tmp_path)
    inner = calibration.play_match

    def dies_after_six(a, b, mcfg, sgf_dir=None, on_game=None, first_index=0):
        count = []

        def counted(g):
            on_game(g)
            count.append(g)
            if len(count) == 6:
                raise KeyboardInterrupt
        return inner(a, b, mcfg, sgf_dir, counted, first_index)
    monkeypatch.setattr(calibration, "play_match", dies_after_six)
    with pytest.raises(KeyboardInterrupt):
        calibration.calibrate(cfg, games=10, log=lambda m: None)
    assert len(json.loads((tmp_path / "ladder.json").read_text())["games"]) == 6
    monkeypatch.setattr(calibration, "play_match", inner)
    simulated.clear()
    calibration.calibrate(cfg, games=10, log=lambda m: None)
    assert simulated[0] == ("random", "r1", 4)       # only the missing games of the first pair


def test_a_candidate_that_loses_everything_walks_down_and_is_flagged_as_a_bound(tmp_path, simulated):
    cfg = config(tmp_path, max_rungs=3, games_per_rung=4)
    calibration.calibrate(cfg, games=60, log=lambda m: None)
    TRUTH["hopeless"] = -2000.0
    try:
        simulated.clear()
        out = rating_walk.rate_candidate(PlayerSpec("hopeless", ["true"]), cfg, log=lambda m: None)
    finally:
        del TRUTH["hopeless"]
    played = [b for _, b, _ in simulated]
    assert played == ["r2", "random"]      # down to the nearest rung below; nothing lies below random
    assert out["elo_bound"] == "upper" and out["elo"] < 0
