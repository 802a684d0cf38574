"""Bubblewrap: every process of a node runs fenced in (DESIGN.md, "The referee").

A node is untrusted: it is an optimiser's change. `sandboxed_argv` wraps a command so that it runs
in its own PID, network, IPC and UTS namespaces, sees the system and the Python environment
read-only, can write only the paths it is given (the node's worktree -- not its `.git` -- and its
run directory), has a private `/tmp` and home, gets an environment built from an allow-list
(never a key, token, password or secret), cannot see the reference engines (KataGo, its network,
GNU Go), and has limits on processes, file size and address space:

    argv = sandboxed_argv(["python", "-m", "experiments.train", ...],
                          writable=[worktree, run_dir], env=allowed_env({...}), cwd=worktree)
    subprocess.Popen(argv, env=allowed_env(...), start_new_session=True)

Killing the outer `bwrap` kills the whole namespace (`--die-with-parent` on its init, and the
kernel kills every process of a PID namespace whose init dies): no orphan survives the node,
not even one that called setsid().

When the harness runs as root, RLIMIT_NPROC does not apply (the kernel exempts uid 0), so the
command runs as `SANDBOX_UID` (setpriv inside the sandbox) and its writable paths are chowned
to that uid first. As an ordinary user bwrap makes its own user namespace.

Where bubblewrap cannot run (not installed, user namespaces disabled) `sandbox_mode()` says why,
the node runs unsandboxed and that is recorded (`summary.json` `sandbox: "none: <why>"`);
`bwrap_status()` is what `research doctor` shows.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

BWRAP = "bwrap"
SANDBOX_UID = 65534          # uid (and gid) a node runs as when the harness is root ("nobody")
SANDBOX_HOME = "/home/node"  # the node's private home (a tmpfs)

# The node's environment is built from these names only (plus TENGEN_* below): nothing else of
# the harness's environment reaches a job, whatever it is called.
ENV_ALLOW: tuple[str, ...] = (
    "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "PYTHONPATH",
    "PYTHONHASHSEED", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "HYDRA_FULL_ERROR",
    "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS", "NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT", "TORCH_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "CUBLAS_WORKSPACE_CONFIG",
    "WANDB_MODE", "WANDB_PROJECT", "WANDB_RUN_GROUP", "WANDB_SILENT", "APPIMAGE_EXTRACT_AND_RUN",
)
ENV_ALLOW_PREFIXES: tuple[str, ...] = ("TENGEN_",)
# What a job gets unless the harness's environment says otherwise. OpenMP threads that spin while
# waiting (libgomp's default) wreck a machine running two jobs: two self-play benchmarks side by
# side on 2 cores ran 176 + 173 sims/s with torch's 2 threads each, 979 + 989 with PASSIVE, and
# one alone 1474 vs 1316 (benchmarks/mcts.py --games 32 --sims 32, 2026-12-01).
ENV_DEFAULTS: dict[str, str] = {"OMP_WAIT_POLICY": "PASSIVE"}
# Even an allowed name is dropped if it looks like a credential (TENGEN_API_TOKEN...).
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION", re.I)


@dataclass
class Limits:
    """Per-process limits inherited by every process of a node (0: no limit)."""
    nproc: int = 2048            # RLIMIT_NPROC: processes + threads of the sandbox uid (fork bombs)
    fsize_mb: int = 8192         # RLIMIT_FSIZE: the largest file a node may write, MiB
    mem_mb: int = 0              # RLIMIT_AS per process, MiB (CUDA needs 0)


def is_secret_env(name: str) -> bool:
    """A variable no job may see: anything named like a key, token, password or secret."""
    return bool(SECRET_NAME.search(name)) or name.startswith("ANTHROPIC_")


def is_allowed_env(name: str) -> bool:
    return (name in ENV_ALLOW or name.startswith(ENV_ALLOW_PREFIXES)) and not is_secret_env(name)


def allowed_env(extra: Mapping[str, str] | None = None,
                base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a node: the allow-listed names of `base` (default: ours), then `extra`
    (the loop's own additions, filtered the same way), and HOME = the private home."""
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items() if is_allowed_env(k)}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    for k, v in (extra or {}).items():
        if is_allowed_env(k):
            env[k] = str(v)
    env["HOME"] = SANDBOX_HOME
    return env


# ---------------------------------------------------------------------------- what is hidden

def engine_paths(worktree: Path | str | None = None) -> list[Path]:
    """The referee's engines a candidate must not shell out to: katrain's package (KataGo binary
    and models), the worktree's shipped KataGo net, GNU Go and other game engines in /usr/games."""
    out: list[Path] = []
    try:
        spec = importlib.util.find_spec("katrain")
        if spec is not None and spec.origin:
            out.append(Path(spec.origin).resolve().parent)
    except (ImportError, ValueError):
        pass
    out += [Path("/usr/games"), Path("/usr/local/games")]
    for name in ("katago", "gnugo"):
        found = shutil.which(name)
        if found and not found.startswith(("/usr/games/", "/usr/local/games/")):
            out.append(Path(found).resolve())
    if worktree is not None:
        out.append(Path(worktree).resolve() / "go_core" / "arena" / "katago")
    return [p for p in out if p.exists()]


def python_paths() -> list[Path]:
    """What the job's interpreter needs read-only: the virtualenv and the base installation."""
    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
             Path(sys.executable).resolve().parent.parent}
    return sorted(p for p in paths if p.exists() and not _under(p, Path("/usr")))


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


# ---------------------------------------------------------------------------- the command

def sandboxed_argv(argv: list[str], *, writable: Iterable[Path | str],
                   readonly: Iterable[Path | str] = (), env: Mapping[str, str] | None = None,
                   cwd: Path | str | None = None, hide: Iterable[Path | str] | None = None,
                   limits: Limits | None = None, run_as: int | None = None,
                   devices: bool = True, privileged: bool | None = None,
                   clear_env: bool = True, protect: Iterable[Path | str] = (),
                   engines: bool = False) -> list[str]:
    """`argv` wrapped in prlimit + bubblewrap (see the module docstring).

    writable: paths the command may write (each must exist); a `.git` inside one stays read-only.
    protect: files inside `writable` the harness wrote and relies on (job.sh, job.log): bound
      read-only over themselves, so the command cannot change them (open descriptors still work).
    readonly: more paths it may read (a warm-start checkpoint, an SGF folder); when we are
      root they must be readable by SANDBOX_UID (every folder on the way o+rx).
    env: its whole environment (default `allowed_env()`); set with --clearenv, so the caller's
      environment never leaks even if it forgets `env=` in Popen.
    hide: paths masked by an empty tmpfs (default: `engine_paths` of every writable and
      read-only path).
    run_as: the uid inside (default SANDBOX_UID when we are root, else ours).
    devices: bind /dev/nvidia* (and /sys read-only) when present (a GPU job).
    privileged: whether bwrap runs as root (default: whether we are root). False makes a command
      for an ordinary user (its own user namespace), e.g. for a SLURM job's script.
    clear_env: False leaves the environment to the caller (`env -i ...` in a job script).
    engines: leave the reference engines visible, with KataGo's OpenCL tuning read-only in the
      private home (a sweep trial -- a config-only search the user wrote -- rates itself with
      them; a node of `research run` never gets this: the referee rates it).
    """
    limits = limits or Limits()
    writable = [Path(p).resolve() for p in writable]
    readonly = [Path(p).resolve() for p in readonly]
    env = dict(allowed_env() if env is None else env)
    root = os.geteuid() == 0 if privileged is None else privileged
    if run_as is None:
        run_as = SANDBOX_UID if root else None
    # the KataGo net inside a worktree or a candidate's read-only code is hidden too: a candidate
    # that could read it could play with the reference's own network
    if engines:
        hide = []
    hide = [Path(p).resolve() for p in hide] if hide is not None else sorted(
        {p for w in writable + readonly for p in engine_paths(w)} | set(engine_paths()))

    made: set[str] = {"/"}
    out = ["prlimit"]
    if limits.nproc:
        out.append(f"--nproc={int(limits.nproc)}")
    if limits.fsize_mb:
        out.append(f"--fsize={int(limits.fsize_mb) * 1024 * 1024}")
    if limits.mem_mb:
        out.append(f"--as={int(limits.mem_mb) * 1024 * 1024}")
    out += ["--", BWRAP, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session"]
    if not root:
        out += ["--unshare-user", "--cap-drop", "ALL"]

    def parents(dest: Path) -> None:
        # bwrap makes missing parents 0700 as root: the sandbox uid could not traverse them
        for anc in reversed(dest.parents):
            if str(anc) not in made:
                out.extend(["--perms", "0755", "--dir", str(anc)])
                made.add(str(anc))

    def bind(flag: str, src: Path, dest: Path | None = None) -> None:
        dest = dest or src
        parents(dest)
        out.extend([flag, str(src), str(dest)])
        made.add(str(dest))

    bind("--ro-bind", Path("/usr"))
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        p = Path(top)
        if p.is_symlink():
            out.extend(["--symlink", os.readlink(p), top])
        elif p.exists():
            bind("--ro-bind", p)
    bind("--ro-bind", Path("/etc"))
    out += ["--proc", "/proc", "--dev", "/dev"]
    gpus = sorted(Path("/dev").glob("nvidia*")) if devices else []
    for dev in gpus:
        out += ["--dev-bind", str(dev), str(dev)]
    if gpus:   # CUDA reads PCI and NUMA topology from /sys
        out += ["--ro-bind", "/sys", "/sys"]
    out += ["--perms", "1777", "--tmpfs", "/tmp"]
    made.add("/tmp")
    parents(Path(SANDBOX_HOME))
    out += ["--perms", "1777", "--tmpfs", SANDBOX_HOME]
    made.add(SANDBOX_HOME)
    tuning = Path(os.path.expanduser("~/.katago"))
    if engines and tuning.is_dir():   # KataGo would re-tune OpenCL (~1 min) in an empty home
        out += ["--ro-bind", str(tuning), f"{SANDBOX_HOME}/.katago"]
    for p in python_paths() + readonly:
        if p.exists():
            bind("--ro-bind", p)
    for p in writable:
        if not p.exists():
            raise FileNotFoundError(f"sandbox: writable path {p} does not exist (create it first)")
        bind("--bind", p)
        if (p / ".git").exists():   # a worktree's .git points at the main checkout's .git
            out += ["--ro-bind", str(p / ".git"), str(p / ".git")]
    for p in protect:
        p = Path(p).absolute()
        out += ["--ro-bind-try", str(p), str(p)]
    for p in hide:
        if p.exists():
            parents(p)
            if p.is_dir():
                out += ["--perms", "0755", "--tmpfs", str(p)]
            else:
                out += ["--ro-bind", "/dev/null", str(p)]
    if cwd is not None:
        out += ["--chdir", str(Path(cwd).resolve())]
    if clear_env:
        out.append("--clearenv")
        for k, v in sorted(env.items()):
            out += ["--setenv", k, str(v)]
    if run_as is not None and run_as != os.geteuid():
        out += ["setpriv", f"--reuid={run_as}", f"--regid={run_as}", "--clear-groups",
                "--no-new-privs", "--"]
    return out + list(argv)


def prepare_writable(paths: Iterable[Path | str], run_as: int | None = None) -> None:
    """Make `paths` writable by the uid the node runs as (root: chown -R to SANDBOX_UID;
    a worktree's `.git` file is left to us, so the node cannot repoint it)."""
    if os.geteuid() != 0:
        return
    uid = SANDBOX_UID if run_as is None else run_as
    for top in paths:
        top = Path(top)
        os.chown(top, uid, uid)
        for dirpath, dirnames, filenames in os.walk(top):
            if Path(dirpath) == top and ".git" in filenames:
                filenames = [f for f in filenames if f != ".git"]
            for name in dirnames + filenames:
                try:
                    os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)
                except FileNotFoundError:
                    pass


# ---------------------------------------------------------------------------- can it run here?

@functools.lru_cache(maxsize=1)
def bwrap_status() -> tuple[bool, str]:
    """(True, "bwrap <version>") if a node can be sandboxed here, else (False, how to fix it)."""
    exe = shutil.which(BWRAP)
    if exe is None:
        return False, ("bubblewrap is not installed: `apt-get install bubblewrap` (Debian/Ubuntu; "
                       "setup.sh does it when run as root)")
    for tool in ("prlimit", "setpriv"):
        if shutil.which(tool) is None:
            return False, f"{tool} is missing: `apt-get install util-linux`"
    try:
        cp = subprocess.run(sandboxed_argv(["true"], writable=[], hide=[]), capture_output=True,
                            text=True, timeout=30, env=allowed_env())
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"bwrap could not start: {e}"
    if cp.returncode != 0:
        err = cp.stderr.strip()[:300]
        fix = ("enable unprivileged user namespaces (`sysctl -w kernel.unprivileged_userns_clone=1`"
               " or `sysctl -w user.max_user_namespaces=15000`; in a container run it with "
               "--privileged or a seccomp profile that allows unshare/clone(CLONE_NEWUSER))")
        return False, f"bwrap fails here ({err}): {fix}"
    ver = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    return True, ver or "bwrap"


def sandbox_mode(wanted: str = "auto") -> str:
    """What a node will run under: "bwrap", or "none: <why>" (recorded on the node).

    wanted: auto (bwrap where it can run) | bwrap (required: raise where it cannot) | none.
    """
    if wanted == "none":
        return "none: sandbox disabled by configuration (job.sandbox=none)"
    ok, how = bwrap_status()
    if ok:
        return "bwrap"
    if wanted == "bwrap":
        raise RuntimeError(f"job.sandbox=bwrap but bubblewrap cannot run here: {how}")
    return f"none: {how}"
