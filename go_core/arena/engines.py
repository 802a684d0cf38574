"""Finding the external Go engines (KataGo, GNU Go) and building their GTP command lines.

KataGo comes from PyPI: `pip install --no-deps katrain==1.20.0` ships a Linux AppImage at
`katrain/KataGo/katago`. There is no FUSE on most servers, so the AppImage runs with
`APPIMAGE_EXTRACT_AND_RUN=1` (set by the command lines built here). KataGo refuses to start
without a GTP config file listing a dozen keys; `write_katago_config` writes one for the rules
this project plays by (Tromp-Taylor: area scoring, positional superko, suicide legal) with
resignation off, so a game against KataGo always ends by two passes and our engine scores it.

Every `find_*` raises `EngineNotFound` whose message says what to install.
"""
from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

# The reference network ships with the project (package data, MIT: see katago/LICENSE), so a
# clone, a node's worktree, an installed wheel and a SLURM node all find the same net.
BUNDLED_KATAGO_DIR = Path(__file__).resolve().parent / "katago"
BUNDLED_KATAGO_MODEL = BUNDLED_KATAGO_DIR / "g170-b6c96-s175395328-d26788732.bin.gz"
GNUGO_DEFAULT_PATH = Path("/usr/games/gnugo")  # Debian's package puts it outside PATH

KATAGO_INSTALL_HINT = (
    "install the KataGo binary with `pip install --no-deps katrain==1.20.0` (it ships "
    "katrain/KataGo/katago), plus an OpenCL runtime (Debian: `apt-get install ocl-icd-libopencl1 "
    "pocl-opencl-icd`), or set KATAGO_PATH to a katago executable"
)
KATAGO_MODEL_HINT = (
    "pass a network file (.bin.gz) by path or set KATAGO_MODEL; the project ships the b6c96 net "
    f"at {BUNDLED_KATAGO_MODEL} (reinstall the project if it is missing: `pip install -e .`); "
    "other nets are downloadable from katagotraining.org"
)
GNUGO_INSTALL_HINT = (
    "install GNU Go (Debian/Ubuntu: `apt-get install gnugo`, binary /usr/games/gnugo), "
    "or set GNUGO_PATH to a gnugo executable"
)

# KataGo's GTP config: every key `katago gtp` insists on, with the values this project plays by.
# `maxVisits`, `numSearchThreads` and `logDir` are filled in per call.
KATAGO_BASE_CONFIG: dict[str, str] = {
    "logAllGTPCommunication": "false",
    "logSearchInfo": "false",
    "logToStderr": "false",
    "rules": "tromp-taylor",
    "allowResignation": "false",
    "resignThreshold": "-0.90",
    "resignConsecTurns": "3",
    "ponderingEnabled": "false",
    "nnMaxBatchSize": "2",
    "maxTimePondering": "0",
    # A fixed number of visits per move: no time controls, so strength does not depend on load.
    "maxTime": "1e20",
    "lagBuffer": "0",
}


class EngineNotFound(RuntimeError):
    """An external engine (binary or network file) could not be located; the message says what to install."""


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _katrain_katago() -> Path | None:
    """The KataGo binary inside an installed katrain wheel, found without importing katrain (a GUI)."""
    try:
        spec = importlib.util.find_spec("katrain")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "KataGo" / "katago"
        if candidate.is_file():
            return candidate
    return None


def find_katago(path: str | os.PathLike | None = None) -> Path:
    """The KataGo executable: `path` (from config), else $KATAGO_PATH, else katrain's, else `katago` on PATH."""
    tried: list[str] = []
    for source, value in (("config", path), ("KATAGO_PATH", os.environ.get("KATAGO_PATH"))):
        if value:
            p = Path(value).expanduser()
            if _executable(p):
                return p
            if p.is_file():  # a wheel unpacked without its mode bits: usable once made executable
                raise EngineNotFound(f"KataGo at {p} (from {source}) is not executable: chmod +x {p}")
            raise EngineNotFound(f"KataGo path {p} (from {source}) does not exist; {KATAGO_INSTALL_HINT}")
    bundled = _katrain_katago()
    if bundled is not None:
        if not os.access(bundled, os.X_OK):
            raise EngineNotFound(f"KataGo at {bundled} (katrain wheel) is not executable: chmod +x {bundled}")
        return bundled
    tried.append("katrain wheel (katrain/KataGo/katago)")
    on_path = shutil.which("katago")
    if on_path:
        return Path(on_path)
    tried.append("`katago` on PATH")
    raise EngineNotFound(f"KataGo not found (looked at: {', '.join(tried)}); {KATAGO_INSTALL_HINT}")


def find_katago_model(model: str | os.PathLike | None = None) -> Path:
    """The KataGo network: `model`, else $KATAGO_MODEL, else the b6c96 net shipped in `arena/katago/`."""
    for source, value in (("argument", model), ("KATAGO_MODEL", os.environ.get("KATAGO_MODEL"))):
        if value:
            p = Path(value).expanduser()
            if p.is_file():
                return p
            raise EngineNotFound(f"KataGo network {p} (from {source}) does not exist; {KATAGO_MODEL_HINT}")
    found = sorted(glob.glob(str(BUNDLED_KATAGO_DIR / "*.bin.gz")))
    if found:
        return Path(found[0])
    raise EngineNotFound(f"no KataGo network found in {BUNDLED_KATAGO_DIR}; {KATAGO_MODEL_HINT}")


def find_gnugo(path: str | os.PathLike | None = None) -> Path:
    """The GNU Go executable: `path`, else $GNUGO_PATH, else /usr/games/gnugo, else `gnugo` on PATH."""
    for source, value in (("config", path), ("GNUGO_PATH", os.environ.get("GNUGO_PATH"))):
        if value:
            p = Path(value).expanduser()
            if _executable(p):
                return p
            raise EngineNotFound(f"GNU Go path {p} (from {source}) is not an executable; {GNUGO_INSTALL_HINT}")
    if _executable(GNUGO_DEFAULT_PATH):
        return GNUGO_DEFAULT_PATH
    on_path = shutil.which("gnugo")
    if on_path:
        return Path(on_path)
    raise EngineNotFound(f"GNU Go not found at {GNUGO_DEFAULT_PATH} or on PATH; {GNUGO_INSTALL_HINT}")


def default_cache_dir() -> Path:
    """Where generated KataGo configs and logs go: $TENGEN_CACHE, else ~/.cache/tengen, else a temp dir."""
    base = os.environ.get("TENGEN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tengen")
    try:
        Path(base).mkdir(parents=True, exist_ok=True)
        if os.access(base, os.W_OK):
            return Path(base)
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / "tengen"


def write_katago_config(config_dir: str | os.PathLike | None = None, visits: int = 1,
                        threads: int = 1, extra: dict | None = None) -> Path:
    """Write a KataGo GTP config (Tromp-Taylor, no resignation, `visits` per move) and return its path.

    The file name carries a hash of its content, so concurrent callers with different settings
    never overwrite each other's file, and equal settings share one file (written atomically).
    """
    if visits < 1:
        raise ValueError(f"KataGo visits must be >= 1, got {visits}")
    if not 1 <= threads <= 2:
        # The machines this runs on have 2 cores shared by everything; more threads only thrash.
        raise ValueError(f"KataGo numSearchThreads must be 1 or 2, got {threads}")
    config_dir = Path(config_dir) if config_dir is not None else default_cache_dir() / "katago"
    log_dir = config_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    values = dict(KATAGO_BASE_CONFIG)
    values.update(logDir=str(log_dir), maxVisits=str(int(visits)), numSearchThreads=str(int(threads)))
    values.update({str(k): str(v) for k, v in (extra or {}).items()})
    text = "# written by go_core.arena.engines.write_katago_config\n" + "".join(
        f"{key} = {value}\n" for key, value in values.items())
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = config_dir / f"gtp_v{int(visits)}_{digest}.cfg"
    # reused only if it still says what its name promises: a file changed since (by anything
    # that could write the cache) is written again, never trusted
    # (os.replace swaps a planted symlink itself, never its target)
    if path.is_symlink() or not path.is_file() or path.read_bytes() != text.encode():
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def katago_env(base: dict | None = None) -> dict[str, str]:
    """An environment for KataGo: the AppImage extracts itself instead of needing FUSE."""
    env = dict(os.environ if base is None else base)
    env["APPIMAGE_EXTRACT_AND_RUN"] = "1"
    return env


def katago_command(model: str | os.PathLike | None = None, visits: int = 1,
                   config_dir: str | os.PathLike | None = None, extra: dict | None = None,
                   binary: str | os.PathLike | None = None, threads: int = 1) -> list[str]:
    """argv that starts KataGo in GTP mode at `visits` visits per move, with its config written.

    The argv begins with `env APPIMAGE_EXTRACT_AND_RUN=1`, so it runs as-is under any
    subprocess call without a special environment.
    """
    exe = find_katago(binary)
    net = find_katago_model(model)
    cfg = write_katago_config(config_dir, visits=visits, threads=threads, extra=extra)
    env_exe = shutil.which("env") or "/usr/bin/env"
    return [env_exe, "APPIMAGE_EXTRACT_AND_RUN=1", str(exe), "gtp", "-model", str(net), "-config", str(cfg)]


def gnugo_command(level: int = 0, binary: str | os.PathLike | None = None,
                  seed: int | None = None) -> list[str]:
    """argv that starts GNU Go in GTP mode at `level` (0..10) with Chinese (area) rules."""
    if not 0 <= int(level) <= 10:
        raise ValueError(f"GNU Go level must be 0..10, got {level}")
    argv = [str(find_gnugo(binary)), "--mode", "gtp", "--level", str(int(level)), "--chinese-rules"]
    if seed is not None:
        argv += ["--seed", str(int(seed))]
    return argv
