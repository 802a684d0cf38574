"""`python -m experiments.rate_checkpoint checkpoint=PATH`: the real entry point, in a subprocess."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from go_core.arena import engines

ROOT = Path(__file__).resolve().parents[1]


def run_job(tmp_path, *overrides, timeout=600):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "experiments.rate_checkpoint", f"hydra.run.dir={run_dir}",
           f"rating.cache_path={tmp_path / 'ladder.json'}", *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    return proc, run_dir


def tiny_checkpoint(path):
    from go_core.learn.net import NetConfig, PolicyValueNet, save_checkpoint
    net = PolicyValueNet(NetConfig(blocks=1, channels=8, gpool_every=0, policy_channels=4,
                                   value_channels=4, value_hidden=8))
    save_checkpoint(path, net, board_size=9)
    return path


@pytest.mark.gnugo
def test_rate_checkpoint_job_writes_summary_with_winrate_elo_and_games(tmp_path):
    try:
        engines.find_gnugo()
    except engines.EngineNotFound as e:
        pytest.skip(str(e))
    ckpt = tiny_checkpoint(tmp_path / "ckpt.pt")
    proc, run_dir = run_job(tmp_path, f"checkpoint={ckpt}", "rating=smoke")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "ok", (summary.get("error"), proc.stderr[-3000:])
    m = summary["metrics"]
    assert set(m) >= {"winrate_vs_ref", "winrate_ci95", "games_vs_ref", "elo", "elo_ci95"}
    assert summary["reference"] == "gnugo-L0" and m["games_vs_ref"] == 2
    assert m["winrate_ci95"][0] <= m["winrate_vs_ref"] <= m["winrate_ci95"][1]
    assert m["elo_ci95"][0] < m["elo"] < m["elo_ci95"][1]
    ev = summary["rating"]
    assert list(ev["rungs"]) == ["gnugo-L0"] and ev["games"] == 2
    assert len(list((run_dir / "games").glob("*.sgf"))) == 2
    assert (run_dir / "rating.json").exists() and (run_dir / "log.txt").exists()


def test_missing_checkpoint_is_recorded_as_a_crash_with_the_reason(tmp_path):
    proc, run_dir = run_job(tmp_path, f"checkpoint={tmp_path / 'nope.pt'}", "rating=smoke", timeout=120)
    assert proc.returncode != 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "crash"
    assert "does not exist" in summary["error"]
