"""Bradley–Terry Elo fitted by maximum likelihood over games on record, with 95% intervals.

Model: black scores 1 with probability  P = sigmoid((r_black - r_white + h) / s),  s = 400 / ln 10,
where r are Elo ratings and h is black's colour advantage in Elo (fitted jointly, so that colour
and strength are not confused). A draw counts as half a win and half a loss. Some players are
*anchors* with fixed ratings (by definition `random` = 0); the others are fitted.

Perfect separation. When one group of players won every game against another (random vs GNU Go
is a blowout), the plain maximum-likelihood gap is infinite. We fit the *penalised* likelihood of
BayesElo instead: every pair of players that met gets `prior_draws` virtual drawn games (default 1).
That keeps every rating finite and barely moves well-measured gaps (1 virtual game among 40 real
ones), but across a separation the gap is then set by the prior: it is a lower-side estimate of the
truth, and its interval is the interval given that prior. `EloFit.separated` lists the groups
(strongly connected components of "scored at least a draw against") so a reader can see which gaps
rest on the prior: within a group the data alone determine the gaps.

Intervals are Wald intervals from the Hessian of the penalised log-likelihood (the observed
information), in Elo, for each rating relative to the anchors. When anchors carry their own
uncertainty (`anchor_sd`, e.g. calibrated ladder rungs), it is propagated by the delta method.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from go_core.arena.stats import Z95

ELO_SCALE = 400.0 / math.log(10.0)   # Elo points per unit of log-odds


def expected_score(r_a: float, r_b: float, colour_advantage: float = 0.0) -> float:
    """Probability that a player rated r_a (with `colour_advantage` Elo for its colour) beats r_b."""
    return 1.0 / (1.0 + math.exp(-(r_a - r_b + colour_advantage) / ELO_SCALE))


def elo_difference(score: float) -> float:
    """Elo gap that gives an expected score `score` (in (0, 1))."""
    if not 0.0 < score < 1.0:
        raise ValueError(f"elo_difference needs a score strictly between 0 and 1, got {score}")
    return ELO_SCALE * math.log(score / (1.0 - score))


def game_triple(g: Any) -> tuple[str, str, float]:
    """(black, white, black's score) from a tuple or an object with .black/.white/.black_score."""
    if isinstance(g, (tuple, list)):
        b, w, y = g
    else:
        b, w, y = g.black, g.white, g.black_score
    y = float(y)
    if y not in (0.0, 0.5, 1.0):
        raise ValueError(f"a game's black score must be 0, 0.5 or 1, got {y!r} ({b} vs {w})")
    if b == w:
        raise ValueError(f"a player cannot play itself in an Elo fit: {b!r}")
    return str(b), str(w), y


@dataclass
class EloFit:
    """A fitted rating list. Ratings and intervals are in Elo relative to the anchors."""
    ratings: dict[str, float]                  # every player, anchors included
    ci95: dict[str, tuple[float, float]]       # anchors: their own interval (0-width if exact)
    stderr: dict[str, float]
    anchors: dict[str, float]
    colour_advantage: float                    # black's advantage in Elo (negative: white favoured)
    colour_ci95: tuple[float, float]
    games: int
    games_by_player: dict[str, int]
    prior_draws: float
    separated: list[list[str]] = field(default_factory=list)  # groups split by perfect results
    log_likelihood: float = 0.0                # unpenalised, at the fit
    cov: dict[str, dict[str, float]] = field(default_factory=dict)  # rating covariance (Elo^2)

    def gap(self, a: str, b: str) -> tuple[float, tuple[float, float]]:
        """Elo of `a` minus Elo of `b`, with its 95% interval (from the joint covariance: a gap
        between neighbours is known better than either rating relative to the anchor)."""
        d = self.ratings[a] - self.ratings[b]
        var = self.cov[a][a] + self.cov[b][b] - 2 * self.cov[a][b]
        half = Z95 * math.sqrt(max(var, 0.0))
        return d, (d - half, d + half)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ratings": {k: round(v, 2) for k, v in self.ratings.items()},
            "ci95": {k: [round(a, 2), round(b, 2)] for k, (a, b) in self.ci95.items()},
            "stderr": {k: round(v, 2) for k, v in self.stderr.items()},
            "anchors": self.anchors,
            "colour_advantage": round(self.colour_advantage, 2),
            "colour_ci95": [round(x, 2) for x in self.colour_ci95],
            "games": self.games,
            "games_by_player": self.games_by_player,
            "prior_draws": self.prior_draws,
            "separated": self.separated,
            "log_likelihood": self.log_likelihood,
        }

    def table(self) -> str:
        """The rating list as a fixed-width text table, strongest first."""
        lines = [f"{'player':<28} {'elo':>8} {'95% interval':>22} {'games':>6}"]
        for name in sorted(self.ratings, key=lambda k: -self.ratings[k]):
            lo, hi = self.ci95[name]
            tag = " (anchor)" if name in self.anchors and lo == hi else ""
            lines.append(f"{name:<28} {self.ratings[name]:>8.0f} {f'[{lo:.0f}, {hi:.0f}]':>22} "
                         f"{self.games_by_player.get(name, 0):>6}{tag}")
        lines.append(f"colour advantage (black, Elo): {self.colour_advantage:.0f} "
                     f"[{self.colour_ci95[0]:.0f}, {self.colour_ci95[1]:.0f}]")
        if len(self.separated) > 1:
            lines.append("separated by perfect results (gaps between these groups rest on the "
                         "prior): " + " | ".join(", ".join(g) for g in self.separated))
        return "\n".join(lines)


def _strong_components(names: Sequence[str], beats: np.ndarray) -> list[list[str]]:
    """Strongly connected components of the digraph i -> j when i scored > 0 against j."""
    n = len(names)
    reach = beats.copy() | np.eye(n, dtype=bool)
    for k in range(n):   # Floyd–Warshall transitive closure; n is a handful of players
        reach |= reach[:, k:k + 1] & reach[k:k + 1, :]
    mutual = reach & reach.T
    seen: set[int] = set()
    groups = []
    for i in range(n):
        if i in seen:
            continue
        members = [j for j in range(n) if mutual[i, j]]
        seen.update(members)
        groups.append(sorted(names[j] for j in members))
    return groups


def fit_elo(games: Iterable[Any], anchors: dict[str, float] | None = None, *,
            prior_draws: float = 1.0, fit_colour: bool = True, colour_prior_sd: float = 300.0,
            anchor_sd: dict[str, float] | None = None, max_iter: int = 200) -> EloFit:
    """Fit Bradley–Terry Elo ratings to games `(black, white, black_score)` (or game records).

    anchors: players with fixed ratings (default `{"random": 0.0}`); every other player must be
        connected to an anchor through games played, else its rating is undefined (ValueError).
    prior_draws: virtual drawn games added to every pair that met (see the module docstring);
        0 gives the plain MLE, which fails (ValueError) under perfect separation.
    fit_colour: fit black's advantage h jointly (with a N(0, colour_prior_sd^2) prior, which only
        matters when colours are unbalanced or one colour won everything).
    anchor_sd: standard deviations (Elo) of the anchors' ratings, propagated into the intervals.
    """
    anchors = {"random": 0.0} if anchors is None else dict(anchors)
    triples = [game_triple(g) for g in games]
    names = sorted({p for b, w, _ in triples for p in (b, w)} | set(anchors))
    idx = {n: i for i, n in enumerate(names)}
    n = len(names)
    if not anchors:
        raise ValueError("fit_elo needs at least one anchor (a player with a fixed rating)")
    b_idx = np.array([idx[b] for b, _, _ in triples], dtype=np.int64)
    w_idx = np.array([idx[w] for _, w, _ in triples], dtype=np.int64)
    y = np.array([s for _, _, s in triples], dtype=float)

    # Pairs that met, and who scored against whom (for separation and connectivity).
    met = np.zeros((n, n), dtype=bool)
    beats = np.zeros((n, n), dtype=bool)
    for bi, wi, s in zip(b_idx, w_idx, y):
        met[bi, wi] = met[wi, bi] = True
        if s > 0:
            beats[bi, wi] = True
        if s < 1:
            beats[wi, bi] = True
    games_by_player = {name: int(np.sum(b_idx == i) + np.sum(w_idx == i)) for name, i in idx.items()}

    # Connectivity to an anchor.
    reach = met | np.eye(n, dtype=bool)
    for k in range(n):
        reach |= reach[:, k:k + 1] & reach[k:k + 1, :]
    anchor_ids = [idx[a] for a in anchors]
    lost = [names[i] for i in range(n) if not reach[i, anchor_ids].any()]
    if lost:
        raise ValueError(f"players {lost} are not connected to any anchor {sorted(anchors)} by games; "
                         "their Elo is undefined (play them against a rated player)")

    pi, pj = np.nonzero(np.triu(met, 1))
    free = np.array([i for i in range(n) if names[i] not in anchors], dtype=np.int64)
    nf = len(free)
    dim = n + 1  # all ratings (logit units) + colour term

    x = np.zeros(dim)
    for a, r in anchors.items():
        x[idx[a]] = r / ELO_SCALE
    x[free] = np.mean([r for r in anchors.values()]) / ELO_SCALE
    var_h = (colour_prior_sd / ELO_SCALE) ** 2

    def objective(x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, float]:
        """Penalised log-likelihood, its gradient and Hessian over all coordinates, and plain LL."""
        h = x[n] if fit_colour else 0.0
        z = x[b_idx] - x[w_idx] + h
        p = 1.0 / (1.0 + np.exp(-z))
        ll_plain = float(np.sum(y * _log_sigmoid(z) + (1 - y) * _log_sigmoid(-z)))
        r = y - p
        q = p * (1 - p)
        g = np.zeros(dim)
        H = np.zeros((dim, dim))
        _add_pair_terms(g, H, b_idx, w_idx, r, q)
        if fit_colour:
            g[n] = r.sum() - x[n] / var_h
            np.add.at(H, (b_idx, n), -q)
            np.add.at(H, (w_idx, n), q)
            np.add.at(H, (n, b_idx), -q)
            np.add.at(H, (n, w_idx), q)
            H[n, n] = -q.sum() - 1.0 / var_h
        else:
            H[n, n] = -1.0
        ll = ll_plain - (x[n] ** 2 / (2 * var_h) if fit_colour else 0.0)
        if prior_draws > 0 and len(pi):
            d = x[pi] - x[pj]
            pp = 1.0 / (1.0 + np.exp(-d))
            ll += float(prior_draws * np.sum(0.5 * _log_sigmoid(d) + 0.5 * _log_sigmoid(-d)))
            rr = prior_draws * (0.5 - pp)
            qq = prior_draws * pp * (1 - pp)
            _add_pair_terms(g, H, pi, pj, rr, qq)
        return ll, g, H, ll_plain

    sel = np.append(free, n) if fit_colour else free
    ll, g, H, ll_plain = objective(x)
    converged = nf == 0 and not fit_colour
    for _ in range(max_iter):
        if converged:
            break
        Hs = H[np.ix_(sel, sel)]
        try:
            step = np.linalg.solve(Hs, -g[sel])
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(Hs, -g[sel], rcond=None)[0]
        big = np.max(np.abs(step)) if len(step) else 0.0
        if big > 2.0:  # at most ~350 Elo per step: far from the optimum the Hessian is flat
            step *= 2.0 / big
        t = 1.0
        while True:  # backtracking: the penalised log-likelihood must not decrease
            x_new = x.copy()
            x_new[sel] += t * step
            ll_new, g_new, H_new, llp_new = objective(x_new)
            if ll_new >= ll - 1e-12 or t < 1e-6:
                break
            t *= 0.5
        x, ll, g, H, ll_plain = x_new, ll_new, g_new, H_new, llp_new
        if np.max(np.abs(t * step)) < 1e-9:
            converged = True
    if not converged:
        raise ValueError("Elo fit did not converge: with prior_draws=0 this means perfect "
                         "separation (some player won or lost every game); use prior_draws > 0")
    if np.max(np.abs(x)) * ELO_SCALE > 1e5:
        raise ValueError("Elo fit diverged (perfect separation); use prior_draws > 0")

    # Covariance of the free coordinates: inverse observed information of the penalised model.
    info = -H[np.ix_(sel, sel)]
    cov = np.linalg.inv(info) if len(sel) else np.zeros((0, 0))
    if anchor_sd:
        a_ids = np.array([idx[a] for a in anchors], dtype=np.int64)
        sd = np.array([anchor_sd.get(a, 0.0) / ELO_SCALE for a in anchors])
        # Implicit function theorem: dx_f/dx_a = -H_ff^{-1} H_fa = cov @ H_fa.
        J = cov @ H[np.ix_(sel, a_ids)]
        cov = cov + (J * sd ** 2) @ J.T

    ratings = {name: float(x[i] * ELO_SCALE) for name, i in idx.items()}
    full = np.zeros((n, n))
    rating_pos = [k for k, i in enumerate(sel) if i < n]
    full[np.ix_(sel[rating_pos], sel[rating_pos])] = cov[np.ix_(rating_pos, rating_pos)]
    for a in anchors:
        full[idx[a], idx[a]] = ((anchor_sd or {}).get(a, 0.0) / ELO_SCALE) ** 2
    full *= ELO_SCALE ** 2
    cov_named = {a: {b: float(full[idx[a], idx[b]]) for b in names} for a in names}
    stderr: dict[str, float] = {}
    ci: dict[str, tuple[float, float]] = {}
    for name, i in idx.items():
        if name in anchors:
            se = float((anchor_sd or {}).get(name, 0.0))
        else:
            k = int(np.nonzero(sel == i)[0][0])
            se = float(math.sqrt(max(cov[k, k], 0.0)) * ELO_SCALE)
        stderr[name] = se
        ci[name] = (ratings[name] - Z95 * se, ratings[name] + Z95 * se)
    if fit_colour:
        h = float(x[n] * ELO_SCALE)
        se_h = float(math.sqrt(max(cov[-1, -1], 0.0)) * ELO_SCALE)
        colour_ci = (h - Z95 * se_h, h + Z95 * se_h)
    else:
        h, colour_ci = 0.0, (0.0, 0.0)
    groups = _strong_components(names, beats)
    groups.sort(key=lambda grp: np.mean([ratings[p] for p in grp]))
    return EloFit(ratings=ratings, ci95=ci, stderr=stderr, anchors=anchors, colour_advantage=h,
                  colour_ci95=colour_ci, games=len(triples), games_by_player=games_by_player,
                  prior_draws=prior_draws, separated=groups if len(groups) > 1 else [],
                  log_likelihood=ll_plain, cov=cov_named)


def _add_pair_terms(g, H, i, j, r, q):
    """Add pairwise Bradley-Terry terms: player i gains gradient r (j loses it), curvature q."""
    np.add.at(g, i, r)
    np.add.at(g, j, -r)
    np.add.at(H, (i, i), -q)
    np.add.at(H, (j, j), -q)
    np.add.at(H, (i, j), q)
    np.add.at(H, (j, i), q)


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    """log(sigmoid(z)) without overflow."""
    return -np.logaddexp(0.0, -z)


def simulate_games(ratings: dict[str, float], pairs: Sequence[tuple[str, str]], games_per_pair: int,
                   rng: np.random.Generator,
                   colour_advantage: float = 0.0) -> list[tuple[str, str, float]]:
    """Games from known ratings under the model (colours alternating) — for tests and sanity checks."""
    out = []
    for a, b in pairs:
        for k in range(games_per_pair):
            black, white = (a, b) if k % 2 == 0 else (b, a)
            p = expected_score(ratings[black], ratings[white], colour_advantage)
            out.append((black, white, 1.0 if rng.random() < p else 0.0))
    return out
