"""The quick Elo a training run writes per iteration (experiments/iteration_rating.py), on a real
checkpoint against the smoke ladder (random, GNU Go level 0)."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from experiments.config import ConfigError, validate
from experiments.iteration_rating import is_due, last_elo, maybe_rate

ROOT = Path(__file__).resolve().parents[1]


def compose(*overrides: str):
    from hydra import compose as hydra_compose, initialize_config_dir
    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        return hydra_compose("config", overrides=list(overrides))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A 5x5 job config with the smoke ladder (default rung Elos: no machine calibration read)
    and a randomly initialised b2c32 checkpoint."""
    import torch
    from go_core.learn.net import NetConfig, PolicyValueNet, save_checkpoint
    from omegaconf import OmegaConf

    tmp = tmp_path_factory.mktemp("iteval")
    cfg = compose("board=5x5", "model=b2c32", "rating=smoke", "rating.every_iters=2", "device=cpu",
                  f"rating.cache_path={tmp / 'no-calibration.json'}")
    cfg = validate(cfg)
    torch.manual_seed(0)
    model = {k: v for k, v in OmegaConf.to_container(cfg.model).items() if k != "name"}
    ckpt = save_checkpoint(tmp / "best.pt", PolicyValueNet(NetConfig.from_dict(model)), board_size=5)
    return cfg, tmp, Path(ckpt)


def test_schedule_and_config_keys(setup):
    cfg, _, _ = setup
    assert cfg.rating.every_iters == 2 and cfg.rating.every_games == 2 and cfg.rating.every_player == "policy"
    assert not is_due(cfg.rating, 1) and is_due(cfg.rating, 2) and not is_due(cfg.rating, 3) and is_due(cfg.rating, 4)
    assert not is_due(compose("rating=smoke").rating, 1), "the default must be off (every_iters: 0)"
    with pytest.raises(ConfigError, match=r"every_player='fast' must be one of \['policy', 'mcts'\]"):
        validate(compose("rating.every_player=fast"))
    with pytest.raises(ConfigError, match="every_iters=-1 must be an integer >= 0"):
        validate(compose("rating.every_iters=-1"))
    with pytest.raises(ConfigError, match=r"unknown rating config keys \['every_iter'\]; known: .*every_iters"):
        validate(compose("+rating.every_iter=1"))


def test_not_due_is_none_and_due_gives_a_finite_elo(setup):
    cfg, tmp, ckpt = setup
    run = tmp / "run"
    messages: list[str] = []
    assert maybe_rate(cfg, run, 1, ckpt, None, messages.append) is None
    assert not messages
    # first estimate: the rung nearest every_start_elo (200) is random; no GNU Go needed
    m = maybe_rate(cfg, run, 2, ckpt, None, messages.append)
    assert "elo_error" not in m, m
    assert m["elo_rung"] == "random" and m["elo_games"] == 2
    lo, hi = m["elo_ci95"]
    assert math.isfinite(m["elo"]) and lo <= m["elo"] <= hi and hi - lo > 0
    assert m["elo_s"] > 0 and "quick Elo" in messages[-1]
    assert len(list((run / "games" / "eval_it0002").glob("*.sgf"))) == 2


def test_next_estimate_plays_the_rung_nearest_the_last_one(setup):
    cfg, tmp, ckpt = setup
    if shutil.which("gnugo") is None and not Path("/usr/games/gnugo").exists():
        pytest.skip("GNU Go not installed (apt-get install gnugo): the gnugo-L0 rung needs it")
    run = tmp / "run2"
    m = maybe_rate(cfg, run, 4, ckpt, {"elo": 700.0}, print)
    assert "elo_error" not in m, m
    assert m["elo_rung"] == "gnugo-L0" and math.isfinite(m["elo"])
    # a random net against GNU Go: it should not be rated above the rung it lost to
    assert m["elo"] < 800


def test_last_elo_is_read_back_from_metrics(tmp_path):
    from experiments.rundir import append_metrics
    assert last_elo(tmp_path) is None
    append_metrics(tmp_path, {"iteration": 1, "elo": 150.0})
    append_metrics(tmp_path, {"iteration": 2, "elo_error": "x"})
    assert last_elo(tmp_path) == 150.0


def test_a_failing_rating_is_recorded_not_raised(setup):
    cfg, tmp, _ = setup
    logged: list[str] = []
    m = maybe_rate(cfg, tmp / "run3", 2, tmp / "missing.pt", None, logged.append)
    assert set(m) == {"elo_error", "elo_s"} and "missing.pt" in m["elo_error"] and "does not exist" in m["elo_error"]
    assert "training goes on" in logged[-1]
    # a checkpoint the engine cannot load: every game is lost by a crash -> an error, not an Elo
    broken = tmp / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    m = maybe_rate(cfg, tmp / "run3", 2, broken, None, logged.append)
    assert "elo" not in m and "lost by a failure of the candidate" in m["elo_error"], m


def test_a_stop_request_is_not_swallowed(setup, monkeypatch):
    cfg, tmp, ckpt = setup
    import experiments.rate_checkpoint as rate_checkpoint

    from experiments import train
    from experiments.stop import Stopped
    assert train.Stopped is Stopped     # the class the job raises on SIGTERM

    def stopped(*a, **k):
        raise Stopped("stopped by signal SIGTERM")

    monkeypatch.setattr(rate_checkpoint, "quick_elo", stopped)
    with pytest.raises(Stopped):
        maybe_rate(cfg, tmp / "run4", 2, ckpt, None, print)
