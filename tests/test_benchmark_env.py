"""The benchmarks that start training jobs themselves give them the harness's environment defaults
(OpenMP threads wait passively, autoresearch/bwrap.ENV_DEFAULTS): a spinning job beside other work
ran 5x slower, and CI's tiny-budget acceptance run took 1264 s instead of about 150."""
from __future__ import annotations

import subprocess

import pytest


class _Started(Exception):
    pass


@pytest.mark.parametrize("module", ["benchmarks.train_strength", "benchmarks.learning_curve"])
def test_a_benchmarks_training_job_waits_passively_unless_told_otherwise(module, monkeypatch, tmp_path):
    import importlib
    bench = importlib.import_module(module)
    seen = []

    def run(cmd, *a, env=None, **k):
        seen.append(env)
        raise _Started

    monkeypatch.setattr(subprocess, "run", run)
    for preset, expected in ((None, "PASSIVE"), ("ACTIVE", "ACTIVE")):
        if preset is None:
            monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
        else:
            monkeypatch.setenv("OMP_WAIT_POLICY", preset)
        with pytest.raises(_Started):
            if module.endswith("train_strength"):
                bench.run_training(tmp_path / "run", [])
            else:
                bench.train(tmp_path / "run", [], tmp_path / "log.txt")
        assert seen[-1] is not None and seen[-1]["OMP_WAIT_POLICY"] == expected
