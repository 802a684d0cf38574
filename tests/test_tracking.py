"""W&B mirroring: offline by default, files inside the run dir, never an account; run path on the node."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from experiments.tracking import (offline_runs, read_offline_run, resolve_mode, start_tracking)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def no_login(monkeypatch, tmp_path):
    """No W&B credentials anywhere: an empty HOME and netrc, no API key."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "home/.netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "home/.config/wandb"))
    (tmp_path / "home").mkdir()


def test_offline_run_files_hold_config_and_metrics(monkeypatch, tmp_path, no_login):
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_dir = tmp_path / "runs/7"
    cfg = OmegaConf.load(ROOT / "conf/tracking/default.yaml")
    tracker = start_tracking(cfg, run_dir, {"train": {"lr": 0.002}, "seed": 3})
    assert tracker.mode == "offline"
    for step in range(3):
        tracker.log({"step": step, "elo": 40.0 * step, "loss": {"policy": 2.0 / (step + 1)},
                     "winrate_ci95": [0.1, 0.3]}, step=step)
    tracker.finish()

    runs = offline_runs(run_dir)
    assert len(runs) == 1 and runs[0].is_relative_to(run_dir)     # W&B dir inside the run dir
    assert tracker.run_path == str(runs[0])
    data = read_offline_run(runs[0])
    assert data["config"]["train"] == {"lr": 0.002} and data["config"]["seed"] == 3
    assert [h["elo"] for h in data["history"]] == [0.0, 40.0, 80.0]
    assert [h["loss/policy"] for h in data["history"]] == pytest.approx([2.0, 1.0, 2 / 3])
    assert [h["_step"] for h in data["history"]] == [0, 1, 2]


def test_disabled_logs_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "disabled")    # the environment wins over the config
    tracker = start_tracking({"wandb": {"mode": "offline"}}, tmp_path, {"a": 1})
    tracker.log({"elo": 1.0}, step=0)
    tracker.finish()
    assert tracker.run_path is None and not tracker.active
    assert not (tmp_path / "wandb").exists()


def test_online_without_a_login_falls_back_to_offline(monkeypatch, no_login):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with pytest.warns(RuntimeWarning, match="no W&B login"):
        assert resolve_mode("online") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode("online") == "online"
    with pytest.raises(ValueError, match="must be one of"):
        resolve_mode("sometimes")


def test_a_broken_wandb_warns_and_the_run_goes_on(monkeypatch, tmp_path):
    import wandb
    monkeypatch.setenv("WANDB_MODE", "offline")

    def broken(**kwargs):
        raise RuntimeError("wandb-core did not start")
    monkeypatch.setattr(wandb, "init", broken)
    with pytest.warns(RuntimeWarning, match="W&B failed to start"):
        tracker = start_tracking(None, tmp_path, {})
    tracker.log({"elo": 1.0}, step=0)          # a no-op, not an error
    tracker.finish()
    assert tracker.run_path is None


def test_sweep_node_stores_the_offline_run_path(monkeypatch, tmp_path, no_login):
    from autoresearch.sweep import run_sweep
    from experiment_tree.workspace import Workspace
    from tests.sweep_helpers import make_fake_repo, write_sweep

    monkeypatch.setenv("WANDB_MODE", "offline")    # inherited by the trial's job
    sweep = write_sweep(tmp_path / "wb.yaml", """
        name: wandb_paths
        params: {fake.quality: {type: float, low: 0.5, high: 1.0}}
        pruner: none
        base_overrides: [fake.steps=3, fake.sleep=0.01, fake.wandb=true]
        job: {module: fake_train, wall_clock_s: 120}
    """)
    ws = Workspace(tmp_path / "ws")
    run_sweep(sweep, trials=1, workspace=ws.root, repo_root=make_fake_repo(tmp_path), poll_s=0.1)
    with ws.store() as store:
        (node,) = store.nodes()
    assert node.status == "ok", node.error
    assert node.wandb_path and Path(node.wandb_path).is_relative_to(Path(node.run_dir))
    history = read_offline_run(node.wandb_path)["history"]
    jsonl = [json.loads(x) for x in Path(node.run_dir, "metrics.jsonl").read_text().splitlines()]
    assert [h["elo"] for h in history] == pytest.approx([r["elo"] for r in jsonl])
