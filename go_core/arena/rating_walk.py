"""Rating a candidate on the reference ladder: an adaptive walk over the calibrated rungs.

`rate_candidate` starts at the middle rung (or the reference, or the rung nearest a prior
estimate), and after each batch of games moves to the unplayed rung closest to the candidate's
current estimate, so only rungs near its strength are played; the candidate's Elo is fitted with
the rung Elos fixed (their calibration uncertainty, from `go_core.arena.calibration`, propagated
into its interval).
"""
from __future__ import annotations

from typing import Any, Callable

from go_core.arena.calibration import ladder_elos
from go_core.arena.elo import fit_elo
from go_core.arena.match import MatchGame, PlayerSpec, play_match
from go_core.arena.rungs import RatingConfig, RungConfig, rung_player
from go_core.arena.stats import win_rate


def rate_candidate(candidate: PlayerSpec, cfg: RatingConfig, board_size: int = 9, komi: float = 7.0,
                       sgf_dir: str | None = None, log: Callable[[str], None] = print,
                       max_rungs: int | None = None, games_per_rung: int | None = None,
                       games_vs_reference: int | None = None, start: str | None = None,
                       start_elo: float | None = None,
                       anchors: tuple[dict, dict, str] | None = None) -> dict[str, Any]:
    """Rate `candidate` against the ladder (see the module docstring); returns the metrics dict.

    `anchors` (rung Elos, their sds, where they came from): the scale a question started with, so
    a parent and its child are rated on the same scale even if the ladder is recalibrated between
    them; None reads this machine's calibration for `board_size` and `komi`.

    The walk starts at the middle rung (or the reference, `start`), or at the rung closest to
    `start_elo` when a prior estimate is known; the reference always gets `games_vs_reference`.

    Keys: winrate_vs_ref, winrate_ci95, games_vs_ref, elo, elo_ci95, reference, rungs (per rung:
    elo of the rung, games, score, win rate and interval), colour_advantage, ladder_source,
    failures (games lost by a crash/timeout/illegal move of either side), games (all records).
    """
    elos, sds, source = anchors if anchors is not None else ladder_elos(cfg, board_size, komi)
    playable = [r for r in cfg.rungs if r.name in elos]
    if cfg.reference not in elos:
        raise ValueError(f"reference rung {cfg.reference!r} has no Elo: calibrate the ladder "
                         "(`research ladder calibrate`) or give it elo_default in conf/rating/ladder/")
    if candidate.name in elos:
        raise ValueError(f"candidate name {candidate.name!r} clashes with a rung name")
    max_rungs = max_rungs or cfg.max_rungs
    per_rung = games_per_rung or cfg.games_per_rung
    n_ref = cfg.games_vs_reference if games_vs_reference is None else games_vs_reference
    order = sorted(playable, key=lambda r: elos[r.name])
    start = start or cfg.start
    if start_elo is not None:  # a prior estimate (e.g. the parent run's Elo) beats the middle
        first = min(order, key=lambda r: abs(elos[r.name] - start_elo))
    elif start == "middle":
        first = order[len(order) // 2]
    elif start == "reference":
        first = cfg.rung(cfg.reference)
    else:
        raise ValueError(f"rating.start must be middle or reference, got {start!r}")
    played: dict[str, list[MatchGame]] = {}
    all_games: list[MatchGame] = []

    def play(rung: RungConfig, n: int) -> None:
        if n <= 0:
            return
        already = len(played.get(rung.name, []))
        res = play_match(candidate, rung_player(rung), cfg.match_config(n, board_size, komi),
                         sgf_dir=sgf_dir, first_index=already)
        played.setdefault(rung.name, []).extend(res.games)
        all_games.extend(res.games)
        wr = res.win_rate(candidate.name)
        log(f"[rating] vs {rung.name} (Elo {elos[rung.name]:.0f}): {wr.wins:g}/{wr.games} "
            f"in {res.seconds:.0f} s {res.reasons()}")

    def estimate() -> float:
        fit = fit_elo([(g.black, g.white, g.black_score) for g in all_games],
                      anchors={n: elos[n] for n in played}, prior_draws=cfg.prior_draws)
        return fit.ratings[candidate.name]

    rung = first
    while True:
        play(rung, n_ref if rung.name == cfg.reference else per_rung)
        if len(played) >= max_rungs:
            break
        est = estimate()
        rest = [r for r in order if r.name not in played]
        # A clean sweep says which way to go even where the prior-pulled estimate does not.
        score = sum(g.score_for(candidate.name) for g in all_games)
        if score == 0:      # lost everything: only weaker rungs can tell more
            rest = [r for r in rest if elos[r.name] < min(elos[n] for n in played)]
        elif score == len(all_games):
            rest = [r for r in rest if elos[r.name] > max(elos[n] for n in played)]
        if not rest:
            break
        rung = min(rest, key=lambda r: abs(elos[r.name] - est))
    if cfg.reference not in played or len(played[cfg.reference]) < n_ref:
        play(cfg.rung(cfg.reference), n_ref - len(played.get(cfg.reference, [])))

    own = [g for g in all_games if g.failure and g.winner != candidate.name]
    if all_games and len(own) == len(all_games):
        raise RuntimeError(f"the candidate {candidate.name!r} failed in every game ({own[0].reason}): "
                           f"{own[0].detail[-1500:]}")
    anchors = {n: elos[n] for n in played}
    fit = fit_elo([(g.black, g.white, g.black_score) for g in all_games], anchors=anchors,
                  anchor_sd={n: sds[n] for n in played}, prior_draws=cfg.prior_draws)
    ref_games = played.get(cfg.reference, [])
    ref_wr = win_rate(g.score_for(candidate.name) for g in ref_games)
    per_rung_out = {}
    for name, gs in played.items():
        wr = win_rate(g.score_for(candidate.name) for g in gs)
        per_rung_out[name] = {"rung_elo": round(elos[name], 1), "games": wr.games, "score": wr.wins,
                              "winrate": wr.rate, "winrate_ci95": list(wr.ci95)}
    failures = [{"game": g.index, "black": g.black, "white": g.white, "reason": g.reason,
                 "detail": g.detail[:300]} for g in all_games if g.failure]
    lo, hi = fit.ci95[candidate.name]
    total = sum(g.score_for(candidate.name) for g in all_games)
    # With no win (or no loss) at all the data give only a bound: the estimate and its interval
    # then rest on the prior's virtual draws, and the truth may lie below (above) them.
    bound = "upper" if total == 0 else "lower" if total == len(all_games) else None
    return {
        "winrate_vs_ref": ref_wr.rate,
        "winrate_ci95": list(ref_wr.ci95),
        "games_vs_ref": ref_wr.games,
        "elo": round(fit.ratings[candidate.name], 1),
        "elo_ci95": [round(lo, 1), round(hi, 1)],
        "reference": cfg.reference,
        "rungs": per_rung_out,
        "colour_advantage": round(fit.colour_advantage, 1),
        "ladder_source": source,
        "games": len(all_games),
        "failures": failures,
        "elo_separated": fit.separated,
        "elo_bound": bound,
    }
