"""A quick Elo estimate during training, so that sweeps can prune hopeless trials.

Every `rating.every_iters` iterations (0: never, the default) the training job calls
`maybe_rate` after saving `checkpoints/best.pt`; the dict it returns is merged into that
iteration's line of `metrics.jsonl`:

    {"elo": 412.3, "elo_ci95": [180.0, 650.1], "elo_rung": "gnugo-L1-rand50", "elo_games": 4,
     "elo_score": 1.0, "elo_s": 6.2}

`research sweep` reports `elo` per iteration to the Optuna pruner (conf/sweep/*.yaml:
`intermediate: elo`). The estimate is deliberately cheap: `rating.every_games` games (default 4) with
one engine pair against the single rung nearest the previous estimate (the first one starts near
`rating.every_start_elo`), the checkpoint playing as `rating.every_player` (default `policy`: one
forward pass a move, so starting the GTP subprocess costs more than its games). Its interval is
wide; it ranks trials at the same iteration, the end-of-run ladder rating gives the headline.

A rating that fails (no GNU Go, an engine that crashes on every move, ...) never stops the
training: it is logged and the line gets `{"elo_error": "..."}` instead.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Callable

from experiments.stop import Stopped, stop_in

# A stop request (the job's signal handler or safety limit) must stop the job, not be recorded
# as a failed rating.
_STOP_REQUESTS = (Stopped, KeyboardInterrupt, SystemExit)


def is_due(rating_cfg: Any, iteration: int) -> bool:
    """True when iteration `iteration` (1-based, the one just finished) gets a quick Elo."""
    every = int(_get(rating_cfg, "every_iters", 0) or 0)
    return every > 0 and iteration > 0 and iteration % every == 0


def last_elo(run_dir: Path) -> float | None:
    """The newest finite `elo` in run_dir/metrics.jsonl (a resumed run continues from it)."""
    from experiments.rundir import read_metrics

    for rec in reversed(read_metrics(Path(run_dir))):
        value = _finite(rec.get("elo"))
        if value is not None:
            return value
    return None


def maybe_rate(cfg: Any, run_dir: Path, iteration: int, checkpoint: Path, last: dict | None,
                   log: Callable[[str], None] = print) -> dict | None:
    """The quick Elo of `checkpoint` at `iteration`, or None when none is due.

    cfg is the training job's config (its `rating`, `board` and `device` are read); `last` is the
    previous return value (or None: then the last `elo` in metrics.jsonl, else
    `rating.every_start_elo`, picks the rung). Returns the keys to merge into the iteration's
    metrics: elo, elo_ci95, elo_rung, elo_games, elo_score, elo_s -- or elo_error (and elo_s)
    when the rating failed. Never raises, except to pass on a stop request.
    """
    rating_cfg = _get(cfg, "rating", None)
    if rating_cfg is None or not is_due(rating_cfg, iteration):
        return None
    t0 = time.monotonic()
    try:
        from experiments.rate_checkpoint import as_rating_config, quick_elo

        ecfg = as_rating_config(rating_cfg)
        if ecfg.every_player not in ("policy", "mcts"):
            raise ValueError(f"rating.every_player={ecfg.every_player!r} is not one of ['policy', 'mcts']")
        if ecfg.every_games < 1:
            raise ValueError(f"rating.every_games={ecfg.every_games} must be at least 1")
        # one engine pair: a second candidate process would cost another torch start-up
        ecfg = dataclasses.replace(ecfg, candidate_player=ecfg.every_player, workers=1)
        near = _finite(last.get("elo")) if isinstance(last, dict) else None
        if near is None:
            near = last_elo(run_dir)
        if near is None:
            near = float(ecfg.every_start_elo)
        res = quick_elo(ecfg, checkpoint, board_size=int(cfg.board.size), komi=float(cfg.board.komi),
                        games=int(ecfg.every_games), near_elo=near,
                        sgf_dir=Path(run_dir) / "games" / f"eval_it{iteration:04d}",
                        device=_get(cfg, "device", None))
    except _STOP_REQUESTS:
        raise
    except BaseException as e:  # noqa: BLE001 - a rating must never end the training
        if stop_in(e) is not None:   # a stop hidden behind a library's clean-up error
            raise
        error = f"{type(e).__name__}: {e}".strip()[:1000]
        log(f"iteration {iteration}: quick Elo failed, training goes on: {error}")
        return {"elo_error": error, "elo_s": round(time.monotonic() - t0, 1)}
    out = {"elo": res["elo"], "elo_ci95": res["elo_ci95"], "elo_rung": res["rung"],
           "elo_games": res["games"], "elo_score": res["score"], "elo_s": round(time.monotonic() - t0, 1)}
    if res.get("failures"):
        out["elo_failures"] = res["failures"]
    log(f"iteration {iteration}: quick Elo {out['elo']:.0f} {out['elo_ci95']} "
        f"({out['elo_score']:g}/{out['elo_games']} against {out['elo_rung']}, {out['elo_s']:.1f} s)")
    return out


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _get(cfg: Any, key: str, default: Any) -> Any:
    """cfg[key] for a dict, a DictConfig or a dataclass."""
    if cfg is None:
        return default
    if isinstance(cfg, dict):
        return cfg.get(key, default)
    getter = getattr(cfg, "get", None)
    if callable(getter):
        return getter(key, default)
    return getattr(cfg, key, default)
