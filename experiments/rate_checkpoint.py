"""Rate a checkpoint against the reference ladder: `python -m experiments.rate_checkpoint checkpoint=PATH`.

The job writes one run directory (Hydra's `hydra.run.dir`): `games/` (every game as SGF),
`rating.json` (per-rung results and every game's end reason), `log.txt`, and last `summary.json`
with `metrics: {winrate_vs_ref, winrate_ci95, games_vs_ref, elo, elo_ci95}` and `reference`.

`rate_checkpoint(...)` is the same step as a function; the training job calls it at the end of
every run. `quick_elo(...)` is a cheaper estimate (a few games against one rung) for use per
iteration.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from go_core.arena.calibration import ladder_elos
from go_core.arena.rating_walk import rate_candidate
from go_core.arena.rungs import RatingConfig, our_player_command, repo_env, rung_player
from go_core.arena.match import PlayerSpec, play_match
from go_core.arena.elo import fit_elo
from go_core.arena.stats import win_rate

CANDIDATE = "candidate"


def as_rating_config(rating_cfg: Any) -> RatingConfig:
    """RatingConfig from a RatingConfig, a plain dict or Hydra's DictConfig of the `rating` group."""
    if isinstance(rating_cfg, RatingConfig):
        return rating_cfg
    if rating_cfg is None:
        rating_cfg = load_default_rating_dict()
    if not isinstance(rating_cfg, dict):
        from omegaconf import OmegaConf
        rating_cfg = OmegaConf.to_container(rating_cfg, resolve=True)
    return RatingConfig.from_dict(rating_cfg)


def register_schema() -> None:
    """Store RatingConfig as `rating/schema`, which conf/rating/*.yaml extend. experiments/config.py
    stores it too, for the training job; this module does it itself because the referee composes
    the rating group from its pinned copy, without the learner's experiments/config.py."""
    from hydra.core.config_store import ConfigStore
    ConfigStore.instance().store(group="rating", name="schema", node=RatingConfig)


def load_default_rating_dict(name: str = "default") -> dict[str, Any]:
    """The `rating` group option `name` from conf/, composed by Hydra (for callers without Hydra)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    register_schema()

    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        cfg = compose(config_name="rate_checkpoint", overrides=[f"rating={name}", "checkpoint=unused"])
    return OmegaConf.to_container(cfg.rating, resolve=True)


def candidate_player(cfg: RatingConfig, checkpoint_path: str | os.PathLike, device: str | None = None,
                     name: str = CANDIDATE) -> PlayerSpec:
    """The checkpoint as a GTP engine (`python -m go_core.arena.gtp_server --player mcts ...`)."""
    path = Path(checkpoint_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist (give checkpoint=PATH to a .pt file)")
    dev = None if device in (None, "auto") else device
    argv = our_player_command(cfg.candidate_player, str(path.resolve()), cfg.candidate_visits, dev)
    return PlayerSpec(name=name, argv=argv, env=repo_env())


def rate_checkpoint(rating_cfg: Any, checkpoint_path: str | os.PathLike, run_dir: str | os.PathLike,
                        board_size: int = 9, komi: float = 7.0, device: str | None = None,
                        log: Callable[[str], None] = print, start_elo: float | None = None) -> dict[str, Any]:
    """Play the checkpoint against the ladder and return the metrics for `summary.json`.

    Keys: winrate_vs_ref, winrate_ci95, games_vs_ref, elo, elo_ci95, reference, rungs (per rung),
    colour_advantage, ladder_source (calibration | defaults), games, failures, rating_seconds.
    Writes `games/*.sgf` (if rating.save_sgf) and `rating.json` into run_dir. `start_elo` (e.g. the
    parent run's Elo) starts the adaptive walk at the nearest rung instead of the middle.
    """
    cfg = as_rating_config(rating_cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    cand = candidate_player(cfg, checkpoint_path, device)
    sgf_dir = str(run_dir / "games") if cfg.save_sgf else None
    out = rate_candidate(cand, cfg, board_size=board_size, komi=komi, sgf_dir=sgf_dir, log=log,
                             start_elo=start_elo)
    out["rating_seconds"] = round(time.monotonic() - t0, 1)
    (run_dir / "rating.json").write_text(json.dumps(out, indent=1))
    return out


def quick_elo(rating_cfg: Any, checkpoint_path: str | os.PathLike, board_size: int = 9, komi: float = 7.0,
              games: int = 4, near_elo: float | None = None, run_dir: str | os.PathLike | None = None,
              device: str | None = None, sgf_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """A cheap Elo estimate: `games` games against the one rung closest to `near_elo`
    (the reference when None). Returns elo, elo_ci95, rung, score, games, failures (games the
    candidate lost by crashing, timing out or an illegal move). Raises RuntimeError when every
    game was lost that way: that measures a broken engine, not a weak net.
    Games are saved as SGF (if rating.save_sgf) in `sgf_dir`, else in run_dir/games when run_dir is given."""
    cfg = as_rating_config(rating_cfg)
    elos, sds, source = ladder_elos(cfg)
    rung = cfg.rung(cfg.reference) if near_elo is None else min(
        (r for r in cfg.rungs if r.name in elos), key=lambda r: abs(elos[r.name] - near_elo))
    cand = candidate_player(cfg, checkpoint_path, device)
    if sgf_dir is None and run_dir:
        sgf_dir = Path(run_dir) / "games"
    sgf_dir = str(sgf_dir) if (sgf_dir and cfg.save_sgf) else None
    res = play_match(cand, rung_player(rung), cfg.match_config(games, board_size, komi), sgf_dir=sgf_dir)
    failed = [g for g in res.games if g.failure and g.winner != CANDIDATE]
    if res.games and len(failed) == len(res.games):
        raise RuntimeError(f"every game against {rung.name} was lost by a failure of the candidate "
                           f"({failed[0].reason}: {failed[0].detail[:300]})")
    fit = fit_elo([(g.black, g.white, g.black_score) for g in res.games], anchors={rung.name: elos[rung.name]},
                  anchor_sd={rung.name: sds[rung.name]}, prior_draws=cfg.prior_draws)
    wr = win_rate(g.score_for(CANDIDATE) for g in res.games)
    lo, hi = fit.ci95[CANDIDATE]
    return {"elo": round(fit.ratings[CANDIDATE], 1), "elo_ci95": [round(lo, 1), round(hi, 1)],
            "rung": rung.name, "score": wr.wins, "games": wr.games, "failures": len(failed),
            "ladder_source": source,
            "seconds": round(res.seconds, 1)}


def _cpu_s() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run(cfg) -> int:
    """The Hydra job body: rate, then write summary.json (status ok, or crash with the error)."""
    from experiments.rundir import write_summary

    run_dir = Path(os.getcwd())
    try:
        from hydra.core.hydra_config import HydraConfig
        run_dir = Path(HydraConfig.get().runtime.output_dir)
    except Exception:
        pass
    log_file = open(run_dir / "log.txt", "a")

    def log(msg: str) -> None:
        print(msg, flush=True)
        log_file.write(msg + "\n")
        log_file.flush()

    t0 = time.monotonic()
    ckpt = str(cfg.checkpoint)
    compute = lambda: {"wall_s": round(time.monotonic() - t0, 1), "cpu_s": round(_cpu_s(), 1),
                       "gpu_s": 0.0, "device": str(cfg.get("device", "auto"))}
    try:
        metrics = rate_checkpoint(cfg.rating, ckpt, run_dir, board_size=int(cfg.board.size),
                                      komi=float(cfg.board.komi), device=cfg.get("device"), log=log)
        summary_metrics = {k: metrics[k] for k in ("winrate_vs_ref", "winrate_ci95", "games_vs_ref",
                                                    "elo", "elo_ci95")}
        write_summary(run_dir, "ok", metrics=summary_metrics, reference=metrics["reference"],
                      compute=compute(), checkpoint=ckpt, rating=metrics)
        log(f"[rating] winrate vs {metrics['reference']}: {metrics['winrate_vs_ref']:.2f} "
            f"{metrics['winrate_ci95']} over {metrics['games_vs_ref']} games; Elo {metrics['elo']} "
            f"{metrics['elo_ci95']} (ladder from {metrics['ladder_source']})")
        return 0
    except Exception as e:
        tb = traceback.format_exc()
        log(tb)
        write_summary(run_dir, "crash", error=f"{e.__class__.__name__}: {e}", compute=compute(),
                      checkpoint=ckpt, traceback=tb[-4000:])
        return 1
    finally:
        log_file.close()


def main() -> None:
    import hydra

    conf = str(Path(__file__).resolve().parents[1] / "conf")
    register_schema()

    @hydra.main(config_path=conf, config_name="rate_checkpoint", version_base=None)
    def _main(cfg) -> None:
        rc = run(cfg)
        if rc:
            sys.exit(rc)

    _main()


if __name__ == "__main__":
    main()
