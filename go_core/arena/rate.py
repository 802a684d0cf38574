"""The referee's entry point: rate a node's checkpoint, from code no node can change.

`research run` pins the referee (go_core/game, go_core/arena, the rating config) as a read-only
copy taken from the question's start commit, and runs this module from that copy, in its own
process, after a node's job has ended. The candidate plays as itself: its player process is
given here as a complete command line (the node's own code, inside its sandbox, built by the
harness); the references are started here; our engine applies every move and scores. Only this
process writes the numbers that rank nodes, into a folder no job can write.

    python -m go_core.arena.rate anchors --out anchors.json          # the ladder's scale, once per question
    python -m go_core.arena.rate ladder --player-json P.json --out rating.json [--start-elo E] \
        [--anchors anchors.json]
    python -m go_core.arena.rate h2h --a-json A.json --b-json B.json --out h2h.json --seed S \
        --max-pairs N --delta 100 [--settle-se X]

P.json / A.json / B.json: {"argv": [...], "env": {...}, "cwd": "...", "name": "..."} -- for
`ladder` a GTP engine, for `h2h` a batched player (go_core.learn.batch_player).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from go_core.arena.sprt import estimate, pentanomial, sequential_test

REPO = Path(__file__).resolve().parents[2]


def _spec(path: str) -> dict:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("argv"), list) or not data["argv"]:
        raise SystemExit(f"rate: {path} must hold {{\"argv\": [...], \"env\": {{...}}}}")
    return data


def _write(path: str, obj: dict) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, out)


def rate_ladder(a: argparse.Namespace) -> dict:
    """Elo on the reference ladder (the headline strength, comparable across questions)."""
    from experiments.rate_checkpoint import as_rating_config
    from go_core.arena.rating_walk import rate_candidate
    from go_core.arena.match import PlayerSpec
    spec = _spec(a.player_json)
    cfg = as_rating_config(None)
    cand = PlayerSpec(name="candidate", argv=[str(x) for x in spec["argv"]], env=spec.get("env"))
    anchors = None
    if a.anchors:
        saved = json.loads(Path(a.anchors).read_text())
        anchors = (saved["elos"], saved["sds"], saved["source"])
    t = time.monotonic()
    out = rate_candidate(cand, cfg, board_size=a.board_size, komi=a.komi,
                             sgf_dir=a.sgf_dir, log=lambda m: print(m, flush=True),
                             start_elo=a.start_elo, anchors=anchors)
    out.pop("games", None)
    out["rating_seconds"] = round(time.monotonic() - t, 1)
    return out


def ladder_anchors(a: argparse.Namespace) -> dict:
    """The rung Elos (and sds, and their source) a question is rated against, fixed at its start."""
    from experiments.rate_checkpoint import as_rating_config
    from go_core.arena.calibration import ladder_elos
    elos, sds, source = ladder_elos(as_rating_config(None), a.board_size, a.komi)
    return {"elos": elos, "sds": sds, "source": source, "board_size": a.board_size, "komi": a.komi}


def rate_h2h(a: argparse.Namespace) -> dict:
    """Colour-swapped game pairs A vs B until the games-only sequential test stops, the pairs'
    own standard error is below `settle_se` (more games would not sharpen the verdict), or the cap."""
    from go_core.arena.head_to_head import BatchPlayerSpec, play_head_to_head
    sa, sb = _spec(a.a_json), _spec(a.b_json)
    specs = [BatchPlayerSpec(argv=[str(x) for x in s["argv"]], cwd=s.get("cwd"), env=s.get("env"),
                             name=s.get("name") or n) for s, n in ((sa, "A"), (sb, "B"))]
    stopped = {"why": f"cap of {a.max_pairs} pairs"}

    def should_stop(done) -> bool:
        counts = pentanomial(p.score_a for p in done)
        test = sequential_test(counts, a.delta, a.max_pairs, a.alpha, a.beta)
        if test.outcome is not None:
            stopped["why"] = f"games-only test: {test.outcome} ({test.reason})"
            return True
        if a.settle_se and len(done) >= a.min_pairs and estimate(counts).se <= a.settle_se:
            stopped["why"] = (f"settled: game standard error {estimate(counts).se:.0f} Elo <= "
                              f"{a.settle_se:.0f} (training noise dominates)")
            return True
        return False

    res = play_head_to_head(specs[0], specs[1], a.max_pairs, size=a.board_size, komi=a.komi,
                            seed=a.seed, sgf_dir=a.sgf_dir, should_stop=should_stop,
                            log=lambda m: print(m, flush=True))
    out = res.to_dict()
    games = max(1, res.games)
    failed = {side: sum(1 for f in res.failures if f.get("player") == side) for side in ("A", "B")}
    if min(failed.values()) > games / 2:
        # both sides failing is the machine's fault, not a strength: no verdict from these games
        raise RuntimeError(f"both players failed in most games (A {failed['A']}, B {failed['B']} of "
                           f"{res.games}): {res.failures[0].get('reason', '')[:300]}")
    counts = list(res.pentanomial)
    out["pentanomial"] = counts
    out["stopped"] = stopped["why"]
    if sum(counts):
        e = estimate(counts)
        out["diff_elo"], out["se_elo"], out["ci95"] = e.elo, e.se, list(e.ci95)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m go_core.arena.rate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    lad = sub.add_parser("ladder", help="Elo against the reference ladder")
    lad.add_argument("--player-json", required=True, help="the candidate as a GTP engine")
    lad.add_argument("--start-elo", type=float, default=None, help="start the walk here (the parent's Elo)")
    lad.add_argument("--anchors", default=None, help="the question's ladder scale (from `anchors`)")
    anc = sub.add_parser("anchors", help="the ladder's rung Elos, recorded when a question starts")
    h2h = sub.add_parser("h2h", help="head-to-head game pairs between two checkpoints")
    h2h.add_argument("--a-json", required=True, help="player A (the child): a batched player")
    h2h.add_argument("--b-json", required=True, help="player B (the parent)")
    h2h.add_argument("--seed", type=int, required=True, help="chooses openings, their order, colours")
    h2h.add_argument("--max-pairs", type=int, required=True)
    h2h.add_argument("--min-pairs", type=int, default=20, help="pairs before `settled` may stop")
    h2h.add_argument("--delta", type=float, default=100.0)
    h2h.add_argument("--alpha", type=float, default=0.05)
    h2h.add_argument("--beta", type=float, default=0.2)
    h2h.add_argument("--settle-se", type=float, default=0.0)
    for p in (lad, h2h, anc):
        p.add_argument("--out", required=True, help="where the JSON result goes")
        p.add_argument("--sgf-dir", default=None, help="every game as SGF here")
        p.add_argument("--board-size", type=int, default=9)
        p.add_argument("--komi", type=float, default=7.0)
    a = ap.parse_args(argv)
    t = time.monotonic()
    try:
        out = {"ladder": rate_ladder, "h2h": rate_h2h, "anchors": ladder_anchors}[a.cmd](a)
        out["status"] = "ok"
    except Exception as e:  # noqa: BLE001 - the harness reads the reason from the JSON
        import traceback
        out = {"status": "error", "error": f"{type(e).__name__}: {e}",
               "traceback": traceback.format_exc()[-4000:]}
    out["seconds"] = round(time.monotonic() - t, 1)
    out["referee"] = str(REPO)
    _write(a.out, out)
    return 0 if out["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
