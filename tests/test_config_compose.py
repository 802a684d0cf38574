"""Hydra type-checks the job's config when it composes, and the overrides used everywhere still work.

conf/config.yaml extends `job_schema` and each learner group's YAML its group's schema
(experiments/config.py), so a value of the wrong type or an unknown key is refused by `compose`
itself, before `validate` or any training; and the job gets go_core/learn's own config classes.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import experiments.config  # noqa: F401  registers the schemas conf/ extends
from experiments.config import validate
from go_core.learn.mcts_config import MCTSConfig
from go_core.learn.selfplay import SelfPlayConfig
from go_core.learn.training import TrainConfig

CONF = Path(__file__).resolve().parents[1] / "conf"


def _compose(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose(config_name="config", overrides=list(overrides))


def test_the_overrides_nodes_use_compose_into_the_learners_classes():
    cfg = validate(_compose("mcts.c_puct=3.0", "train.lr=0.008", "selfplay.visits=24", "budget=small",
                            "board=7x7", "model=b2c32", "train.warm_start.random_value_games=10"))
    mcts, sp, train = (OmegaConf.to_object(cfg[g]) for g in ("mcts", "selfplay", "train"))
    assert isinstance(mcts, MCTSConfig) and isinstance(sp, SelfPlayConfig) and isinstance(train, TrainConfig)
    assert (mcts.c_puct, train.lr, sp.visits, train.warm_start.random_value_games) == (3.0, 0.008, 24, 10)
    assert (cfg.board.size, cfg.budget.name, cfg.model.blocks) == (7, "small", 2)
    # unchanged values are the declared defaults (the YAML repeats none of them)
    assert mcts.fpu_reduction == MCTSConfig().fpu_reduction and sp.tree_reuse is SelfPlayConfig().tree_reuse


def test_the_tiny_budget_sets_its_work_and_search_sizes():
    cfg = _compose("budget=tiny")
    assert (cfg.budget.max_games, cfg.selfplay.visits, cfg.train.batch_size) == (128, 16, 128)
    assert cfg.train.warm_start.random_value_games == 1000


@pytest.mark.parametrize("override, what", [
    ("mcts.c_puct=strong", "c_puct"),            # wrong type
    ("selfplay.visits=1.5", "visits"),           # a float for an int
    ("mcts.eval_visits=64", "eval_visits"),      # the dead key is gone: never read, so never settable
    ("train.lrate=0.1", "lrate"),                # a misspelt key
    ("board.size=big", "size"),                  # the referee's groups are typed too (through job_schema)
])
def test_compose_refuses_bad_values_and_unknown_keys(override, what):
    with pytest.raises(ConfigCompositionException) as e:
        _compose(override)
    assert what in str(e.value) + str(e.value.__cause__)


def test_research_run_flags_default_to_not_given_and_show_the_declared_default():
    from autoresearch.agent_config import AgentConfig
    from autoresearch.run_cli import CONFIG_FLAGS, apply_flags, parse_args
    a = parse_args(["a question"])
    for flag, *_ in CONFIG_FLAGS:
        assert getattr(a, flag.lstrip("-").replace("-", "_")) is None, flag
    assert apply_flags(AgentConfig(), a) == AgentConfig()      # no flag: the config's values stand
    a = parse_args(["q", "--workers", "3", "--job-timeout-s", "60", "--partition", "gpu", "--model", "m"])
    cfg = apply_flags(AgentConfig(), a)
    assert (cfg.workers, cfg.job.wall_clock_s, cfg.slurm.partition, cfg.anthropic.model) == (3, 60.0, "gpu", "m")


def test_research_run_help_is_the_fields_doc(capsys):
    from autoresearch.run_cli import parse_args
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "a node running longer is killed -> timeout (agent config job.wall_clock_s; default 1800.0)" in out
