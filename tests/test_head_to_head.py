"""Head-to-head matches: pairs, colour swap, openings, SGF, and players that misbehave."""
import sys
import textwrap

import pytest
import torch

from go_core.arena.head_to_head import BatchPlayerSpec, choose_openings, play_head_to_head
from go_core.arena.opening_book import load_book, load_openings, random_openings
from go_core.game.board import Board
from go_core.game.sgf import read_sgf, record_to_board
from go_core.learn.net import NetConfig, PolicyValueNet, save_checkpoint

PLAYER = [sys.executable, "-m", "go_core.learn.batch_player"]

# A player that speaks the protocol's hello and then misbehaves in one way (argv[1]).
BROKEN = textwrap.dedent('''
    import json, os, sys, time
    mode, marker = sys.argv[1], sys.argv[2]
    if mode == "no_hello":
        sys.exit(0)
    for line in sys.stdin:
        req = json.loads(line)
        if req["type"] == "hello":
            print(json.dumps({"type": "hello", "protocol": 1}), flush=True)
            continue
        if req["type"] == "quit":
            print(json.dumps({"type": "bye"}), flush=True)
            break
        games = [g["game"] for g in req["games"]]
        size = req["games"][0]["size"]
        if mode == "garbage":
            print("I am not JSON", flush=True)
        elif mode == "illegal":
            print(json.dumps({"type": "moves", "id": req["id"],
                              "moves": {g: size * size + 5 for g in games}}), flush=True)
        elif mode == "wrong_ids":
            print(json.dumps({"type": "moves", "id": req["id"],
                              "moves": {g + "x": size * size for g in games}}), flush=True)
        elif mode == "hang":
            time.sleep(3600)
        elif mode == "crash" or (mode == "crash_once" and not os.path.exists(marker)):
            open(marker, "w").close()
            sys.stderr.write("boom\\n")
            sys.exit(3)
        else:   # crash_once after its crash: always pass (always legal)
            print(json.dumps({"type": "moves", "id": req["id"],
                              "moves": {g: size * size for g in games}}), flush=True)
''')


@pytest.fixture(scope="module")
def broken_script(tmp_path_factory):
    path = tmp_path_factory.mktemp("broken") / "broken_player.py"
    path.write_text(BROKEN)
    return path


def random_player(seed, name="random"):
    return BatchPlayerSpec(PLAYER + ["--player", "random", "--seed", str(seed)], name=name)


@pytest.mark.parametrize("mode, reason, restarts", [
    ("garbage", "malformed: not JSON", 1),
    ("illegal", "illegal move 86", 0),
    ("wrong_ids", "wrong game ids", 1),
    ("crash", "crash: the process exited", 1),
    ("hang", "timeout", 1),
    ("no_hello", "failed its hello", 0),
])
def test_a_broken_player_loses_its_games_with_the_reason_and_the_match_goes_on(
        broken_script, tmp_path, mode, reason, restarts):
    broken = BatchPlayerSpec([sys.executable, str(broken_script), mode, str(tmp_path / "marker")],
                        name=f"broken-{mode}")
    res = play_head_to_head(random_player(1), broken, pairs=3, pairs_at_once=2, seed=0,
                            max_moves=40, timeout_s=4.0, start_timeout_s=30, max_restarts=restarts)
    # (4 s, not 1: on a loaded 2-core machine the healthy random player's own answers took over 1 s)
    assert len(res.pairs) == 3 and res.games == 6     # every pair was played out
    assert res.score_a == 6.0 and res.pentanomial == [0, 0, 0, 0, 3]
    assert len(res.failures) == 6
    for f in res.failures:
        assert f["player"] == "B" and f["name"] == f"broken-{mode}" and reason in f["reason"], f
    for p in res.pairs:
        for g in p.games:
            assert g.end == "failure" and g.failed == "B" and g.score_a == 1.0
            assert g.result == ("B+F" if g.a_colour == "b" else "W+F")


def test_a_player_restarted_after_a_crash_plays_on(broken_script, tmp_path):
    flaky = BatchPlayerSpec([sys.executable, str(broken_script), "crash_once", str(tmp_path / "m")],
                       name="flaky")
    res = play_head_to_head(flaky, random_player(2), pairs=4, pairs_at_once=2, seed=1,
                            max_moves=60, timeout_s=5.0, sgf_dir=tmp_path / "sgf")
    crashed = [g for p in res.pairs for g in p.games if g.end == "failure"]
    played = [g for p in res.pairs for g in p.games if g.end != "failure"]
    assert 1 <= len(crashed) <= 2 and all("crash" in g.failure for g in crashed)
    assert len(played) >= 6 and all(g.score_a == 0.0 for g in played)   # passing loses


def test_pairs_swap_colours_and_every_game_is_saved_as_sgf(tmp_path):
    res = play_head_to_head(random_player(3, "ra"), random_player(4, "rb"), pairs=6,
                            pairs_at_once=4, seed=7, sgf_dir=tmp_path)
    assert res.games == 12 and not res.failures and res.opening_source.startswith("book 9x9")
    assert sorted(p.index for p in res.pairs) == list(range(6))
    for p in res.pairs:
        assert sorted(g.a_colour for g in p.games) == ["b", "w"]
        for g in p.games:
            rec = read_sgf(g.sgf)
            assert (rec.black, rec.white) == (("ra", "rb") if g.a_colour == "b" else ("rb", "ra"))
            assert [f"{'ABCDEFGHJ'[m % 9]}{9 - m // 9}" for _, m in rec.moves[:len(p.opening)]] \
                == p.opening                                     # both games start from it
            board = record_to_board(rec)                         # our engine agrees on the end
            assert board.result() == g.result == rec.result
            assert g.end in ("passes", "max_moves") and board.move_number == g.moves <= 243
    assert len(list(tmp_path.glob("*.sgf"))) == 12
    d = res.to_dict()
    assert d["games"] == 12 and sum(d["pentanomial"]) == 6 and d["games_per_min"] > 0


def test_should_stop_ends_the_match_early_and_the_cap_holds():
    seen = []

    def stop_after_four(done):
        seen.append(len(done))
        return len(done) >= 4

    res = play_head_to_head(random_player(5), random_player(6), pairs=50, pairs_at_once=2,
                            seed=2, max_moves=30, should_stop=stop_after_four)
    assert res.stopped_early and len(res.pairs) >= 4 and len(res.pairs) == seen[-1]
    assert seen == sorted(seen) and res.abandoned_pairs <= 2
    capped = play_head_to_head(random_player(5), random_player(6), pairs=3, pairs_at_once=8,
                               seed=2, max_moves=20)
    assert len(capped.pairs) == 3 and not capped.stopped_early
    assert all(g.end == "max_moves" and g.moves == 20 for p in capped.pairs for g in p.games)


def test_a_net_that_always_passes_loses_every_game_to_random(tmp_path):
    """The policy player plays its net's choice, and the score is read from A's side in both
    colours: a net whose pass logit dominates passes every move and loses every game."""
    torch.manual_seed(0)
    net = PolicyValueNet(NetConfig(blocks=1, channels=8, gpool_every=0, gpool_channels=4,
                                   policy_channels=4, value_channels=4, value_hidden=8))
    with torch.no_grad():
        net.p_pass.bias.fill_(1e4)
    ck = tmp_path / "passer.pt"
    save_checkpoint(ck, net, board_size=9)
    passer = BatchPlayerSpec(PLAYER + ["--player", "policy", "--checkpoint", str(ck)], name="passer")
    res = play_head_to_head(passer, random_player(8), pairs=4, seed=3, max_moves=100)
    assert not res.failures and res.score_a == 0.0 and res.pentanomial == [4, 0, 0, 0, 0]


def test_seeds_change_openings_order_and_colours_and_the_book_is_balanced():
    book = load_book(9)
    assert len(book["openings"]) >= 200
    assert all(abs(o["black_winrate"] - 0.5) <= 0.1 and 2 <= len(o["moves"]) <= 6
               for o in book["openings"])
    openings = load_openings(9)
    assert len(openings) == len(book["openings"])
    a, src = choose_openings(9, 20, seed=1)
    assert choose_openings(9, 20, seed=1)[0] == a            # deterministic per seed
    assert choose_openings(9, 20, seed=2)[0] != a            # another node, other openings
    assert src.startswith("book 9x9") and len({tuple(o) for o in a}) == 20
    canon = {min(tuple(o)) for o in openings}                # each is a symmetry of a book entry
    from go_core.arena.opening_book import canonical
    book_keys = {canonical(o, 9) for o in openings}
    assert all(canonical(o, 9) in book_keys for o in a) and canon
    # sizes without a book: seeded random openings, and the source says so
    r7, src7 = choose_openings(7, 5, seed=1)
    assert src7.startswith("random: no opening book ships for 7x7")
    assert r7 == choose_openings(7, 5, seed=1)[0] != choose_openings(7, 5, seed=2)[0]
    for o in random_openings(7, 10, seed=4):
        b = Board(7)
        for m in o:
            b.play(m)
        assert 2 <= len(o) <= 6


def test_mcts_player_process_plays_a_match_through_the_protocol(tmp_path):
    torch.manual_seed(1)
    ck = tmp_path / "tiny.pt"
    save_checkpoint(ck, PolicyValueNet(NetConfig(blocks=1, channels=8, gpool_every=0,
                                                 gpool_channels=4, policy_channels=4,
                                                 value_channels=4, value_hidden=8)), board_size=9)
    mcts = BatchPlayerSpec(PLAYER + ["--player", "mcts", "--visits", "4", "--checkpoint", str(ck)],
                      name="mcts4")
    res = play_head_to_head(mcts, random_player(9), pairs=2, seed=4, max_moves=40)
    assert res.games == 4 and not res.failures
    assert all(g.end in ("passes", "max_moves") for p in res.pairs for g in p.games)


# A player that fills its own single-point eyes whenever it can (else a random legal move).
EYE_FILLER = textwrap.dedent('''
    import json, sys
    import numpy as np
    from go_core.game.board import Board
    from go_core.game.eyes import own_eye_mask
    rng, boards = np.random.default_rng(0), {}
    for line in sys.stdin:
        req = json.loads(line)
        if req["type"] == "hello":
            print(json.dumps({"type": "hello", "protocol": 1}), flush=True)
            continue
        if req["type"] == "quit":
            print(json.dumps({"type": "bye"}), flush=True)
            break
        if req["type"] != "moves":
            continue
        out = {}
        for g in req["games"]:
            b = boards.get(g["game"]) if g["start"] else None
            b = b or Board(g["size"], g["komi"])
            for m in g["moves"]:
                b.play(m)
            boards[g["game"]] = b
            n = b.size * b.size
            legal = np.asarray(b.legal_mask())[:n]
            eyes = np.flatnonzero(legal & own_eye_mask(b.stones, b.to_play, b.size))
            pool = eyes if len(eyes) else np.flatnonzero(legal)
            out[g["game"]] = int(rng.choice(pool)) if len(pool) else n
        print(json.dumps({"type": "moves", "id": req["id"], "moves": out}), flush=True)
''')


def _eye_fills(sgf_path) -> int:
    """Moves in a saved game that filled the mover's own single-point eye."""
    from go_core.game.eyes import own_eye_mask
    rec = read_sgf(sgf_path)
    b, fills = Board(rec.size, rec.komi), 0
    for _, m in rec.moves:
        if 0 <= m < b.size * b.size and own_eye_mask(b.stones, b.to_play, b.size)[m]:
            fills += 1
        b.play(m)
    return fills


@pytest.mark.parametrize("rule", [True, False])
def test_the_eye_rule_plays_a_move_filling_ones_own_eye_as_a_pass(rule, tmp_path):
    """With the referee's eye rule (the default) no saved game has a move that fills the mover's
    own eye, each such attempt is counted, and the games end by passes; without it they happen."""
    from pathlib import Path
    script = tmp_path / "eye_filler.py"
    script.write_text(EYE_FILLER)
    root = str(Path(__file__).resolve().parents[1])
    filler = BatchPlayerSpec([sys.executable, str(script)], cwd=root,
                             env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"}, name="filler")
    res = play_head_to_head(filler, random_player(5), pairs=3, seed=1, size=7, max_moves=300,
                            sgf_dir=tmp_path / "games", eye_fill_passes=rule)
    games = [g for p in res.pairs for g in p.games]
    assert not res.failures and len(games) == 6
    fills = sum(_eye_fills(g.sgf) for g in games)
    if rule:
        assert fills == 0 and sum(g.eye_passes for g in games) > 0
        assert all(g.end == "passes" for g in games)
        assert all(("eye rule" in read_sgf(g.sgf).root_comment) == (g.eye_passes > 0) for g in games)
    else:
        assert fills > 0 and all(g.eye_passes == 0 for g in games)
