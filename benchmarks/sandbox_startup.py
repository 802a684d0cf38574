"""Start-up cost of the sandbox per node: the same command with and without bubblewrap.

Prints one JSON object: `overhead_s` (mean over `--repeats` paired runs, with a 95% interval and
n), for a trivial command (`true`: bwrap alone) and for `python -c "import torch, numpy"` (what
a training job or a candidate player pays before its first move), plus the preparation a node
gets on top (chown of a worktree-sized tree when the harness is root). Target: <= 5 s per node.

    python benchmarks/sandbox_startup.py --repeats 5
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoresearch import bwrap


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def paired(cmd: list[str], writable: list[Path], repeats: int) -> dict:
    env = bwrap.allowed_env()
    diffs, plain, boxed = [], [], []
    for _ in range(repeats):
        a = timed(cmd, env)
        b = timed(bwrap.sandboxed_argv(cmd, writable=writable, env=env, cwd=writable[0]), env)
        plain.append(a), boxed.append(b), diffs.append(b - a)
    m = statistics.mean(diffs)
    half = 1.96 * statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else math.nan
    return {"overhead_s": round(m, 4), "overhead_ci95": [round(m - half, 4), round(m + half, 4)],
            "plain_s": round(statistics.mean(plain), 4), "sandboxed_s": round(statistics.mean(boxed), 4),
            "n": len(diffs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    ok, how = bwrap.bwrap_status()
    if not ok:
        print(json.dumps({"error": f"bubblewrap cannot run here: {how}"}))
        return
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        wt, run = Path(tmp) / "wt", Path(tmp) / "run"
        shutil.copytree(root, wt, ignore=shutil.ignore_patterns(".git", ".venv", "workspace*",
                                                                 "__pycache__", "*.gz"))
        run.mkdir()
        t0 = time.perf_counter()
        bwrap.prepare_writable([wt, run])
        prep_s = time.perf_counter() - t0
        files = sum(1 for _ in wt.rglob("*"))
        out = {"bwrap": how, "prepare_writable_s": round(prep_s, 4), "worktree_files": files,
               "true": paired(["true"], [wt, run], a.repeats),
               "python_import_torch": paired([sys.executable, "-c", "import torch, numpy"],
                                             [wt, run], a.repeats)}
        out["per_node_overhead_s"] = round(out["python_import_torch"]["overhead_s"] + prep_s, 4)
        out["target_s"] = 5.0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
