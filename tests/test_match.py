"""The match runner with real engines and deliberately broken ones: failures lose, with reasons."""
import sys
import textwrap
from pathlib import Path

import pytest

from go_core.arena import engines
from go_core.arena.match import MatchConfig, PlayerSpec, play_match
from go_core.game.sgf import read_sgf

# A minimal GTP engine that plays never-used points in order, and misbehaves on request:
#   crash N  -> exits on its N-th genmove;  hang -> sleeps on genmove;
#   illegal  -> always answers A1 (occupied from its 2nd move on);  garbage -> answers "Z0".
FAKE_ENGINE = textwrap.dedent("""
    import sys, time
    mode, arg = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0
    size, used, gen = 9, set(), 0
    cols = "ABCDEFGHJKLMNOPQRST"
    def ok(text=""):
        sys.stdout.write("= " + text + "\\n\\n"); sys.stdout.flush()
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        cmd = parts[0]
        if cmd == "quit":
            ok(); break
        if cmd == "boardsize":
            size = int(parts[1]); ok()
        elif cmd == "clear_board":
            used = set(); ok()
        elif cmd == "play":
            used.add(parts[2].upper()); ok()
        elif cmd == "genmove":
            gen += 1
            if mode == "crash" and gen >= arg:
                sys.exit(3)
            if mode == "hang":
                time.sleep(3600)
            if mode == "illegal":
                ok("A1"); continue
            if mode == "garbage":
                ok("Z0"); continue
            free = [c + str(r) for r in range(1, size + 1) for c in cols[:size] if c + str(r) not in used]
            move = free[0] if free else "pass"
            used.add(move); ok(move)
        else:
            ok()
""")


@pytest.fixture
def fake(tmp_path):
    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE_ENGINE)

    def make(name, *args):
        return PlayerSpec(name, [sys.executable, str(script), *map(str, args)])
    return make


def random_player(name="random"):
    return PlayerSpec(name, [sys.executable, "-m", "go_core.arena.gtp_server", "--player", "random"])


def test_crashed_engine_loses_with_reason_and_the_match_goes_on(fake, tmp_path):
    cfg = MatchConfig(games=4, board_size=9, move_time_s=20, random_opening_moves=0, workers=2)
    res = play_match(fake("crasher", "crash", 3), fake("steady", "crash", 10**6), cfg,
                     sgf_dir=tmp_path / "games")
    assert len(res.games) == 4                      # no game dropped
    for g in res.games:
        assert g.reason == "engine crashed"
        assert g.winner == "steady"                 # the crashing side lost every game
        assert "crasher" in g.detail
        sgf = read_sgf(g.sgf_path)
        assert sgf.result == g.result and g.result.endswith("+F")
        assert "engine crashed" in sgf.root_comment
    assert res.reasons() == {"engine crashed": 4}
    assert res.win_rate("steady").rate == 1.0


def test_hanging_illegal_and_garbage_engines_lose(fake):
    cfg = MatchConfig(games=2, board_size=9, move_time_s=1.5, random_opening_moves=0)
    hang = play_match(fake("hanger", "hang"), fake("steady", "crash", 10**6), cfg)
    assert [g.reason for g in hang.games] == ["engine timed out"] * 2
    assert all(g.winner == "steady" for g in hang.games)

    ill = play_match(fake("a1-only", "illegal"), fake("steady", "crash", 10**6), cfg)
    assert all(g.reason == "illegal move A1" and g.winner == "steady" for g in ill.games)

    bad = play_match(fake("garbage", "garbage"), fake("steady", "crash", 10**6), cfg)
    assert all(g.reason.startswith("unparseable move") and g.winner == "steady" for g in bad.games)


def test_a_reference_engine_failing_voids_the_game_it_never_hands_the_candidate_a_win(fake):
    """Only the candidate's own failures lose: a crash, hang or bad answer of the referee's engine
    makes the game void (recorded, replayed), so killing or starving the reference earns nothing."""
    cfg = MatchConfig(games=2, board_size=9, move_time_s=1.5, random_opening_moves=0, replays=1)
    for mode in (("crash", 1), ("hang",), ("illegal",)):
        ref = fake("reference", *mode)
        ref.reference = True
        res = play_match(fake("candidate", "crash", 10**6), ref, cfg)
        assert res.games == [], f"{mode}: no game counts for anyone"
        assert len(res.voided) == 2 * (cfg.replays + 1)      # each game tried 1 + replays times
        assert all(g.void and "void" in g.detail for g in res.voided)
    # the candidate's own failures still lose (test_hanging_illegal_and_garbage_engines_lose)


def test_random_vs_random_games_finish_scored_with_sgf_and_colours_alternate(tmp_path):
    cfg = MatchConfig(games=2, board_size=7, workers=1, seed=3)
    res = play_match(random_player("r1"), random_player("r2"), cfg, sgf_dir=tmp_path)
    assert [g.black for g in res.games] == ["r1", "r2"]
    for g in res.games:
        assert not g.failure, g.detail
        assert g.score is not None and g.result[0] in "BW0"
        rec = read_sgf(g.sgf_path)
        assert rec.size == 7 and rec.komi == 7.0 and rec.result == g.result
        assert len(rec.moves) == len(g.moves)
    # Games 0 and 1 share their random opening with colours swapped.
    assert res.games[0].moves[:2] == res.games[1].moves[:2]


def _need(finder):
    try:
        return finder()
    except engines.EngineNotFound as e:
        pytest.skip(str(e))


@pytest.mark.gnugo
def test_gnugo_beats_random_and_suicides_are_resynced(tmp_path):
    _need(engines.find_gnugo)
    from go_core.arena.rungs import RungConfig, rung_player
    gnugo = rung_player(RungConfig("gnugo-L0", "gnugo", level=0))
    res = play_match(gnugo, random_player(), MatchConfig(games=2, board_size=9, workers=2), sgf_dir=tmp_path)
    assert [g.winner for g in res.games] == ["gnugo-L0"] * 2
    assert all(g.reason == "two passes" for g in res.games)   # GNU Go captures dead stones first
