"""A node is rated with its own search settings: the job stores them in its checkpoints, and the
players a rating starts (go_core/learn's MCTSPlayer behind `research gtp`, and the batched player
of head-to-head) search with them; only the number of visits is the referee's."""
from __future__ import annotations

from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from experiments.config import validate
from go_core.learn.batch_player import BatchPlayer
from go_core.learn.mcts_config import MCTSConfig
from go_core.learn.net import NetConfig, PolicyValueNet, load_checkpoint, save_checkpoint
from go_core.learn.net_players import MCTSPlayer

CONF = Path(__file__).resolve().parents[1] / "conf"
TINY = NetConfig(blocks=1, channels=8, gpool_every=0, policy_channels=4, value_channels=4, value_hidden=8)


def test_the_training_job_stores_its_search_settings_in_both_checkpoints(tmp_path):
    from experiments.training_run import TrainingRun
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="config", overrides=["model=b2c32", "mcts.c_puct=2.5", "mcts.root=gumbel",
                                                         "mcts.gumbel_m=8", "device=cpu", "rating=smoke",
                                                         "tracking=disabled"])
    run = TrainingRun(validate(cfg), tmp_path)
    run.save(wall_s=0.0, cpu_s=0.0)
    for name in ("latest.pt", "best.pt"):
        _, meta = load_checkpoint(tmp_path / "checkpoints" / name, "cpu")
        assert meta["mcts"]["c_puct"] == 2.5 and meta["mcts"]["root"] == "gumbel" and meta["mcts"]["gumbel_m"] == 8


def _checkpoint(path: Path, **mcts) -> Path:
    torch.manual_seed(0)
    extra = {"mcts": {**MCTSConfig().__dict__, **mcts}} if mcts else {}
    return save_checkpoint(path, PolicyValueNet(TINY), board_size=5, **extra)


def test_rating_players_search_with_the_checkpoints_settings_and_the_callers_visits(tmp_path):
    ck = _checkpoint(tmp_path / "own.pt", c_puct=3.0, fpu_reduction=0.0, root="gumbel", gumbel_m=4)
    gtp_side = MCTSPlayer(ck, visits=6, device="cpu")
    assert (gtp_side.cfg.c_puct, gtp_side.cfg.fpu_reduction, gtp_side.cfg.root) == (3.0, 0.0, "gumbel")
    assert gtp_side.visits == 6 and gtp_side.cfg.dirichlet_eps == 0.0        # no root noise in a rating
    h2h_side = BatchPlayer("mcts", str(ck), visits=6, device="cpu")
    assert (h2h_side.mcts_cfg.c_puct, h2h_side.mcts_cfg.root, h2h_side.mcts_cfg.gumbel_m) == (3.0, "gumbel", 4)
    assert h2h_side.visits == 6
    forced = BatchPlayer("mcts", str(ck), visits=6, device="cpu", root="puct")   # an explicit --root wins
    assert forced.mcts_cfg.root == "puct" and forced.mcts_cfg.c_puct == 3.0


def test_a_checkpoint_without_search_settings_gets_the_declared_defaults(tmp_path):
    ck = _checkpoint(tmp_path / "old.pt")
    assert MCTSPlayer(ck, visits=4, device="cpu").cfg == MCTSConfig(dirichlet_eps=0.0)
    assert BatchPlayer("mcts", str(ck), visits=4, device="cpu").mcts_cfg == MCTSConfig(dirichlet_eps=0.0)
