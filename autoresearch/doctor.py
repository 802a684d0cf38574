"""`research doctor`: one screen that checks everything the project uses.

Each check says what it found and, when something is missing, the exact line that installs it.
`required` checks are the ones the main job (`research run` on the real training job, rated
against KataGo and GNU Go) cannot do without; the others only enable optional parts (the tests
that need Chromium or PostgreSQL, the Anthropic proposer, CUDA). `research doctor` exits 1 when a
required check fails. `research run` runs the checks its question needs first (`preflight`), so
a missing engine stops it in seconds instead of after minutes of training.

    research doctor            # all checks
    research doctor --quick    # skip the one-move KataGo game (no engine start)
"""
from __future__ import annotations

import argparse
import ctypes.util
import glob
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

APT = "sudo apt-get install"
SETUP = "bash setup.sh"
# The first KataGo start on a machine tunes OpenCL kernels (about a minute, cached in ~/.katago).
SMOKE_START_TIMEOUT_S = 300.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str                 # what was found (or what is wrong)
    fix: str | None = None      # the exact line that installs or repairs it
    required: bool = True       # the main job needs it


def _run(argv: list[str], timeout: float = 20.0) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


# -- the checks ----------------------------------------------------------------------------------

def check_python() -> Check:
    v = sys.version_info
    ok = v >= (3, 10)
    return Check("python", ok, f"Python {v.major}.{v.minor}.{v.micro} at {sys.executable}",
                 None if ok else "install Python 3.10 or newer, then `bash setup.sh`")


def check_torch() -> Check:
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure is the finding
        return Check("torch", False, f"torch does not import: {e}",
                     ".venv/bin/python -m pip install 'torch==2.13.0' (CPU) or `bash setup.sh`")
    cuda = "CUDA usable" if torch.cuda.is_available() else "CPU only (no usable CUDA device)"
    return Check("torch", True, f"torch {torch.__version__}, {cuda}")


def check_cuda() -> Check:
    try:
        import torch
        if torch.cuda.is_available():
            return Check("cuda", True, f"{torch.cuda.device_count()} device(s): "
                                       f"{torch.cuda.get_device_name(0)}", required=False)
    except Exception:  # noqa: BLE001
        pass
    return Check("cuda", False, "no CUDA device: training and matches run on the CPU",
                 "on a GPU machine install the CUDA torch build first, then `bash setup.sh`",
                 required=False)


def check_numba() -> Check:
    t = time.perf_counter()
    try:
        import numpy as np

        from go_core.game.board import Board
        b = Board(9, 7.0).random_playout(np.random.default_rng(0))
        if not b.is_over:
            raise RuntimeError("a random playout did not end")
    except Exception as e:  # noqa: BLE001
        return Check("numba kernels", False, f"the rules engine does not compile or run: {e}",
                     ".venv/bin/python -m pip install 'numba>=0.59' (or `bash setup.sh`)")
    return Check("numba kernels", True, f"rules engine compiled and played a random game "
                                        f"({time.perf_counter() - t:.1f} s)")


def check_git() -> Check:
    git = shutil.which("git")
    cp = _run([git, "--version"]) if git else None
    if cp is None or cp.returncode != 0:
        return Check("git", False, "git not found (nodes run in git worktrees)", f"{APT} git")
    version = cp.stdout.strip().split()[-1]
    major, minor = (int(x) for x in version.split(".")[:2])
    ok = (major, minor) >= (2, 17)
    return Check("git", ok, f"git {version}" + ("" if ok else " (worktrees need 2.17+)"),
                 None if ok else f"{APT} git")


def check_katago_binary() -> Check:
    from go_core.arena import engines
    try:
        return Check("katago binary", True, str(engines.find_katago()))
    except engines.EngineNotFound as e:
        return Check("katago binary", False, str(e),
                     ".venv/bin/python -m pip install --no-deps katrain==1.20.0 "
                     "(or set KATAGO_PATH to a katago executable)")


def check_opencl() -> Check:
    lib = ctypes.util.find_library("OpenCL")
    icds = glob.glob("/etc/OpenCL/vendors/*.icd")
    if lib and icds:
        return Check("opencl", True, f"{lib}, ICDs: {', '.join(os.path.basename(i) for i in icds)}")
    missing = "libOpenCL" if not lib else "an OpenCL device (no ICD in /etc/OpenCL/vendors)"
    return Check("opencl", False, f"{missing} not found: the KataGo binary cannot run",
                 f"{APT} ocl-icd-libopencl1 pocl-opencl-icd")


def check_katago_network() -> Check:
    from go_core.arena import engines
    try:
        net = engines.find_katago_model()
    except engines.EngineNotFound as e:
        return Check("katago network", False, str(e), "set KATAGO_MODEL to a .bin.gz network, or "
                                                       "reinstall the project (`bash setup.sh`)")
    return Check("katago network", True, f"{net} ({net.stat().st_size / 1e6:.1f} MB)")


def check_katago_smoke() -> Check:
    """One `genmove` of a real KataGo process: binary, OpenCL, network and config together."""
    from go_core.arena import engines
    from go_core.arena.gtp_client import GTPClient, GTPClientError
    t = time.perf_counter()
    try:
        argv = engines.katago_command(visits=1)
    except engines.EngineNotFound as e:
        return Check("katago gtp game", False, f"cannot start KataGo: {e}",
                     "fix the KataGo checks above first")
    try:
        with GTPClient(argv, timeout_s=60, start_timeout_s=SMOKE_START_TIMEOUT_S, name="katago") as c:
            c.send("boardsize 9")
            c.send("clear_board")
            c.send("komi 7")
            move = c.send("genmove b").strip()
    except (GTPClientError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return Check("katago gtp game", False, f"KataGo did not play a move: {first}",
                     f"{APT} ocl-icd-libopencl1 pocl-opencl-icd; then run "
                     f"`{' '.join(argv)}` by hand to see its own message")
    return Check("katago gtp game", True, f"KataGo played {move} on 9x9 "
                                          f"({time.perf_counter() - t:.1f} s, start included)")


def check_gnugo() -> Check:
    from go_core.arena import engines
    try:
        path = engines.find_gnugo()
    except engines.EngineNotFound as e:
        return Check("gnu go", False, str(e), f"{APT} gnugo")
    cp = _run([str(path), "--version"])
    version = cp.stdout.splitlines()[0] if cp is not None and cp.stdout else "version unknown"
    return Check("gnu go", True, f"{path} ({version})")


def check_chromium() -> Check:
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(n)), None)
    return Check("chromium", bool(exe), exe or "not found (screenshot tests of the pages skip)",
                 None if exe else f"{APT} chromium", required=False)


def check_postgres() -> Check:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres")) or (
        [shutil.which("postgres")] if shutil.which("postgres") else [])
    return Check("postgresql", bool(found), found[-1] if found else
                 "no server binary (the PostgreSQL sweep tests skip)",
                 None if found else f"{APT} postgresql", required=False)


def check_bubblewrap() -> Check:
    """The exact sandbox a node runs in (autoresearch/bwrap.py), started once."""
    from autoresearch.bwrap import bwrap_status
    ok, detail = bwrap_status()
    if ok:
        return Check("bubblewrap", True, f"{detail}: nodes run sandboxed", required=False)
    return Check("bubblewrap", False, f"nodes would run WITHOUT a sandbox (recorded on each node): "
                 f"{detail}", detail.split(": ", 1)[-1], required=False)


def check_wandb() -> Check:
    mode = os.environ.get("WANDB_MODE") or "offline (conf/tracking/default.yaml)"
    try:
        import wandb  # noqa: F401
    except Exception as e:  # noqa: BLE001
        return Check("w&b", False, f"wandb does not import: {e}", "bash setup.sh", required=False)
    return Check("w&b", True, f"mode {mode}; runs mirror to <run_dir>/wandb", required=False)


def known_models() -> list[str]:
    """The model names the installed anthropic SDK lists (its `Model` type)."""
    import typing

    from anthropic.types import Model
    names: list[str] = []
    for arg in typing.get_args(Model):
        names += [a for a in typing.get_args(arg) if isinstance(a, str)]
    return names


def check_anthropic(model: str, required: bool = False) -> Check:
    key = bool(os.environ.get("ANTHROPIC_API_KEY"))
    try:
        models = known_models()
    except Exception as e:  # noqa: BLE001
        return Check("anthropic", False, f"the anthropic SDK does not import: {e}", "bash setup.sh",
                     required=required)
    known = model in models
    detail = (f"ANTHROPIC_API_KEY {'is set' if key else 'is not set (the offline planner is used)'}; "
              f"model {model!r} {'is' if known else 'is NOT'} one the installed SDK knows")
    if known and (key or not required):
        return Check("anthropic", True, detail, required=required)
    fix = ("export ANTHROPIC_API_KEY=... (or use --proposer offline)" if not key else
           f"set anthropic.model in conf/agent/default.yaml (or --agent-config) to one of: "
           f"{', '.join(models[:6])}, ...")
    if not known:
        fix = (f"set anthropic.model to one of: {', '.join(models[:6])}, ..."
               + ("" if key else "; and export ANTHROPIC_API_KEY=..."))
    return Check("anthropic", False, detail, fix, required=required)


def all_checks(model: str | None = None, quick: bool = False) -> list[Callable[[], Check]]:
    checks: list[Callable[[], Check]] = [
        check_python, check_torch, check_cuda, check_numba, check_git, check_katago_binary,
        check_opencl, check_katago_network]
    if not quick:
        checks.append(check_katago_smoke)
    checks += [check_gnugo, check_bubblewrap, check_chromium, check_postgres, check_wandb]
    if model:
        checks.append(lambda: check_anthropic(model))
    return checks


def run_checks(checks: list[Callable[[], Check]], say: Callable[[str], None] | None = None,
               stop_on_required_failure: bool = False) -> list[Check]:
    """Run `checks` in order; skip the engine game when an engine check before it failed."""
    done: list[Check] = []
    for fn in checks:
        if fn is check_katago_smoke and any(not c.ok and c.name.startswith(("katago", "opencl"))
                                            for c in done):
            continue
        c = fn()
        done.append(c)
        if say:
            say(format_check(c))
        if stop_on_required_failure and c.required and not c.ok:
            break
    return done


def format_check(c: Check) -> str:
    mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
    line = f"  [{mark}] {c.name:<16} {c.detail}"
    if not c.ok and c.fix:
        line += f"\n         fix: {c.fix}"
    return line


def failures_message(checks: list[Check]) -> str:
    """The required failures as one message: what is wrong and the line that fixes each."""
    bad = [c for c in checks if c.required and not c.ok]
    return "\n".join(f"{c.name}: {c.detail}\n  fix: {c.fix}" for c in bad)


REAL_JOB_MODULE = "experiments.train"   # the job whose checkpoints the referee rates with engines


def preflight_checks(job_module: str, proposer: str, model: str) -> list[Callable[[], Check]]:
    """The checks a question needs before anything trains: git for the worktrees; the learner's
    libraries and the referee's engines when nodes run the real training job; the model when the
    Anthropic proposer drives the loop."""
    checks: list[Callable[[], Check]] = [check_git]
    if job_module == REAL_JOB_MODULE:
        checks += [check_python, check_torch, check_numba, check_katago_binary, check_opencl,
                   check_katago_network, check_katago_smoke, check_gnugo]
    if proposer == "anthropic":
        checks.append(lambda: check_anthropic(model, required=True))
    return checks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="research doctor", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="skip the one-move KataGo game")
    ap.add_argument("--agent-config", default=None, help="agent YAML whose anthropic.model to check")
    a = ap.parse_args(argv)
    from autoresearch.agent_config import load_agent_config
    model = load_agent_config(a.agent_config).anthropic.model
    print("research doctor: what this machine has for Tengen")
    checks = run_checks(all_checks(model, quick=a.quick), say=print)
    bad = [c for c in checks if c.required and not c.ok]
    warn = [c for c in checks if not c.required and not c.ok]
    if bad:
        print(f"\n{len(bad)} required check(s) failed: research run cannot rate its nodes until "
              f"they are fixed (the lines above say how).")
        return 1
    print(f"\nready: every check the main job needs passed"
          + (f" ({len(warn)} optional part(s) missing: see warn lines)" if warn else "") + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())

