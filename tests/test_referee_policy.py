"""Red team: what a proposal may change. Patches only on the learner's side (an allow-list);
overrides only in the learner's config groups; a node's own Elo is never believed."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.launch import start_job
from tests.fakerepo import JOB_MODULE, make_fake_repo


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    return make_fake_repo(tmp_path / "repo")


def new_file_patch(path: str, text: str = "X = 1\n") -> str:
    lines = text.splitlines()
    return (f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
            f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{ln}\n" for ln in lines))


def run(repo: Path, tmp: Path, node: int, patch: str):
    return start_job(repo, node, [], patch, tmp / "ws/runs" / str(node), wall_clock_s=60,
                     mem_limit_mb=0, job_module=JOB_MODULE).wait()


@pytest.mark.parametrize("path, why", [
    ("sitecustomize.py", "run this file by its name"),
    ("go_core/learn/sitecustomize.py", "run this file by its name"),
    ("go_core/learn/evil.pth", "run this file by its name"),
    ("conftest.py", "run this file by its name"),
    ("go_core/learn/numpy.py", "shadow"),
    ("go_core/learn/json/__init__.py", "shadow"),
    ("go_core/arena/referee_helper.py", "outside the learner"),
    ("fakejob_helper.py", "outside the learner"),
    ("tests/test_x.py", "outside the learner"),
])
def test_patch_outside_the_learner_or_autorun_or_shadowing_is_refused(repo, tmp_path, path, why):
    res = run(repo, tmp_path, 3, new_file_patch(path, "import os\nos.environ['PWNED'] = '1'\n"))
    assert res.status == "refused", (res.status, res.error)
    assert why in res.error and path in res.error
    assert "node/3" not in subprocess.run(["git", "branch"], cwd=repo, capture_output=True,
                                          text=True).stdout


def test_symlink_and_binary_patches_are_refused(repo, tmp_path):
    link = ("diff --git a/go_core/learn/link.py b/go_core/learn/link.py\nnew file mode 120000\n"
            "--- /dev/null\n+++ b/go_core/learn/link.py\n@@ -0,0 +1 @@\n+../../fakejob.py\n"
            "\\ No newline at end of file\n")
    assert "symlink" in run(repo, tmp_path, 4, link).error
    binary = ("diff --git a/go_core/learn/w.bin b/go_core/learn/w.bin\nnew file mode 100644\n"
              "index 0000000..e69de29\nGIT binary patch\nliteral 3\nKcmZ?wbN~Pb1_1#9\n\n")
    assert "binary" in run(repo, tmp_path, 5, binary).error


def test_a_rename_out_of_the_referee_is_refused(repo, tmp_path):
    rename = ("diff --git a/go_core/game/board.py b/go_core/learn/board_copy.py\n"
              "similarity index 100%\nrename from go_core/game/board.py\n"
              "rename to go_core/learn/board_copy.py\n")
    res = run(repo, tmp_path, 6, rename)
    assert res.status == "refused" and "go_core/game/board.py" in res.error


def test_a_new_learner_module_is_allowed(repo, tmp_path):
    res = run(repo, tmp_path, 7, new_file_patch("go_core/learn/my_trick.py"))
    assert res.status == "ok", res.error


def test_the_training_job_and_its_run_state_stay_the_learners():
    """experiments/train.py was split in two (the job; training_run.py, the run's state and its
    iteration): a node may still change both, and nothing else of experiments/."""
    from autoresearch.patch_policy import path_error
    assert path_error("experiments/train.py", new=False) is None
    assert path_error("experiments/training_run.py", new=False) is None
    assert "outside the learner" in path_error("experiments/rate_checkpoint.py", new=False)
    assert "outside the learner" in path_error("experiments/stop.py", new=False)


@pytest.mark.parametrize("override", [
    "rating=smoke", "rating.reference=random", "+rating.games=2", "budget=tiny", "budget.wall_clock_s=5",
    "board=19x19", "seed=7", "device=cuda", "hydra.run.dir=/tmp/x", "+hydra.callbacks.x=y",
    "hydra/launcher=basic", "launcher=slurm", "~rating", "train.lr=0.1\x00", "train.lr=1\nseed=2",
    "model@rating=small", "train.lr=${rating.games}", "tracking=wandb",
])
def test_referee_overrides_are_refused_with_a_reason(override):
    from autoresearch.override_policy import validate_overrides
    errors = validate_overrides([override, "train.lr=0.01"])
    assert len(errors) == 1 and errors[0].startswith(repr(override)), errors


def test_learner_overrides_are_accepted():
    from autoresearch.override_policy import validate_overrides
    assert validate_overrides(["train.lr=0.01", "mcts.c_puct=2.5", "model=small",
                               "selfplay.games_per_iter=8", "+train.extra=1",
                               "tracking=disabled"]) == []


def test_loop_refuses_a_rating_override_proposal(tmp_path):
    """The loop (not only the proposer) refuses: nothing reaches the tree."""
    from autoresearch.agent_config import AgentConfig
    from autoresearch.digest import make_digest
    from autoresearch.loop import ResearchLoop
    from autoresearch.proposers.base import Proposal
    from experiment_tree.store import TreeStore

    class Recorder:
        def __init__(self):
            self.rejections = []

        def rejected(self, p, why):
            self.rejections.append(why)

        def accepted(self, p, nid):
            raise AssertionError("a rating override was accepted")

    repo = make_fake_repo(tmp_path / "repo")
    store = TreeStore(tmp_path / "tree.db")
    qid = store.add_question("q", {"runs": 4})
    store.add_node(qid, None, "baseline", "base", overrides=[], seed=0)
    rec = Recorder()
    loop = ResearchLoop(store, tmp_path, qid, rec, AgentConfig(), repo, say=lambda m: None,
                        report=False)
    p = Proposal(kind="config", hypothesis="an easier reference", overrides=["rating.reference=random"])
    assert loop.add_proposal(p, make_digest(store, qid)) is None
    assert "rating" in rec.rejections[0] and len(store.nodes(qid)) == 1


def test_a_jobs_own_elo_is_not_believed():
    from autoresearch.jobs.status import job_metrics
    summary = {"status": "ok", "metrics": {"elo": 5000.0, "elo_ci95": [4990, 5010],
                                           "winrate_vs_ref": 1.0, "winrate_ci95": [1, 1],
                                           "games_vs_ref": 10 ** 6, "Elo_bonus": 9,
                                           "value_loss": 0.5, "steps": 104,
                                           "policy_loss": float("nan"), "note": "trust me"}}
    assert job_metrics(summary) == {"value_loss": 0.5, "steps": 104}
    assert job_metrics({"metrics": ["elo", 5000]}) == {} and job_metrics(None) == {}
