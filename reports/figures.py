"""The report's plots. Each function writes one PNG and returns its path; a plot with nothing to
show says so in the picture rather than going missing.

Figures are made with matplotlib's object API (`Figure`, rendered by Agg), never pyplot: no
display is needed, no backend is switched for the caller, and the agent loop may draw the report
from a background thread without touching pyplot's global state.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from experiment_tree.format import clip, colour_class, first_line, headline, node_label
from experiment_tree.html import COLOURS
from experiment_tree.layout import layout
from experiment_tree.records import Node
from reports.ladder_elos import Ladder

DPI = 110


def _save(fig, path: Path, dpi: int = DPI) -> Path:
    """Save atomically (a browser reloading the report never sees half a PNG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=dpi, bbox_inches=None if fig.get_layout_engine() else "tight")
    os.replace(tmp, path)
    return path


def _subplots(nrows: int = 1, ncols: int = 1, figsize=(8, 5), layout=None, **kw):
    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, **kw)


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#667")
    ax.set_xticks([])
    ax.set_yticks([])


def _run_colours(node_ids: list[int]) -> dict[int, tuple]:
    cmap = matplotlib.colormaps["tab10" if len(node_ids) <= 10 else "tab20"]
    return {nid: cmap(i % cmap.N) for i, nid in enumerate(node_ids)}


def _split_runs(curves: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """Each run's rows, sorted by iteration (split once; panels reuse it)."""
    if not len(curves):
        return {}
    return {int(nid): d.sort_values("iteration") for nid, d in curves.groupby("node", sort=True)}


def _xy(d: pd.DataFrame, xkey: str, ykey: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = d[xkey].to_numpy(float), d[ykey].to_numpy(float)
    ok = ~(np.isnan(x) | np.isnan(y))
    return x[ok], y[ok]


def _curve_panel(ax, runs: dict[int, pd.DataFrame], colours: dict, xkey: str, xlabel: str,
                 ykey: str) -> None:
    """One panel: `ykey` against `xkey` for every run (losses as three line styles)."""
    drawn = False
    many = len(runs) > MAX_LEGEND      # a sweep: thin lines, no bands, so the panel stays legible
    lw = 0.8 if many else 1.5
    for nid, d in runs.items():
        c = colours[nid]
        if ykey == "loss":
            for key, style in (("loss", "-"), ("policy_loss", "--"), ("value_loss", ":")):
                x, y = _xy(d, xkey, key)
                if len(x):
                    ax.plot(x, y, style, color=c, lw=lw, label=f"#{nid}" if key == "loss" else None)
                    drawn = True
            continue
        x, y = _xy(d, xkey, ykey)
        if not len(x):
            continue
        ax.plot(x, y, "-", marker=None if many else "o", ms=3, lw=lw, color=c, label=f"#{nid}")
        if ykey == "elo" and not many:
            band = d[[xkey, "elo_lo", "elo_hi"]].dropna()
            if len(band):
                ax.fill_between(band[xkey].to_numpy(float), band["elo_lo"].to_numpy(float),
                                band["elo_hi"].to_numpy(float), color=c, alpha=0.15)
        drawn = True
    name = ykey.replace("_vs_ref", "")
    note = " (solid total, dashed policy, dotted value)" if ykey == "loss" else ""
    ax.set_title(f"{name} vs {xlabel}{note}", fontsize=9)
    if not drawn:
        _empty(ax, f"no {name} recorded against {xkey} yet")
        return
    ax.set_xlabel(xlabel, fontsize=9)
    ax.grid(alpha=0.3)
    if ykey == "winrate_vs_ref":
        ax.set_ylim(-0.02, 1.02)


CURVES = ("loss", "elo", "winrate_vs_ref")
MAX_LEGEND = 24          # runs named in the learning-curve legend
MAX_BOXES = 40           # tree columns drawn as labelled boxes; wider trees are drawn as dots
MAX_FIG_IN = 60.0        # no figure side longer than this (inches): a 500-trial sweep stays drawable
X_AXES = (("iteration", "iteration"), ("wall_s", "compute (wall s)"))


def curve_panels(curves: pd.DataFrame) -> tuple[list[tuple[str, str]], list[str]]:
    """The x axes (rows) and y keys (columns) that have anything to draw: a run that logs no
    per-iteration Elo gets no Elo column, rather than an empty panel."""
    def has(key: str) -> bool:
        return key in curves and bool(pd.to_numeric(curves[key], errors="coerce").notna().any())
    cols = [k for k in CURVES
            if has(k) or (k == "loss" and (has("policy_loss") or has("value_loss")))]
    rows = [(k, label) for k, label in X_AXES if k == "iteration" or has(k)]
    return rows, cols


def learning_curves(curves: pd.DataFrame, path: Path, title: str = "Learning curves") -> Path | None:
    """Every run's losses, Elo (with its 95% band) and win rate against iteration (top row) and
    against compute in wall seconds (bottom row); one colour per run. Only the panels with data
    are drawn; None (no file) when no run has logged anything yet."""
    rows, cols = curve_panels(curves) if len(curves) else ([], [])
    if not cols:
        path.unlink(missing_ok=True)
        return None
    fig, axes = _subplots(len(rows), len(cols), figsize=(5 * len(cols), 4.2 * len(rows) + 0.2),
                          squeeze=False, layout="constrained")
    fig.suptitle(title)
    runs = _split_runs(curves)
    ids = list(runs)
    colours = _run_colours(ids)
    for row, (xkey, xlabel) in enumerate(rows):
        for col, ykey in enumerate(cols):
            _curve_panel(axes[row][col], runs, colours, xkey, xlabel, ykey)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes.flat[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles and len(handles) <= MAX_LEGEND:
        fig.legend(handles, labels, loc="outside right center", title="node", fontsize=8)
    elif handles:   # a sweep's hundred runs: a legend would be taller than the figure
        fig.text(0.995, 0.5, f"{len(ids)} runs\n(one colour each;\nsee the per-run figures)",
                 ha="right", va="center", fontsize=8)
    return _save(fig, path)


def run_curves(curves: pd.DataFrame, node_id: int, path: Path) -> Path:
    """One run's losses, Elo and win rate against iteration, with wall seconds on a top axis
    (a small figure: the report draws one per run)."""
    d = curves[curves["node"] == node_id].sort_values("iteration")
    cols = curve_panels(d)[1] or ["loss"]
    fig, axes = _subplots(1, len(cols), figsize=(4 * len(cols), 3.4), squeeze=False)
    axes = axes[0]
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.15, top=0.74, wspace=0.22)
    fig.suptitle(f"Node #{node_id}", fontsize=10)
    for ax, ykey in zip(axes, cols):
        _curve_panel(ax, {node_id: d}, {node_id: "#1f77b4"}, "iteration", "iteration", ykey)
    spans = d.dropna(subset=["iteration", "wall_s"])
    if len(spans) >= 2:   # the compute axis: wall seconds at the ticks of the iteration axis
        it, wall = spans["iteration"].to_numpy(float), spans["wall_s"].to_numpy(float)
        order = np.argsort(it)
        for ax in axes:
            if ax.lines:
                top = ax.secondary_xaxis(
                    "top", functions=(lambda x, i=it[order], w=wall[order]: np.interp(x, i, w),
                                      lambda x, i=it[order], w=wall[order]: np.interp(x, w, i)))
                top.set_xlabel("compute (wall s)", fontsize=8, labelpad=2)
                top.tick_params(labelsize=7)
                ax.set_title(ax.get_title(), fontsize=9, pad=30)
    return _save(fig, path, dpi=80)


def node_strength(nodes: list[Node], frame: pd.DataFrame, path: Path,
                  ladder: Ladder | None = None) -> Path:
    """Every node's Elo (left) and win rate vs the reference (right), with 95% intervals,
    coloured by verdict; nodes without a measurement are listed as such."""
    n = max(len(frame), 1)
    fig, (ax_e, ax_w) = _subplots(1, 2, figsize=(13, min(MAX_FIG_IN, 1.6 + 0.42 * n)),
                                  squeeze=True, layout="constrained")
    label_size = 8 if n <= 60 else max(3.0, 8 * 60 / n)
    labels = [f"#{r.node} {r.status}" for r in frame.itertuples()]
    ys = list(range(len(frame)))[::-1]
    for ax, key, lo, hi, name in ((ax_e, "elo", "elo_lo", "elo_hi", "Elo"),
                                  (ax_w, "winrate", "winrate_lo", "winrate_hi", "win rate vs reference")):
        y_all = np.asarray(ys, float)
        v_all = pd.to_numeric(frame[key], errors="coerce").to_numpy(float)
        lo_all = pd.to_numeric(frame[lo], errors="coerce").to_numpy(float)
        hi_all = pd.to_numeric(frame[hi], errors="coerce").to_numpy(float)
        measured = ~np.isnan(v_all)
        any_drawn = bool(measured.any())
        for cls in frame["colour"].unique():       # one errorbar call per colour: fast for sweeps
            m = measured & (frame["colour"] == cls).to_numpy()
            if not m.any():
                continue
            err = np.vstack([v_all[m] - lo_all[m], hi_all[m] - v_all[m]])
            err = np.where(np.isnan(err), 0.0, np.maximum(err, 0.0))
            ax.errorbar(v_all[m], y_all[m], xerr=err, fmt="o", color=COLOURS.get(cls, "#555"),
                        capsize=4 if n <= 60 else 1.5, ms=6 if n <= 60 else 3)
        for y, r, ok in zip(ys, frame.itertuples(), measured):
            if not ok and n <= 60:          # beyond that the empty row says it
                ax.text(0.01, y, "crashed" if r.colour == "crashed" else "not measured",
                        transform=ax.get_yaxis_transform(), va="center", fontsize=label_size,
                        color="#889")
        ax.set_yticks(ys)
        ax.set_yticklabels(labels if ax is ax_e else [], fontsize=label_size)
        ax.set_ylim(-0.7, len(frame) - 0.3)
        ax.set_title(name + " (95% CI)", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        if key == "winrate":
            ax.set_xlim(0, 1)
        if key == "elo" and ladder and any_drawn:
            for rung, v in ladder.items():
                ax.axvline(v["elo"], color="#bbb", lw=0.8, ls="--", zorder=0)
                ax.text(v["elo"], 1.0, rung, rotation=90, fontsize=7, color="#888", va="top",
                        transform=ax.get_xaxis_transform())
        if not any_drawn and len(frame) == 0:
            _empty(ax, "no nodes yet")
    handles = [Line2D([], [], marker="o", ls="", color=COLOURS[c], label=c)
               for c in ("better", "worse", "inconclusive", "baseline", "running")]
    fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize=8, frameon=False)
    return _save(fig, path)


def tree_diagram(nodes: list[Node], path: Path) -> Path:
    """The tree as boxes coloured by verdict (same layout and colours as tree.html)."""
    placed = layout(nodes)
    cols = max((p.x for p in placed), default=0) + 1
    depth = max((p.depth for p in placed), default=0) + 1
    compact = cols > MAX_BOXES
    width = min(MAX_FIG_IN, 0.18 * cols + 2) if compact else max(4.0, 2.3 * cols)
    fig, ax = _subplots(figsize=(width, min(MAX_FIG_IN, max(2.0, 1.25 * depth))))
    ax.set_axis_off()
    if not placed:
        _empty(ax, "no nodes yet")
        return _save(fig, path)
    pos = {p.node.id: (p.x, -p.depth) for p in placed}
    for p in placed:
        if p.node.parent_id in pos:
            (x0, y0), (x1, y1) = pos[p.node.parent_id], pos[p.node.id]
            gap = 0.05 if compact else 0.25
            ax.plot([x0, x0, x1, x1], [y0 - gap, (y0 + y1) / 2, (y0 + y1) / 2, y1 + gap],
                    color="#8895a7", lw=0.8 if compact else 1.2, zorder=1)
    if compact:   # too wide for labelled boxes: coloured dots with ids
        xs, ys = zip(*(pos[p.node.id] for p in placed))
        ax.scatter(xs, ys, s=40, zorder=2, c=[COLOURS[colour_class(p.node)] for p in placed])
        for p in placed:
            ax.text(pos[p.node.id][0], pos[p.node.id][1] - 0.12, str(p.node.id), ha="center",
                    va="top", fontsize=5, rotation=90)
        ax.set_xlim(-0.6, cols - 0.4)
        ax.set_ylim(-depth + 0.3, 0.5)
        return _save(fig, path)
    for p in placed:
        n, (x, y) = p.node, pos[p.node.id]
        cls = colour_class(n)
        metric = ("error: " + first_line(n.error, 24)) if cls == "crashed" else headline(n.metrics)
        label = f"#{n.id} {n.status}" + (f" · {n.verdict}" if n.verdict else "")
        text = "\n".join(t for t in (label, clip(metric, 28), clip(node_label(n), 28)) if t)
        ax.text(x, y, text, ha="center", va="center", fontsize=7.5, zorder=2,
                color="#1d2733" if cls == "pending" else "white",
                bbox=dict(boxstyle="round,pad=0.4", fc=COLOURS[cls], ec="none"))
    ax.set_xlim(-0.6, cols - 0.4)
    ax.set_ylim(-depth + 0.5, 0.5)
    return _save(fig, path)


def ladder_figure(ladder: Ladder, frame: pd.DataFrame, path: Path) -> Path:
    """The reference ladder's rungs (Elo with 95% CI) and where each measured node stands."""
    fig, ax = _subplots(figsize=(9, 4.8))
    if not ladder:
        _empty(ax, "no ladder calibration cached yet\n(it is measured once per machine by the "
                   "rating; run `research ladder`)")
        return _save(fig, path)
    names = list(ladder)
    for i, name in enumerate(names):
        v = ladder[name]
        ci = v.get("ci95")
        err = [[v["elo"] - ci[0]], [ci[1] - v["elo"]]] if ci else None
        ax.errorbar([0], [v["elo"]], yerr=err, fmt="s", color="#4a5a70", capsize=5)
        ax.axhline(v["elo"], color="#ccd", lw=0.8, zorder=0)
        ax.text(-0.08, v["elo"], f"{name}  {v['elo']:.0f}", ha="right", va="center", fontsize=8)
    measured = frame.dropna(subset=["elo"]) if len(frame) else frame
    step = 0.25 if len(measured) <= 40 else 10.0 / len(measured)
    xs = 1 + step * np.arange(len(measured))
    elo = measured["elo"].to_numpy(float)
    err = np.vstack([elo - measured["elo_lo"].to_numpy(float),
                     measured["elo_hi"].to_numpy(float) - elo]) if len(measured) else None
    err = None if err is None else np.where(np.isnan(err), 0.0, np.maximum(err, 0.0))
    for cls in measured["colour"].unique() if len(measured) else []:
        m = (measured["colour"] == cls).to_numpy()
        ax.errorbar(xs[m], elo[m], yerr=err[:, m], fmt="o", color=COLOURS.get(cls, "#555"),
                    capsize=3 if len(measured) <= 40 else 1, ms=6 if len(measured) <= 40 else 3)
    if len(measured) <= 40:
        for x, r in zip(xs, measured.itertuples()):
            ax.text(x, r.elo, f" #{r.node}", fontsize=7, va="bottom")
    ax.set_xlim(-1.2, 1.6 + step * max(len(measured), 1))
    ax.set_xticks([0] + ([1] if len(measured) else []))
    ax.set_xticklabels(["ladder"] + (["nodes"] if len(measured) else []))
    ax.set_ylabel("Elo (random = 0)")
    ax.set_title("Reference ladder and the nodes' strength (95% CI)", fontsize=10)
    ax.grid(axis="y", alpha=0.2)
    return _save(fig, path)


def xy_figure(result, path: Path) -> Path:
    """y against x with 95% intervals, one point per arm pooled over its seeds (`reports.xy`), one
    line per value of the second factor, the fitted trend dashed; an arm with one seed and no
    interval is drawn hollow, and each point is labelled with its seed count."""
    fig, ax = _subplots(figsize=(8, 5), layout="constrained")
    series: dict = {}
    for p in result.points:
        if p.y is not None and isinstance(p.x, (int, float)) and not isinstance(p.x, bool):
            series.setdefault(p.x2 if result.x2_key else None, []).append(p)
    cmap = matplotlib.colormaps["tab10"]
    def order(kv):   # numbers in numeric order, anything else after them by name
        k = kv[0]
        return (0, k, "") if isinstance(k, (int, float)) and not isinstance(k, bool) else (1, 0, str(k))
    for i, (x2, pts) in enumerate(sorted(series.items(), key=order)):
        pts = sorted(pts, key=lambda p: p.x)
        colour = cmap(i % cmap.N)
        xs = np.array([p.x for p in pts], float)
        ys = np.array([p.y for p in pts], float)
        lo = np.array([p.lo if p.lo is not None else p.y for p in pts], float)
        hi = np.array([p.hi if p.hi is not None else p.y for p in pts], float)
        name = f"{result.x2_key}={x2}" if result.x2_key else result.y
        ax.plot(xs, ys, "-", color=colour, lw=1.2, alpha=0.6)
        ax.errorbar(xs, ys, yerr=np.vstack([ys - lo, hi - ys]), fmt="o", color=colour, capsize=5,
                    ms=7, label=name)
        for p in pts:
            if p.lo is None:
                ax.plot([p.x], [p.y], "o", ms=11, mfc="white", mec=colour, zorder=3)
            tag = f"{'baseline, ' if p.baseline else ''}n={p.seeds}"
            ax.annotate(tag, (p.x, p.y), textcoords="offset points", xytext=(7, 4), fontsize=8,
                        color="#445")
        t = result.trends.get(x2)
        if t is not None and len(xs) >= 2:
            fx = np.linspace(xs.min(), xs.max(), 50)
            u = np.log2(fx) if t.log_x else fx
            ux = np.log2(xs) if t.log_x else xs
            w = np.array([1 / p.se ** 2 if p.se else 1.0 for p in pts])
            centre_x, centre_y = np.average(ux, weights=w), np.average(ys, weights=w)
            ax.plot(fx, centre_y + t.slope * (u - centre_x), "--", color=colour, lw=1,
                    label=f"trend{f' ({name})' if result.x2_key else ''}: {t.word}")
    if not series:
        _empty(ax, f"no arm has a measured {result.y} yet")
        return _save(fig, path)
    if result.log_x:
        ax.set_xscale("log", base=2)
    xs_all = sorted({p.x for pts in series.values() for p in pts})
    ax.set_xticks(xs_all)
    ax.set_xticklabels([f"{v:g}" for v in xs_all])
    ax.minorticks_off()
    ax.set_xlabel(result.x_key)
    ax.set_ylabel("Elo (ladder scale, random = 0)" if result.y == "elo" else result.y, fontsize=9)
    if result.y == "elo" and any(p.vs for p in result.points):
        fig.supxlabel("Arms judged head-to-head: the ladder Elo of the arm they were measured "
                      "against + the difference; their interval is the difference's.",
                      fontsize=7.5, color="#445")
    ax.set_title(f"{result.y} vs {result.x_key}: 95% intervals, pooled over each arm's seeds (n)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def calibration_figure(by_proposer: dict[str, list], path: Path) -> Path:
    """Forecast Elo difference (dot, 80% interval as a bar) against the measured one, one colour
    per proposer; the diagonal is a perfect forecast. Forecasts without a measured difference are
    left out of the figure (they still count in the table's log score)."""
    fig, ax = _subplots(figsize=(6.5, 5))
    lo_all, hi_all = [], []
    for i, (by, rows) in enumerate(sorted(by_proposer.items())):
        pts = [(f, s) for _, f, s in rows if s.diff_elo is not None]
        if not pts:
            continue
        x = np.array([s.diff_elo for _, s in pts])
        y = np.array([f.diff_elo for f, _ in pts])
        yerr = np.array([[f.diff_elo - f.lo80 for f, _ in pts], [f.hi80 - f.diff_elo for f, _ in pts]])
        hits = sum(1 for _, s in pts if s.hit)
        ax.errorbar(x, y, yerr=yerr, fmt="o", capsize=3, color=f"C{i}",
                    label=f"{by}: {hits}/{len(pts)} inside the 80% interval")
        lo_all += [x.min(), (y - yerr[0]).min()]
        hi_all += [x.max(), (y + yerr[1]).max()]
    if lo_all:
        lo, hi = min(lo_all) - 20, max(hi_all) + 20
        ax.plot([lo, hi], [lo, hi], color="#888", lw=1, ls="--", label="forecast = measured")
        ax.legend(fontsize=8, loc="upper left")
    else:
        _empty(ax, "no scored forecast has a measured difference")
    ax.set_xlabel("measured Elo difference vs parent (head-to-head)")
    ax.set_ylabel("forecast Elo difference (80% interval)")
    ax.set_title("Forecast calibration")
    return _save(fig, path)
