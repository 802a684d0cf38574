"""Health checks (autoresearch/health.py): a patch that turns augmentation off while the config
says on is flagged by running the node's own train_step in a sandboxed worktree; non-finite
losses and weights are flagged from the files the run wrote."""
from __future__ import annotations

import difflib
import json
import math
import subprocess
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from autoresearch.health import (augment_on, augmentation_applied, health_text, losses_finite,
                                 weights_finite)

ROOT = Path(__file__).resolve().parents[1]
TRAINING = "go_core/learn/training.py"


@pytest.fixture(scope="module")
def learner_repo(tmp_path_factory):
    """A git repository holding this checkout's go_core/game and go_core/learn (committed)."""
    repo = tmp_path_factory.mktemp("learner")
    for rel in ("go_core/__init__.py", "go_core/game", "go_core/learn"):
        subprocess.run(f"git -C {ROOT} archive HEAD {rel} | tar -x -C {repo}", shell=True, check=True)
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "learner"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True)
    return repo


def no_augment_patch(repo: Path) -> str:
    old = (repo / TRAINING).read_text().splitlines(keepends=True)
    new = [line.replace("if cfg.augment:", "if cfg.augment and False:  # 'faster'") for line in old]
    assert new != old, "training.py no longer has `if cfg.augment:`: update this test"
    return "".join(difflib.unified_diff(old, new, f"a/{TRAINING}", f"b/{TRAINING}"))


@pytest.mark.parametrize("patched", [False, True])
def test_a_patch_that_turns_augmentation_off_while_the_config_says_on_is_flagged(learner_repo, tmp_path, patched):
    node = NS(id=7, overrides=["train.lr=0.01"], patch=no_augment_patch(learner_repo) if patched else None)
    flag = augmentation_applied(learner_repo, tmp_path / "ws", node, timeout_s=120)
    if patched:
        assert flag.ok is False and "augmentation is not applied" in flag.detail
    else:
        assert flag.ok is True, flag.detail
    # with the config saying off there is nothing to check
    assert augmentation_applied(learner_repo, tmp_path, NS(id=8, overrides=["train.augment=false"],
                                                           patch=None)).ok is None
    assert augment_on(["train.augment=true"]) and not augment_on(["train.augment=False"])


def test_non_finite_losses_and_weights_are_flagged(tmp_path):
    import torch
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 0, "loss": 1.0}) + "\n"
                                            + '{"step": 1, "loss": NaN}\n')
    bad = losses_finite(tmp_path)
    assert bad.ok is False and "loss" in bad.detail
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 0, "loss": 1.0}) + "\n")
    assert losses_finite(tmp_path).ok is True
    ckpt = tmp_path / "latest.pt"
    torch.save({"net": {"w": torch.tensor([1.0, math.nan])}}, ckpt)
    f = weights_finite(ckpt)
    assert f.ok is False and "net.w" in f.detail
    torch.save({"net": {"w": torch.ones(3)}}, ckpt)
    assert weights_finite(ckpt).ok is True
    node = NS(id=3, metrics={"health": {"suspect": True, "flags": [bad.to_json()]}})
    assert "#3 SUSPECT (losses_finite)" in health_text([node])
    assert health_text([NS(id=4, metrics={})]) == ""
