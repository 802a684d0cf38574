"""`research sweep --launcher`: trials go through jobs.start, the loop's one launcher.

Here through submitit's LocalExecutor (real subprocesses, no cluster needed); the same sweep on a
real SLURM cluster is tests/test_slurm_real.py::test_a_sweep_whose_trials_are_slurm_jobs_sharing_one_study.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("submitit", reason="submitit missing: pip install -e '.[cluster]'")

from autoresearch import sweep  # noqa: E402
from autoresearch.jobs.spec import RECORD_NAME  # noqa: E402
from tests.sweep_helpers import make_fake_repo, write_sweep  # noqa: E402


def test_sweep_trials_as_submitit_jobs_from_the_cli(tmp_path, capsys):
    spec = write_sweep(tmp_path / "s.yaml", """
        name: launcher_sweep
        objective: elo
        params:
          fake.quality: {type: float, low: 0.1, high: 2.0}
        pruner: none
        sampler: {type: random, seed: 0}
        base_overrides: [fake.steps=2, fake.sleep=0.01]
        job: {module: fake_train, wall_clock_s: 60}
    """)
    agent = tmp_path / "agent.yaml"
    agent.write_text("slurm:\n  poll_s: 0\n  rc_grace_s: 0\n")
    ws = tmp_path / "ws"
    rc = sweep.main([str(spec), "--trials", "2", "--workspace", str(ws),
                     "--repo", str(make_fake_repo(tmp_path)), "--launcher", "submitit-local",
                     "--agent-config", str(agent)])
    out = capsys.readouterr().out
    assert rc == 0, out
    summary = json.loads(out[out.index("{"):])
    assert summary["states"] == {"COMPLETE": 2}
    records = sorted((ws / "runs").glob(f"*/{RECORD_NAME}"))
    assert len(records) == 2, "each trial was submitted through submitit"
    for path in records:
        rec = json.loads(path.read_text())
        assert rec["cluster"] == "local" and rec["branch"].startswith("sweep/launcher_sweep-")
        assert json.loads((path.parent / "summary.json").read_text())["status"] == "ok"
        assert not Path(rec["worktree"]).exists()


def test_local_is_the_default_launcher_of_a_sweep():
    args = sweep.build_parser().parse_args(["x.yaml"])
    assert args.launcher == "local" and sweep.WorkerOptions("x", "s", "w", 1, 1, "r").launcher == "local"
