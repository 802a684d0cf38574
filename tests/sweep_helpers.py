"""A fake training job and a throw-away git repo for the sweep tests.

The fake job speaks the run-directory contract (`metrics.jsonl` per iteration, `summary.json`
last) in a few hundred milliseconds, so sweep mechanics are tested without self-play:
`python -m fake_train fake.quality=Q fake.steps=N fake.sleep=S fake.crash=true|false
hydra.run.dir=D` writes Elo = 100 * Q * (step + 1) per step; `fake.crash=true` dies at step 1;
`fake.wandb=true` mirrors the metrics with experiments.tracking (W&B offline). Like the real
job's lines, each has `iteration` (1, 2, ...) and an optimizer `step` count that is not it (10 per
iteration); `fake.elo_every=K` puts `elo` only on every K-th iteration's line, as the real job
does with rating.every_iters=K.
"""
from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]

FAKE_TRAIN = textwrap.dedent('''
    import json, os, sys, time

    args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
    run_dir = args.pop("hydra.run.dir")
    os.makedirs(run_dir, exist_ok=True)
    quality = float(args.get("fake.quality", 1.0))
    steps = int(args.get("fake.steps", 3))
    sleep = float(args.get("fake.sleep", 0.05))
    crash = args.get("fake.crash", "false") == "true"
    elo_every = int(args.get("fake.elo_every", 1))
    tracker = None
    if args.get("fake.wandb", "false") == "true":
        from experiments.tracking import start_tracking
        tracker = start_tracking({"wandb": {"mode": "offline", "project": "tengen-test"}},
                                 run_dir, {"fake": {"quality": quality, "steps": steps}})
    t0 = time.time()
    elo = 0.0
    for step in range(steps):
        time.sleep(sleep)
        elo = 100.0 * quality * (step + 1)
        rec = {"step": 10 * (step + 1), "iteration": step + 1, "loss": 1.0 / (step + 1)}
        if (step + 1) % elo_every == 0:
            rec["elo"] = elo
        with open(os.path.join(run_dir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(rec) + "\\n")
        if tracker:
            tracker.log(rec, step=step)
        if crash and step == 1:
            raise RuntimeError("fake training diverged (fake.crash=true)")
    if tracker:
        tracker.finish()
    summary = {"status": "ok", "metrics": {"elo": elo},
               "compute": {"wall_s": time.time() - t0, "cpu_s": 0.0, "gpu_s": 0.0, "device": "cpu"},
               "wandb_path": tracker.run_path if tracker else None}
    tmp = os.path.join(run_dir, ".summary.json.tmp")
    with open(tmp, "w") as f:
        json.dump(summary, f)
    os.replace(tmp, os.path.join(run_dir, "summary.json"))
''')


def make_fake_repo(root: Path) -> Path:
    """A git repo holding `fake_train.py`, committed (the sandbox runs trials from HEAD)."""
    repo = Path(root) / "repo"
    repo.mkdir(parents=True)
    (repo / "fake_train.py").write_text(FAKE_TRAIN)
    # the project's tracking module travels with the fake project: a sandboxed job sees its own
    # worktree, not this checkout
    (repo / "experiments").mkdir()
    for name in ("__init__.py", "tracking.py"):
        (repo / "experiments" / name).write_text((PROJECT / "experiments" / name).read_text())
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost", "-c",
           "init.defaultBranch=main"]
    subprocess.run(git + ["init", "-q"], cwd=repo, check=True)
    subprocess.run(git + ["add", "fake_train.py", "experiments"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "fake job"], cwd=repo, check=True)
    return repo


def write_sweep(path: Path, text: str) -> Path:
    path = Path(path)
    path.write_text(textwrap.dedent(text))
    return path
