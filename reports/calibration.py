"""Forecast vs outcome, per proposer (issue 16): every proposal forecasts its Elo difference from
its parent with an 80% interval and P(better); once its verdict is in, the forecast is scored
(autoresearch/forecast.py). The report shows a figure (forecast with its interval against the
measured difference) and a table: per proposer, the 80%-interval hit rate with its Wilson 95%
interval, the mean log score of P(better) with its standard error, the mean Brier score, and the
number of forecasts scored."""
from __future__ import annotations

from typing import Any

from autoresearch.forecast import COIN_LOG_SCORE, calibration, scored

NOTHING = ("No calibration figure: no forecast has been scored yet (a forecast is scored once "
           "its node has a verdict against its parent).")


def rows_by_proposer(nodes: list[Any]) -> dict[str, list]:
    """Proposer name (the forecast's `by`) -> its (node, forecast, score) rows."""
    out: dict[str, list] = {}
    for row in scored(nodes):
        out.setdefault(row[1].by, []).append(row)
    return out


def calibration_table(nodes: list[Any]) -> list[dict[str, Any]]:
    """One row per proposer, every number with its interval or standard error and its n."""
    table = []
    for by, rows in rows_by_proposer(nodes).items():
        c = calibration(rows)
        table.append({
            "proposer": by, "scored": c.scored,
            "hit_80": (f"{c.hits}/{c.with_diff} = {c.hits / c.with_diff:.0%} "
                       f"[{c.hit_ci95[0]:.0%}, {c.hit_ci95[1]:.0%}]") if c.with_diff else "-",
            "log_score": (f"{c.mean_log_score:.2f}"
                          + (f" ± {c.log_score_se:.2f}" if c.log_score_se is not None else "")),
            "brier": f"{c.mean_brier:.3f}",
        })
    return table


TABLE_HEAD = ("proposer", "scored", "80% interval hits [95% CI] (calibrated: 80%)",
              f"mean log score ± SE (coin {COIN_LOG_SCORE:.2f}; higher better)",
              "mean Brier (coin 0.250; lower better)")


def table_markdown(table: list[dict[str, Any]]) -> list[str]:
    if not table:
        return []
    lines = ["| " + " | ".join(TABLE_HEAD) + " |", "|" + "---|" * len(TABLE_HEAD)]
    lines += [f"| {r['proposer']} | {r['scored']} | {r['hit_80']} | {r['log_score']} | {r['brier']} |"
              for r in table]
    return lines + [""]
