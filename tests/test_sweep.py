"""Optuna sweeps whose trials are tree nodes: workers share one study, pruning kills hopeless runs."""
from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from autoresearch.search_space import (SweepSpecError, format_value, load_sweep,
                                       suggest_overrides)
from autoresearch.sweep import main, run_sweep, split_trials
from autoresearch.sweep_storage import open_study
from autoresearch.sweep_trial import MetricsTail
from experiment_tree.workspace import Workspace
from tests.sweep_helpers import make_fake_repo, write_sweep

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def fake_repo(tmp_path):
    return make_fake_repo(tmp_path)


def check_study_matches_tree(storage: str, spec_path: Path, ws: Workspace) -> tuple[list, list]:
    spec = load_sweep(spec_path)
    trials = open_study(spec, storage, create=False).get_trials(deepcopy=False)
    with ws.store() as store:
        nodes = [n for n in store.nodes() if n.kind == "sweep-trial"]
    node_ids = [t.user_attrs.get("node_id") for t in trials]
    assert None not in node_ids, "a trial has no node"
    assert sorted(node_ids) == sorted(n.id for n in nodes), "study and tree disagree"
    assert len(set(node_ids)) == len(node_ids), "a node serves two trials"
    by_id = {n.id: n for n in nodes}
    for t in trials:
        node = by_id[t.user_attrs["node_id"]]
        expected = {"COMPLETE": ("ok",), "PRUNED": ("pruned",),
                    "FAIL": ("crash", "timeout", "invalid", "refused")}[t.state.name]
        assert node.status in expected, (t.number, t.state, node.status, node.error)
        assert node.run_dir and Path(node.run_dir, "summary.json").exists()
        if t.state.name == "COMPLETE":
            assert node.metrics["elo"] == pytest.approx(t.values[0])
    return trials, nodes


def test_two_workers_share_one_study_each_trial_once(tmp_path, fake_repo):
    sweep = write_sweep(tmp_path / "two.yaml", """
        name: two_workers
        objective: elo
        params:
          fake.quality: {type: float, low: 0.1, high: 2.0}
          fake.crash: {type: categorical, choices: [false, true]}
        enqueue: [{fake.quality: 1.0, fake.crash: true}]   # at least one failure, told as FAIL
        pruner: none
        sampler: {type: random, seed: 1}
        base_overrides: [fake.steps=3, fake.sleep=0.02]
        job: {module: fake_train, wall_clock_s: 60}
    """)
    ws = Workspace(tmp_path / "ws")
    out = run_sweep(sweep, trials=6, workers=2, workspace=ws.root, repo_root=fake_repo, poll_s=0.1)
    assert out["worker_exit_codes"] == [0, 0]
    assert out["storage"] == str(ws.root / "optuna-journal.log")
    trials, nodes = check_study_matches_tree(out["storage"], sweep, ws)
    assert len(trials) == 6 and len(nodes) == 6
    states = [t.state.name for t in trials]
    assert "FAIL" in states and "COMPLETE" in states
    qualities = [t.params["fake.quality"] for t in trials]
    assert len(set(qualities)) == len(qualities), "two workers sampled the same points"
    crashed = [n for n in nodes if n.status == "crash"]
    assert crashed and all("fake training diverged" in (n.error or "") + (n.log_tail or "")
                           for n in crashed)
    # both workers ran trials: the journal was shared, not two private studies
    with ws.store() as store:
        assert len(store.questions()) == 1
        assert all(n.question_id == out["question_id"] for n in nodes)
    # a second invocation continues the same study
    out2 = run_sweep(sweep, trials=1, workers=1, workspace=ws.root, repo_root=fake_repo, poll_s=0.1)
    trials, nodes = check_study_matches_tree(out2["storage"], sweep, ws)
    assert len(trials) == 7 and len(nodes) == 7


def test_hopeless_trial_is_pruned_and_killed(tmp_path, fake_repo):
    sweep = write_sweep(tmp_path / "prune.yaml", """
        name: prune_hopeless
        objective: elo
        intermediate: elo
        params:
          fake.quality: {type: float, low: -5.0, high: 2.0}
        enqueue: [{fake.quality: 1.0}, {fake.quality: 1.2}, {fake.quality: -5.0}]
        pruner: {type: median, n_startup_trials: 2, n_warmup_steps: 0}
        sampler: {type: random, seed: 0}
        base_overrides: [fake.steps=30, fake.sleep=0.1]
        job: {module: fake_train, wall_clock_s: 60}
    """)
    ws = Workspace(tmp_path / "ws")
    out = run_sweep(sweep, trials=3, workers=1, workspace=ws.root, repo_root=fake_repo, poll_s=0.05)
    trials, nodes = check_study_matches_tree(out["storage"], sweep, ws)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    hopeless = next(n for n in nodes if n.status == "pruned")
    assert "pruned by the median pruner" in hopeless.notes
    assert hopeless.metrics["elo"] < 0
    # it was killed early: far fewer than its 30 iterations were written, and no ok summary
    lines = Path(hopeless.run_dir, "metrics.jsonl").read_text().splitlines()
    assert len(lines) < 15
    assert json.loads(Path(hopeless.run_dir, "summary.json").read_text())["status"] != "ok"
    assert trials[2].intermediate_values and min(trials[2].intermediate_values.values()) < 0


def test_intermediate_elo_is_reported_at_its_iteration(tmp_path, fake_repo):
    """metrics.jsonl lines as experiments.train writes them with rating.every_iters=2: `elo` on
    every second line only; the trial gets one intermediate value per line with Elo, at its
    iteration (not the optimizer step), and lines without Elo are skipped."""
    sweep = write_sweep(tmp_path / "every.yaml", """
        name: every_other
        objective: elo
        intermediate: elo
        params: {fake.quality: {type: float, low: 1.0, high: 1.0}}
        pruner: {type: median, n_startup_trials: 5}
        base_overrides: [fake.steps=6, fake.sleep=0.01, fake.elo_every=2]
        job: {module: fake_train, wall_clock_s: 60}
    """)
    out = run_sweep(sweep, trials=1, workspace=tmp_path / "ws", repo_root=fake_repo, poll_s=0.05)
    (trial,) = open_study(load_sweep(sweep), out["storage"], create=False).trials
    assert trial.state.name == "COMPLETE"
    assert trial.intermediate_values == {2: 200.0, 4: 400.0, 6: 600.0}


def test_cli_runs_a_sweep_with_an_sqlite_url(tmp_path, fake_repo, capsys):
    sweep = write_sweep(tmp_path / "cli.yaml", """
        name: cli_sqlite
        objective: [elo, compute]
        directions: [maximize, minimize]
        params:
          fake.quality: {type: float, low: 0.1, high: 1.0}
        base_overrides: [fake.steps=2, fake.sleep=0.01]
        job: {module: fake_train}
        trials: 2
    """)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    rc = main([str(sweep), "--workspace", str(tmp_path / "ws"), "--storage", url,
               "--repo", str(fake_repo)])
    assert rc == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.index("{"):])
    assert summary["states"] == {"COMPLETE": 2} and summary["storage"] == url
    assert len(summary["best"]) >= 1           # the Pareto front of (elo, compute)
    study = optuna.load_study(study_name="cli_sqlite", storage=url)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert all(len(t.values) == 2 and t.values[1] >= 0 for t in study.trials)


def test_bad_sweep_files_say_what_is_wrong(tmp_path):
    bad = write_sweep(tmp_path / "bad.yaml", """
        name: bad
        params:
          train.lr: {type: float, low: 0.1}
    """)
    with pytest.raises(SweepSpecError, match="needs `low` and `high`"):
        load_sweep(bad)
    multi = write_sweep(tmp_path / "multi.yaml", """
        objective: [elo, compute]
        params: {train.lr: {type: log, low: 1e-4, high: 1e-2}}
        pruner: median
    """)
    with pytest.raises(SweepSpecError, match="cannot prune multi-objective"):
        load_sweep(multi)
    with pytest.raises(SweepSpecError, match="not found"):
        load_sweep(tmp_path / "missing.yaml")
    assert main([str(bad)]) == 2


def job_config_complete() -> bool:
    """conf/config.yaml composes only once every group's default option exists."""
    import yaml
    defaults = yaml.safe_load((ROOT / "conf/config.yaml").read_text())["defaults"]
    groups = [d for d in defaults if isinstance(d, dict)]
    return (ROOT / "experiments/config.py").exists() and all(
        (ROOT / "conf" / g / f"{opt}.yaml").exists() for d in groups for g, opt in d.items())


def test_shipped_sweeps_give_hydra_overrides_of_the_job_config():
    from hydra import compose, initialize_config_dir
    for name in ("agent_default", "lr_cpuct", "elo_vs_compute"):
        spec = load_sweep(ROOT / "conf/sweep" / f"{name}.yaml")
        study = optuna.create_study(directions=spec.directions)
        overrides = suggest_overrides(study.ask(), spec)
        assert len(overrides) == len(spec.params) + len(spec.base_overrides)
        if job_config_complete():
            from experiments.config import validate
            with initialize_config_dir(str(ROOT / "conf"), version_base=None):
                cfg = compose("config", overrides=overrides)   # unknown keys would raise here
            validate(cfg)
    assert load_sweep(ROOT / "conf/sweep/elo_vs_compute.yaml").directions == ["maximize", "minimize"]


def test_helpers():
    assert split_trials(5, 2) == [3, 2] and split_trials(1, 4) == [1] and split_trials(0, 2) == []
    assert format_value(1e-05) == "1e-05" and format_value(True) == "true"
    assert format_value("a b") == "'a b'" and format_value("cosine") == "cosine"


def test_metrics_tail_waits_for_complete_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert tail.read_new() == []
    path.write_text('{"step": 0, "elo": 1}\n{"step": 1, "el')
    assert tail.read_new() == [(0, {"step": 0, "elo": 1})]
    with open(path, "a") as f:
        f.write('o": 2}\n')
    assert tail.read_new() == [(1, {"step": 1, "elo": 2})]


def test_sigterm_kills_running_trials_and_fails_them(tmp_path, fake_repo):
    import os
    import signal
    import subprocess
    import sys
    import time

    sweep = write_sweep(tmp_path / "long.yaml", """
        name: interrupted
        params: {fake.quality: {type: float, low: 0.5, high: 1.0}}
        pruner: none
        base_overrides: [fake.steps=600, fake.sleep=0.1]
        job: {module: fake_train, wall_clock_s: 600}
    """)
    ws = Workspace(tmp_path / "ws")
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch.sweep", str(sweep), "--trials", "4",
                             "--workers", "2", "--workspace", str(ws.root), "--repo", str(fake_repo)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    pids: list[int] = []
    deadline = time.time() + 120
    while time.time() < deadline and len(pids) < 2:
        time.sleep(0.5)
        pid_files = list(ws.runs_dir.glob("*/job.pid")) if ws.runs_dir.exists() else []
        pids = [int(p.read_text().split()[0]) for p in pid_files if p.read_text().strip()]
    assert len(pids) == 2, "two trials never started"
    os.kill(proc.pid, signal.SIGTERM)
    out = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 1, out

    for pid in pids:   # the jobs (own sessions) were killed, not orphaned
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    spec = load_sweep(sweep)
    trials = open_study(spec, str(ws.root / "optuna-journal.log"), create=False).trials
    with ws.store() as store:
        nodes = store.nodes()
    assert [t.state.name for t in trials] == ["FAIL", "FAIL"]
    assert sorted(n.status for n in nodes) == ["interrupted", "interrupted"]


MICRO_JOB = ["board=5x5", "model=b2c32", "budget.wall_clock_s=0", "budget.max_iterations=2",
             "selfplay.games_per_iteration=2", "selfplay.parallel_games=2", "selfplay.visits=4",
             "selfplay.cheap_visits=2", "selfplay.max_moves_factor=1.0", "train.batch_size=16",
             "train.max_steps_per_iteration=3", "train.torch_threads=1", "rating=smoke"]


def _need_gnugo() -> None:
    """The smoke ladder of the real training job has a GNU Go rung."""
    from go_core.arena import engines
    try:
        engines.find_gnugo()
    except engines.EngineNotFound as e:
        pytest.skip(f"the smoke ladder needs GNU Go: {e}")


@pytest.mark.slow
@pytest.mark.gnugo
def test_sweep_of_the_real_training_job(tmp_path, monkeypatch):
    """`research sweep` on experiments.train (micro budget, smoke ladder): Elo from the run's
    summary is the trial's value, and the W&B offline run is on the node."""
    from experiments.tracking import read_offline_run

    _need_gnugo()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    sweep = write_sweep(tmp_path / "micro.yaml", f"""
        name: micro_real
        params:
          train.lr: {{type: float, low: 1.0e-3, high: 1.0e-2, log: true}}
          mcts.c_puct: {{type: float, low: 1.0, high: 2.0}}
        pruner: none
        base_overrides: {json.dumps(MICRO_JOB)}
        job: {{module: experiments.train, wall_clock_s: 900}}
    """)
    ws = Workspace(tmp_path / "ws")
    try:
        out = run_sweep(sweep, trials=1, workers=1, workspace=ws.root, repo_root=ROOT)
    finally:   # the node's branch lives in this repository: remove it (the prefix is ours alone)
        import subprocess
        from autoresearch.sweep_trial import branch_prefix
        prefix = branch_prefix(load_sweep(sweep), ws.root)
        refs = subprocess.run(["git", "branch", "--list", prefix + "*", "--format=%(refname:short)"],
                              cwd=ROOT, capture_output=True, text=True).stdout.split()
        for ref in refs:
            subprocess.run(["git", "branch", "-D", ref], cwd=ROOT, capture_output=True)
    trials, nodes = check_study_matches_tree(out["storage"], sweep, ws)
    assert [t.state.name for t in trials] == ["COMPLETE"], nodes[0].error
    node = nodes[0]
    assert isinstance(node.metrics["elo"], float)
    assert any(o.startswith("train.lr=") for o in node.overrides)
    assert node.wandb_path and read_offline_run(node.wandb_path)["history"]


@pytest.mark.slow
@pytest.mark.gnugo
def test_real_training_job_reports_elo_per_iteration(tmp_path, monkeypatch):
    """With rating.every_iters=1 each iteration of experiments.train writes a quick Elo, which the
    sweep reports to the pruner at that iteration."""
    import subprocess

    _need_gnugo()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    job = [o for o in MICRO_JOB if not o.startswith("rating=")]
    sweep = write_sweep(tmp_path / "per_iter.yaml", f"""
        name: per_iteration_elo
        intermediate: elo
        params: {{train.lr: {{type: float, low: 1.0e-3, high: 1.0e-2, log: true}}}}
        pruner: {{type: median, n_startup_trials: 5}}
        base_overrides: {json.dumps(job + ["rating=smoke", "rating.every_iters=1", "++rating.at_end=false",
                                          "train.warm_start.random_value_games=4"])}
        job: {{module: experiments.train, wall_clock_s: 900}}
    """)
    ws = Workspace(tmp_path / "ws")
    try:
        out = run_sweep(sweep, trials=1, workers=1, workspace=ws.root, repo_root=ROOT)
    finally:
        from autoresearch.sweep_trial import branch_prefix
        prefix = branch_prefix(load_sweep(sweep), ws.root)
        refs = subprocess.run(["git", "branch", "--list", prefix + "*", "--format=%(refname:short)"],
                              cwd=ROOT, capture_output=True, text=True).stdout.split()
        for ref in refs:
            subprocess.run(["git", "branch", "-D", ref], cwd=ROOT, capture_output=True)
    (trial,) = open_study(load_sweep(sweep), out["storage"], create=False).trials
    with ws.store() as store:
        (node,) = store.nodes()
    lines = [json.loads(x) for x in Path(node.run_dir, "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in lines] == [1, 2]
    assert all("elo" in m and m["elo_games"] == 2 for m in lines), lines
    assert sorted(trial.intermediate_values) == [1, 2]
    assert trial.intermediate_values[2] == pytest.approx(lines[1]["elo"])
