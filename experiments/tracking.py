"""Mirror a run's config and per-iteration metrics to Weights & Biases.

`metrics.jsonl` in the run directory is the source of truth; W&B only mirrors it, so a run never
fails because of tracking. The default mode is `offline`: W&B writes its files under
`<run_dir>/wandb/` and no account is needed (`wandb sync <run_dir>/wandb/offline-run-*` uploads
them later). `online` is used only when the user has logged in (an API key in the environment or
in ~/.netrc); otherwise it falls back to offline with a warning. `disabled` logs nothing.

The environment variable `WANDB_MODE` wins over the config, so tests and CI (`WANDB_MODE=disabled`)
never reach the network whatever the config says.

    tracker = start_tracking(cfg.tracking, run_dir, OmegaConf.to_container(cfg, resolve=True))
    tracker.log({"loss": 0.3, "elo": 120.0}, step=it)
    tracker.finish()
    write_summary(run_dir, ..., wandb_path=tracker.run_path)   # the harness stores it on the node
"""
from __future__ import annotations

import json
import os
import struct
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

MODES = ("offline", "online", "disabled")
FLUSH_WAIT_S = 10.0   # after finish(), wait at most this long for the offline file to be complete


@dataclass
class WandbConfig:
    mode: str = "offline"                          # offline | online | disabled (env WANDB_MODE wins)
    project: str = "tengen"                        # W&B project the runs are grouped under
    entity: str | None = None                      # W&B team or user; None = the logged-in default
    group: str | None = None                       # runs of one question or sweep share a group
    tags: list[str] = field(default_factory=list)  # free-form labels shown in the W&B UI
    job_type: str = "train"                        # train | rate | sweep-trial
    init_timeout_s: float = 60.0                   # give up on W&B (and carry on) after this long


@dataclass
class TrackingConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)   # Weights & Biases mirror settings


def _as_wandb_config(cfg: Any) -> WandbConfig:
    """Accept a TrackingConfig, a DictConfig/dict `{wandb: {...}}`, or None (defaults)."""
    if cfg is None:
        return WandbConfig()
    if isinstance(cfg, TrackingConfig):
        return cfg.wandb
    if isinstance(cfg, WandbConfig):
        return cfg
    try:  # DictConfig -> plain dict without importing omegaconf at module import time
        from omegaconf import DictConfig, OmegaConf
        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
    except ImportError:
        pass
    raw = dict(cfg.get("wandb", cfg) if isinstance(cfg, Mapping) else {})
    known = set(WandbConfig.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown tracking.wandb fields {sorted(unknown)}; known: {sorted(known)}")
    out = WandbConfig(**raw)
    out.tags = list(out.tags or [])
    return out


def wandb_logged_in() -> bool:
    """True when an API key is available (env WANDB_API_KEY or a netrc entry from `wandb login`)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        import netrc
        host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("//")[-1].split("/")[0]
        rc = netrc.netrc(os.environ.get("NETRC") or None)
        return rc.authenticators(host) is not None
    except (OSError, netrc.NetrcParseError, ImportError):
        return False


def resolve_mode(requested: str) -> str:
    """The mode that will actually be used: env WANDB_MODE first, online only when logged in."""
    mode = (os.environ.get("WANDB_MODE") or requested or "offline").strip().lower()
    if mode in ("dryrun", "offline"):
        mode = "offline"
    if mode not in MODES:
        raise ValueError(f"tracking.wandb.mode must be one of {MODES}, got {mode!r}")
    if mode == "online" and not wandb_logged_in():
        warnings.warn("tracking.wandb.mode=online but no W&B login was found (run `wandb login` or "
                      "set WANDB_API_KEY); logging offline instead", RuntimeWarning, stacklevel=3)
        mode = "offline"
    return mode


def _scalars(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Flatten nested dicts to 'a/b' keys and keep only numbers (W&B charts scalars)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_scalars(value, name + "/"))
        elif isinstance(value, bool):
            out[name] = int(value)
        elif isinstance(value, (int, float)):
            out[name] = value
        elif hasattr(value, "item") and getattr(value, "ndim", 1) == 0:   # numpy / torch scalars
            out[name] = value.item()
    return out


class Tracker:
    """A W&B run (or nothing, when disabled or when W&B failed to start)."""

    def __init__(self, run: Any = None, mode: str = "disabled"):
        self._run = run
        self.mode = mode if run is not None else "disabled"
        #: `entity/project/run_id` when online; the local offline run folder (what `wandb sync`
        #: takes) when offline; None when disabled. Stored on the node as `wandb_path`.
        self.run_path: str | None = None
        if run is not None:
            self.run_path = run.path if mode == "online" else str(Path(run.dir).parent)

    @property
    def active(self) -> bool:
        return self._run is not None

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if self._run is None:
            return
        try:
            self._run.log(_scalars(metrics), step=step)
        except Exception as e:  # tracking must never end a run
            warnings.warn(f"W&B log failed ({e!r}); W&B mirroring stops, metrics.jsonl is unaffected",
                          RuntimeWarning, stacklevel=2)
            self._run = None

    def summary(self, metrics: Mapping[str, Any]) -> None:
        """Set final values (e.g. Elo vs the ladder) on the run's summary."""
        if self._run is None:
            return
        try:
            self._run.summary.update(_scalars(metrics))
        except Exception as e:
            warnings.warn(f"W&B summary update failed ({e!r})", RuntimeWarning, stacklevel=2)

    def finish(self, exit_code: int = 0) -> None:
        if self._run is None:
            return
        run, self._run = self._run, None
        try:
            run.finish(exit_code=exit_code)
        except Exception as e:
            warnings.warn(f"W&B finish failed ({e!r}); the run's files may be incomplete",
                          RuntimeWarning, stacklevel=2)
            return
        if self.mode == "offline" and self.run_path:
            # wandb-core writes the .wandb file from its own process and may still be flushing
            # when finish() returns; wait (briefly) so readers of the run dir see a whole run.
            deadline = time.time() + FLUSH_WAIT_S
            while time.time() < deadline:
                try:
                    if read_offline_run(self.run_path).get("finished"):
                        break
                except (OSError, ValueError):
                    pass
                time.sleep(0.05)

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)


def start_tracking(tracking_cfg: Any, run_dir: str | Path, resolved_config: Mapping[str, Any],
                   name: str | None = None) -> Tracker:
    """Start mirroring to W&B (files under `<run_dir>/wandb/`). Never raises for W&B problems."""
    cfg = _as_wandb_config(tracking_cfg)
    mode = resolve_mode(cfg.mode)
    if mode == "disabled":
        return Tracker(None, "disabled")
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        import wandb
        settings = wandb.Settings(init_timeout=cfg.init_timeout_s, x_disable_stats=True,
                                  console="off", silent=True, disable_git=True, save_code=False)
        run = wandb.init(mode=mode, dir=str(run_dir), project=cfg.project, entity=cfg.entity,
                         group=cfg.group, tags=cfg.tags or None, job_type=cfg.job_type,
                         name=name or run_dir.name, config=dict(resolved_config or {}),
                         settings=settings, reinit="create_new")
    except Exception as e:
        warnings.warn(f"W&B failed to start in {mode} mode ({e!r}); continuing without it "
                      f"(metrics.jsonl still has everything; set tracking=disabled to silence this)",
                      RuntimeWarning, stacklevel=2)
        return Tracker(None, "disabled")
    return Tracker(run, mode)


# --- reading an offline run back (tests, debugging; no account or network) -------------------

_BLOCK = 32768        # the .wandb file is a LevelDB-style log: 32 KiB blocks of framed records
_HEADER = 7           # file header ":W&B" + magic (2) + version (1); record header crc32, len, type


def _records(path: Path):
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file (bad header {data[:4]!r})")
    i, pending = _HEADER, b""
    while i + _HEADER <= len(data):
        left = _BLOCK - i % _BLOCK
        if left < _HEADER:           # block trailer padding
            i += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[i:i + _HEADER])
        i += _HEADER
        payload, i = data[i:i + length], i + length
        if kind == 0 and length == 0:
            i += _BLOCK - i % _BLOCK   # zero padding: skip to the next block
            continue
        if kind == 1:                  # FULL
            yield payload
        elif kind == 2:                # FIRST
            pending = payload
        elif kind == 3:                # MIDDLE
            pending += payload
        elif kind == 4:                # LAST
            yield pending + payload
            pending = b""


def read_offline_run(offline_run_dir: str | Path) -> dict[str, Any]:
    """Config and history of an offline run folder (`.../wandb/offline-run-*`), from its .wandb file.

    Returns `{"run_id", "config": {...}, "history": [{"_step": n, key: value, ...}, ...],
    "finished": bool}` (finished: the run's exit record is in the file).
    """
    from wandb.proto import wandb_internal_pb2 as pb

    folder = Path(offline_run_dir)
    files = sorted(folder.glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {folder}; is this an offline W&B run folder?")
    out: dict[str, Any] = {"run_id": None, "config": {}, "history": [], "finished": False}

    def key_of(item) -> str:
        return item.key or "/".join(item.nested_key)

    for raw in _records(files[0]):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out["run_id"] = rec.run.run_id
            for item in rec.run.config.update:
                out["config"][key_of(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in rec.config.update:
                out["config"][key_of(item)] = json.loads(item.value_json)
        elif kind == "history":
            out["history"].append({key_of(it): json.loads(it.value_json) for it in rec.history.item})
        elif kind == "exit":
            out["finished"] = True
    # W&B wraps config values as {"value": v}; unwrap them for the reader.
    out["config"] = {k: (v["value"] if isinstance(v, dict) and set(v) == {"value"} else v)
                     for k, v in out["config"].items() if k != "_wandb"}
    return out


def offline_runs(run_dir: str | Path) -> list[Path]:
    """The offline W&B run folders under a run directory, oldest first."""
    return sorted((Path(run_dir) / "wandb").glob("offline-run-*"))
