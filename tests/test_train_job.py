"""The training job end to end, as the harness runs it: a subprocess with Hydra overrides."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from experiments.rundir import read_metrics, read_progress, read_summary

ROOT = Path(__file__).resolve().parents[1]
MICRO = ["board=5x5", "model=b2c32", "budget.wall_clock_s=0", "budget.max_iterations=3",
         "selfplay.games_per_iteration=2", "selfplay.parallel_games=2", "selfplay.visits=4",
         "selfplay.cheap_visits=2", "selfplay.max_moves_factor=1.0", "train.batch_size=16",
         "train.max_steps_per_iteration=3", "train.warm_start.random_value_games=4",
         "train.warm_start.random_value_steps=1", "train.torch_threads=1", "++rating.at_end=false"]


def job(run_dir: Path, *overrides: str, wait: bool = True, env: dict | None = None):
    env = dict(os.environ, WANDB_MODE="disabled", OMP_NUM_THREADS="1", **(env or {}))
    cmd = [sys.executable, "-m", "experiments.train", *MICRO, *overrides, f"hydra.run.dir={run_dir}"]
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory) -> Path:
    """A micro job of 3 iterations, never interrupted."""
    run = tmp_path_factory.mktemp("straight") / "run"
    p = job(run)
    assert p.returncode == 0, p.stdout + p.stderr
    return run


def test_micro_job_writes_the_run_directory(straight_run):
    run = straight_run
    for name in (".hydra/config.yaml", "log.txt", "metrics.jsonl", "checkpoints/latest.pt", "checkpoints/best.pt"):
        assert (run / name).exists(), name
    assert list((run / "games").glob("selfplay_*.sgf"))
    metrics = read_metrics(run)
    assert [m["iteration"] for m in metrics] == [1, 2, 3]
    for m in metrics:
        for key in ("step", "policy_loss", "value_loss", "loss", "games", "samples", "sims_per_s", "wall_s", "cpu_s"):
            assert key in m, key
        assert m["games"] == 2 and m["samples"] > 0
    s = read_summary(run)
    assert s["status"] == "ok", s
    assert s["metrics"]["iterations"] == 3 and s["metrics"]["games"] == 6
    assert "iteration budget" in s["budget_note"]
    assert set(s["compute"]) >= {"wall_s", "cpu_s", "gpu_s", "device"}
    assert s["checkpoint"].endswith("best.pt") and s["warm_start"]["random_value"]["games"] == 4
    ckpt = torch.load(run / "checkpoints/latest.pt", weights_only=False)
    assert ckpt["iteration"] == 3 and ckpt["board_size"] == 5 and ckpt["replay"]["data"] is not None


def test_the_job_saves_a_self_play_sample_the_referees_checks_accept(straight_run):
    """The run-directory contract's selfplay_sample.jsonl (experiments/rundir.py), written by the
    learner, replayed and accepted by the referee's health checks (autoresearch/health_sample.py)."""
    from autoresearch import health_sample as hs
    games, why = hs.read_sample(straight_run)
    assert why is None and len(games) == 6 and {g["size"] for g in games} == {5}
    for flag in (hs.value_targets(straight_run), hs.policy_targets(straight_run),
                 hs.komi_colour(straight_run, games[0]["komi"], (0.0, 1.0), 0.01)):
        assert flag.ok is True, flag


@pytest.mark.parametrize("override, expected", [
    ("board=8x8", "9x9"),                      # unknown group option: Hydra names the choices
    ("train.lrr=0.1", "lrr"),                  # misspelt field
    ("train.lr=fast", "train.lr"),             # wrong type
    ("train.schedule=linear", "cosine"),       # not one of the allowed values
])
def test_bad_overrides_are_refused_before_anything_runs(tmp_path, override, expected):
    run = tmp_path / "run"
    p = job(run, override)
    assert p.returncode != 0
    assert expected in p.stdout + p.stderr + ((run / "summary.json").read_text() if (run / "summary.json").exists() else "")
    assert not (run / "checkpoints").exists()
    s = read_summary(run)
    assert s is None or s["status"] == "invalid"


def test_a_crash_is_recorded_with_its_traceback(tmp_path):
    run = tmp_path / "run"
    p = job(run, "train.warm_start.init_checkpoint=/nonexistent/net.pt")
    assert p.returncode == 1
    s = read_summary(run)
    assert s["status"] == "crash"
    assert "Traceback" in s["error"] and "nonexistent/net.pt" in s["error"]


def test_killed_run_resumes_exactly_where_it_was(tmp_path, straight_run):
    straight, killed = straight_run, tmp_path / "killed"
    proc = job(killed, wait=False)
    latest = killed / "checkpoints/latest.pt"
    deadline = time.time() + 300
    while not latest.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert read_summary(killed) is None, "the job finished before it could be killed"
    done = torch.load(latest, weights_only=False)["iteration"]
    assert 1 <= done < 3
    p = job(killed)
    assert p.returncode == 0, p.stdout + p.stderr
    s = read_summary(killed)
    assert s["status"] == "ok" and s["resumed_from_iteration"] == done
    assert [m["iteration"] for m in read_metrics(killed)] == [1, 2, 3]
    # the same net, bit for bit, as the run that was never interrupted
    a = torch.load(straight / "checkpoints/latest.pt", weights_only=False)
    b = torch.load(latest, weights_only=False)
    assert a["step"] == b["step"] and a["games"] == b["games"]
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert json.dumps(read_metrics(straight)[-1]["value_loss"]) == json.dumps(read_metrics(killed)[-1]["value_loss"])


def test_sigterm_stops_the_job_as_a_timeout(tmp_path):
    run = tmp_path / "run"
    proc = job(run, "budget.max_iterations=50", wait=False)
    deadline = time.time() + 300
    while not (run / "checkpoints/latest.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 124
    s = read_summary(run)
    assert s["status"] == "timeout" and "SIGTERM" in s["error"]


@pytest.mark.slow
@pytest.mark.timeout(3600)   # training (< 10 min) plus ~150 rating games
def test_tiny_budget_acceptance(tmp_path):
    """Issue 3: `experiments.train board=9x9 budget=tiny` ends ok; its net with MCTS beats random in
    >= 95 of 100 games, and MCTS at 64 visits beats the raw policy. (Its "under 10 minutes" is a
    speed target: the benchmark reports it in `targets`, the test does not time the machine.)"""
    p = subprocess.run([sys.executable, "benchmarks/train_strength.py", "--train", "--run-dir", str(tmp_path / "run")],
                       cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    print(json.dumps(out))  # the measured numbers, in the pytest log (-rA / -s)
    assert out["training"]["status"] == "ok", out["training"]
    assert out["mcts_vs_random"]["wins"] >= 95
    assert out["mcts_vs_raw_policy"]["winrate_ci95"][0] > 0.5
    assert out["targets"]["mcts_beats_random_95_of_100"] and out["targets"]["mcts_beats_raw_policy"]
    assert isinstance(out["targets"]["train_tiny_under_600_s"], bool)


def test_the_budget_is_work_and_the_last_iteration_is_cut_to_the_game_budget():
    from types import SimpleNamespace
    from omegaconf import OmegaConf
    from experiments.training_run import budget_totals, plan_iteration, steps_for_iteration
    cfg = OmegaConf.create({"budget": {"wall_clock_s": 150, "max_iterations": 0, "max_games": 80, "max_steps": 0},
                            "selfplay": {"games_per_iteration": 32},
                            "train": {"steps_per_iteration": 0, "sample_reuse": 2.0, "batch_size": 128,
                                      "max_steps_per_iteration": 40}})
    at = lambda it, games, step=0: SimpleNamespace(iteration=it, games=games, step=step)  # noqa: E731
    assert plan_iteration(cfg, at(0, 0)) == (32, None)
    assert plan_iteration(cfg, at(2, 64)) == (16, None)                    # cut to end at exactly 80 games
    games, note = plan_iteration(cfg, at(3, 80))
    assert games == 0 and note.startswith("game budget reached (80 games")
    # steps derived from the samples (as the train group says), whatever the clock
    assert steps_for_iteration(cfg, 0, 32, 1280) == 20 and steps_for_iteration(cfg, 0, 32, 9999) == 40
    # a step budget with a game budget: spread in proportion to the games, exactly max_steps at the end
    cfg.budget.max_steps = 100
    done = [steps_for_iteration(cfg, 0, 32, 1)]
    done.append(steps_for_iteration(cfg, sum(done), 64, 1))
    done.append(steps_for_iteration(cfg, sum(done), 80, 1))
    assert done == [40, 40, 20] and budget_totals(cfg) == (80, 100)
    cfg.budget.max_games = 0                                                # steps alone: capped, then stop
    assert steps_for_iteration(cfg, 90, 32, 9999) == 10
    assert plan_iteration(cfg, at(3, 96, 100))[1].startswith("step budget reached (100")
    cfg.budget.max_iterations = 1
    assert plan_iteration(cfg, at(1, 32))[1] == "iteration budget reached (1 iterations)"


# A very busy machine, as the job's clock sees it: every time.time() call is 1000 s later than the
# one before (the safety limit is armed on the real clock, so the job is not stopped by it; the
# old wall-clock budget, which read time.time(), stopped this job after 2 of its 5 games).
SLOW_CLOCK = """
import time
_real, _calls = time.time, [0]
def _slow():
    _calls[0] += 1
    return _real() + 1000.0 * _calls[0]
time.time = _slow
"""


def test_the_same_seed_and_budget_do_the_same_work_on_a_slowed_machine(tmp_path, straight_run):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_CLOCK)
    budget = ["budget.max_iterations=0", "budget.max_games=5", "budget.wall_clock_s=3600"]   # 5 = 2 + 2 + 1
    runs = {}
    for name, env in (("plain", {}), ("slowed", {"PYTHONPATH": f"{site}:{ROOT}"})):
        run = tmp_path / name
        p = job(run, *budget, env=env)
        assert p.returncode == 0, p.stdout + p.stderr
        runs[name] = run
    s = {k: read_summary(r) for k, r in runs.items()}
    assert s["slowed"]["compute"]["wall_s"] > 3600        # the slowed job saw its clock pass the limit
    for k in ("games", "steps", "iterations", "samples"):
        assert s["plain"]["metrics"][k] == s["slowed"]["metrics"][k], k
    assert s["plain"]["metrics"]["games"] == 5 and s["plain"]["metrics"]["iterations"] == 3
    assert [m["games"] for m in read_metrics(runs["slowed"])] == [2, 2, 1]
    a, b = (torch.load(r / "checkpoints/latest.pt", weights_only=False) for r in runs.values())
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k


def test_the_wall_clock_safety_limit_ends_the_job_as_a_timeout(tmp_path):
    run = tmp_path / "run"
    p = job(run, "budget.max_iterations=1000", "budget.wall_clock_s=1")
    assert p.returncode == 124, p.stdout + p.stderr
    s = read_summary(run)
    assert s["status"] == "timeout"
    assert "wall-clock safety limit of budget.wall_clock_s=1 s" in s["error"] and "raise budget.wall_clock_s" in s["error"]
    assert s["metrics"]["games"] < 2000    # stopped by the limit, not by the budget of work
    assert read_progress(run)["phase"] == "done" and read_progress(run)["status"] == "timeout"


def test_a_budget_without_work_is_refused(tmp_path):
    run = tmp_path / "run"
    p = job(run, "budget.max_iterations=0", "budget.max_games=0", "budget.max_steps=0")
    assert p.returncode == 2
    assert "sets no amount of work" in read_summary(run)["error"]


def test_progress_json_ends_done_with_the_counts_of_the_summary(straight_run):
    prog, s = read_progress(straight_run), read_summary(straight_run)
    assert prog["phase"] == "done" and prog["status"] == "ok"
    assert prog["games"] == s["metrics"]["games"] == prog["games_budget"] == 6
    assert prog["steps_done"] == s["metrics"]["steps"] == 9 and prog["iteration"] == 3
    assert prog["games_done"] == prog["games_total"] == 2 and prog["sims_per_s"] > 0
    assert prog["elapsed_s"] > 0 and prog["eta_s"] == 0.0 and prog["t"] >= s["finished_at"] - 60


def test_eval_at_end_false_gives_an_ok_summary_with_work_and_checkpoint_but_no_elo(straight_run):
    s = read_summary(straight_run)
    assert s["status"] == "ok" and Path(s["checkpoint"]).exists()
    assert s["metrics"]["games"] == 6 and s["metrics"]["steps"] == 9
    assert not any(k.startswith("elo") or k.startswith("winrate") for k in s["metrics"])


@pytest.fixture(scope="module")
def shared_start(tmp_path_factory) -> Path:
    """A question's starting point: the warm start alone."""
    run = tmp_path_factory.mktemp("start") / "run"
    p = job(run, "train.warm_start.only=true")
    assert p.returncode == 0, p.stdout + p.stderr
    return run


def test_warm_start_only_saves_the_start_and_plays_nothing(shared_start):
    s = read_summary(shared_start)
    assert s["status"] == "ok" and "warm start only" in s["budget_note"]
    assert s["metrics"]["games"] == 0 and s["metrics"]["steps"] == 0 and read_metrics(shared_start) == []
    assert s["warm_start"]["random_value"]["games"] == 4
    assert (shared_start / "checkpoints/best.pt").exists() and (shared_start / "checkpoints/latest.pt").exists()
    assert not list((shared_start / "games").glob("*.sgf"))
    assert read_progress(shared_start)["phase"] == "done"


def test_nodes_from_a_shared_start_skip_the_warm_start_and_share_their_first_games(tmp_path, shared_start):
    start = f"train.warm_start.init_checkpoint={shared_start / 'checkpoints/best.pt'}"
    one = ["budget.max_iterations=1", "selfplay.sgf_games_per_iteration=2"]
    parent, child = tmp_path / "parent", tmp_path / "child"
    for run, extra in ((parent, []), (child, ["train.lr=0.01"])):
        p = job(run, start, *one, *extra)
        assert p.returncode == 0, p.stdout + p.stderr
    for run in (parent, child):
        ws = read_summary(run)["warm_start"]
        assert ws["init_checkpoint"].endswith("best.pt") and "random_value" not in ws   # not redone
    sgf = lambda run: [f.read_text() for f in sorted((run / "games").glob("selfplay_it0001_*.sgf"))]  # noqa: E731
    games = sgf(parent)
    from go_core.game.sgf import read_sgf
    moves = [read_sgf(f).moves for f in sorted((parent / "games").glob("selfplay_it0001_*.sgf"))]
    assert len(games) == 2 and moves[0] != moves[1]    # the games are random (equal below means something)
    assert sgf(child) == games                # same start, same seed: the same first games (the lr differs)


def test_pretraining_on_top_of_a_start_checkpoint_when_asked(tmp_path, shared_start):
    start = f"train.warm_start.init_checkpoint={shared_start / 'checkpoints/best.pt'}"
    p = job(tmp_path / "on_top", start, "budget.max_iterations=1", "train.warm_start.pretrain_after_init=true")
    assert p.returncode == 0, p.stdout + p.stderr
    assert read_summary(tmp_path / "on_top")["warm_start"]["random_value"]["games"] == 4


@pytest.mark.parametrize("overrides, files, needs_own", [
    (["train.lr=0.01", "mcts.c_puct=2"], [], False),
    (["train.warm_start.random_value_games=10"], [], True),
    (["model=b2c32"], [], True),
    (["++model.blocks=4"], [], True),
    (["board.komi=6.5"], [], True),
    (["train.lr=0.01"], ["go_core/learn/mcts.py"], False),
    ([], ["go_core/learn/features.py"], True),
])
def test_which_changes_cannot_share_the_questions_start(overrides, files, needs_own):
    from experiments.config import concerns_warm_start
    assert concerns_warm_start(overrides, files) is needs_own
