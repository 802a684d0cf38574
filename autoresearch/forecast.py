"""Forecast, then verify: every proposal predicts its Elo difference from its parent (a point, an
80% interval and P(better)); once the verdict is in, the forecast is scored. Pure functions:
the tree stores the forecast on the node (`nodes.forecast`), and a score is always recomputed
from the forecast and the verdict, so it can never drift from either.

Scores (lower is not better for all of them -- read the names):
- interval hit: the measured difference lies in the 80% interval. A calibrated forecaster hits
  about 80% of the time; far less means overconfident intervals.
- log score of P(better): ln p if the verdict is `better`, ln(1 - p) otherwise (higher is better;
  ln 0.5 = -0.69 is what a coin says, so a mean below that is worse than not guessing).
- Brier score of P(better): (p - [better])^2 (lower is better; 0.25 for a coin).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from go_core.arena.stats import wilson_interval

P_CLIP = 0.01        # P(better) is clipped to [P_CLIP, 1 - P_CLIP] before the log: one 0 or 1 is not -inf
COIN_LOG_SCORE = math.log(0.5)


@dataclass(frozen=True)
class Forecast:
    """What a proposer expects of a node vs its parent."""
    diff_elo: float                  # expected Elo difference child - parent (head-to-head)
    lo80: float                      # 80% interval of that difference
    hi80: float
    p_better: float                  # probability the verdict will be `better`
    by: str = "agent"                # who forecast: agent (the model) | planner-prior | ...

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Forecast":
        return cls(float(d["diff_elo"]), float(d["lo80"]), float(d["hi80"]), float(d["p_better"]),
                   str(d.get("by", "agent")))

    def text(self) -> str:
        return (f"{self.diff_elo:+.0f} Elo, 80% [{self.lo80:+.0f}, {self.hi80:+.0f}], "
                f"P(better) {self.p_better:.2f}")


def parse_forecast(raw: Any, by: str = "agent") -> Forecast:
    """A forecast from a tool call's `forecast` object; ValueError says what is wrong (the model
    reads it and tries again)."""
    if not isinstance(raw, dict):
        raise ValueError("forecast is required: {\"diff_elo\": expected Elo vs the parent, "
                         "\"interval_80\": [low, high], \"p_better\": 0..1}")
    try:
        diff = float(raw["diff_elo"])
        lo, hi = (float(x) for x in raw["interval_80"])
        p = float(raw["p_better"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"forecast needs diff_elo (number), interval_80 ([low, high]) and "
                         f"p_better (0..1); got {raw!r} ({type(e).__name__}: {e})") from None
    if not all(math.isfinite(x) for x in (diff, lo, hi, p)):
        raise ValueError("forecast numbers must be finite")
    if not lo <= diff <= hi:
        raise ValueError(f"forecast: diff_elo {diff:+.0f} must lie in its interval_80 "
                         f"[{lo:+.0f}, {hi:+.0f}]")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"forecast: p_better must be a probability in [0, 1], got {p}")
    return Forecast(diff, lo, hi, p, by)


def prior_forecast(mde_elo: float | None, fallback_elo: float = 100.0, by: str = "planner-prior"
                   ) -> Forecast:
    """The offline planner's stated prior: no effect expected, an 80% interval of +-(the minimum
    detectable difference), P(better) = 0.5 -- a forecast that knows nothing, on the same scale as
    the model's, so the two can be compared."""
    half = float(mde_elo) if mde_elo and mde_elo > 0 else float(fallback_elo)
    return Forecast(0.0, -half, half, 0.5, by)


@dataclass(frozen=True)
class ForecastScore:
    verdict: str                     # better | worse | inconclusive
    diff_elo: float | None           # the measured difference (None: no number to check against)
    hit: bool | None                 # diff_elo inside the 80% interval (None without diff_elo)
    log_score: float                 # ln P(the verdict's side of better / not better)
    brier: float                     # (p_better - [verdict == better])^2


def score(f: Forecast, verdict: str, diff_elo: float | None) -> ForecastScore:
    """Score one forecast against its node's verdict and measured difference."""
    if verdict not in ("better", "worse", "inconclusive"):
        raise ValueError(f"cannot score a forecast against verdict {verdict!r}")
    better = verdict == "better"
    p = min(1.0 - P_CLIP, max(P_CLIP, f.p_better))
    hit = None if diff_elo is None else bool(f.lo80 <= diff_elo <= f.hi80)
    return ForecastScore(verdict, diff_elo, hit, math.log(p if better else 1.0 - p),
                         (f.p_better - (1.0 if better else 0.0)) ** 2)


def measured_diff(node: Any, parent: Any | None) -> float | None:
    """The verdict's Elo difference: the head-to-head record's `diff_elo` when the referee rated
    the pair, else the ladder Elo of the child minus its parent's (the legacy z-test path)."""
    rec = (node.metrics or {}).get("verdict_detail")
    if isinstance(rec, dict) and isinstance(rec.get("diff_elo"), (int, float)):
        return float(rec["diff_elo"])
    if parent is None:
        return None
    a, b = (node.metrics or {}).get("elo"), (parent.metrics or {}).get("elo")
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) - float(b)
    return None


def scored(nodes: Iterable[Any]) -> list[tuple[Any, Forecast, ForecastScore]]:
    """(node, forecast, score) for every node with a forecast and a verdict, in node order."""
    nodes = list(nodes)
    by_id = {n.id: n for n in nodes}
    out = []
    for n in nodes:
        if not n.forecast or n.verdict not in ("better", "worse", "inconclusive"):
            continue
        f = Forecast.from_json(n.forecast)
        out.append((n, f, score(f, n.verdict, measured_diff(n, by_id.get(n.parent_id)))))
    return out


@dataclass(frozen=True)
class Calibration:
    scored: int                      # forecasts with a verdict
    hits: int                        # of those with a measured difference, inside the 80% interval
    with_diff: int                   # forecasts that had a measured difference to check
    mean_log_score: float | None
    mean_brier: float | None
    hit_ci95: tuple[float, float] | None   # Wilson 95% interval of the hit rate
    log_score_se: float | None = None      # standard error of the mean log score (None below 2)

    def text(self) -> str:
        if not self.scored:
            return "Your forecasts so far: none scored yet (each is scored once its node has a verdict)."
        hits = (f"{self.hits}/{self.with_diff} measured differences inside your 80% intervals "
                f"(hit rate 95% CI [{self.hit_ci95[0]:.0%}, {self.hit_ci95[1]:.0%}]; calibrated "
                f"is 80%)" if self.with_diff and self.hit_ci95 else "no measured differences yet")
        se = f" +- {self.log_score_se:.2f} (SE)" if self.log_score_se is not None else ""
        return (f"Your forecasts so far ({self.scored} scored): {hits}; mean log score of "
                f"P(better) {self.mean_log_score:.2f}{se} (a coin scores {COIN_LOG_SCORE:.2f}; higher "
                f"is better); mean Brier {self.mean_brier:.3f} (a coin: 0.250; lower is better).")


def calibration(rows: list[tuple[Any, Forecast, ForecastScore]]) -> Calibration:
    if not rows:
        return Calibration(0, 0, 0, None, None, None)
    checked = [s for _, _, s in rows if s.hit is not None]
    hits = sum(1 for s in checked if s.hit)
    logs = [s.log_score for _, _, s in rows]
    mean = sum(logs) / len(logs)
    se = (math.sqrt(sum((x - mean) ** 2 for x in logs) / (len(logs) - 1) / len(logs))
          if len(logs) > 1 else None)
    return Calibration(len(rows), hits, len(checked), mean,
                       sum(s.brier for _, _, s in rows) / len(rows),
                       wilson_interval(hits, len(checked)) if checked else None, se)


def forecast_lines(rows: list[tuple[Any, Forecast, ForecastScore]]) -> list[str]:
    """One line per scored forecast, for the digest the model reads."""
    out = []
    for n, f, s in rows:
        got = f"{s.diff_elo:+.0f} Elo" if s.diff_elo is not None else "no difference measured"
        hit = {True: "inside", False: "OUTSIDE", None: "-"}[s.hit]
        out.append(f"  #{n.id}: forecast {f.text()} ({f.by}); got {s.verdict}, {got} ({hit} the "
                   f"interval); log score {s.log_score:.2f}")
    return out


def calibration_text(nodes: Iterable[Any]) -> str:
    rows = scored(nodes)
    return "\n".join([calibration(rows).text(), *forecast_lines(rows)])
