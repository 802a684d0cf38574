"""The batched player process (learner side) and its protocol client (referee side)."""
import json
import sys

import numpy as np
import pytest
import torch

from go_core.arena.batch_protocol import BatchPlayerClient, BatchPlayerSpec
from go_core.game.board import Board
from go_core.learn.batch_player import BatchPlayer
from go_core.learn.net import NetConfig, PolicyValueNet, save_checkpoint

B2C32 = NetConfig(blocks=2, channels=32, gpool_every=2, gpool_channels=8, policy_channels=16,
                  value_channels=16, value_hidden=32)   # conf/model/b2c32.yaml


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ck") / "b2c32.pt"
    save_checkpoint(path, PolicyValueNet(B2C32), board_size=9, step=0)
    return path


def moves_request(rid, games, **extra):
    return json.dumps({"type": "moves", "id": rid, "games": games, **extra})


def entry(gid, board, start=0):
    return {"game": gid, "size": board.size, "komi": board.komi, "start": start,
            "moves": board.history[start:], "to_play": "b" if board.to_play == 1 else "w"}


def test_protocol_round_trip_incremental_one_forward_pass_per_request(checkpoint):
    player = BatchPlayer("policy", str(checkpoint), device="cpu")
    hello, more = player.handle(json.dumps({"type": "hello", "protocol": 1}))
    assert hello["type"] == "hello" and hello["protocol"] == 1 and more
    boards = {f"g{i}": Board(9) for i in range(20)}
    for i, b in enumerate(boards.values()):   # different positions: i opening moves
        for m in range(i % 4):
            b.play(10 * m + i % 9)
    ans, _ = player.handle(moves_request(1, [entry(g, b) for g, b in boards.items()]))
    assert ans["type"] == "moves" and ans["id"] == 1 and set(ans["moves"]) == set(boards)
    assert player.evaluator.batches == 1 and player.evaluator.positions == 20   # ONE pass
    for g, b in boards.items():
        assert b.is_legal(ans["moves"][g])
    # the referee plays the answers, then sends only the new moves (its own and one reply)
    sent = {g: b.move_number for g, b in boards.items()}
    for g, b in boards.items():
        b.play(ans["moves"][g])
        b.play(int(np.flatnonzero(b.legal_mask())[0]))
    last = boards.pop("g19")   # finished: the player is told to forget it
    ans2, _ = player.handle(moves_request(2, [entry(g, b, sent[g]) for g, b in boards.items()],
                                          forget=["g19"]))
    assert ans2["type"] == "moves" and set(ans2["moves"]) == set(boards)
    assert all(player.boards[g].history == b.history for g, b in boards.items())
    assert "g19" not in player.boards
    err, _ = player.handle(moves_request(5, [entry("g19", last, sent["g19"])]))
    assert err["type"] == "error" and "unknown" in err["message"]
    # a start that does not match the player's board is refused, and it keeps serving
    err, more = player.handle(moves_request(3, [entry("g0", boards["g0"], 1)]))
    assert err["type"] == "error" and err["id"] == 3 and "start" in err["message"] and more
    err, _ = player.handle(moves_request(4, [entry("new", Board(9), 5)]))
    assert err["type"] == "error" and "unknown" in err["message"]
    err, _ = player.handle("{not json")
    assert err["type"] == "error"
    bye, more = player.handle(json.dumps({"type": "quit"}))
    assert bye == {"type": "bye"} and not more


def test_mcts_and_sampling_players_answer_legal_moves(checkpoint):
    mcts = BatchPlayer("mcts", str(checkpoint), visits=8, device="cpu", seed=1)
    boards = [Board(9) for _ in range(6)]
    for i, b in enumerate(boards):
        b.play(i)
    ans, _ = mcts.handle(moves_request(1, [entry(f"g{i}", b) for i, b in enumerate(boards)]))
    assert ans["type"] == "moves"
    for i, b in enumerate(boards):
        assert b.is_legal(ans["moves"][f"g{i}"])
        assert mcts.trees[f"g{i}"].root_visits >= 8
    # the trees follow the games: after the answer is played the searched subtree is kept
    b0 = boards[0]
    start = b0.move_number
    b0.play(ans["moves"]["g0"])
    mcts.handle(moves_request(2, [entry("g0", b0, start)]))
    assert mcts.trees["g0"].board.history == b0.history

    picks = set()
    for seed in range(4):
        p = BatchPlayer("policy", str(checkpoint), device="cpu", seed=seed)
        ans, _ = p.handle(moves_request(1, [entry("g", Board(9))], temperature=5.0))
        picks.add(ans["moves"]["g"])
    assert len(picks) > 1   # a high temperature samples, and seeds change the samples


def test_subprocess_client_round_trip(checkpoint):
    argv = [sys.executable, "-m", "go_core.learn.batch_player", "--checkpoint", str(checkpoint),
            "--player", "policy", "--device", "cpu", "--threads", "1"]
    with BatchPlayerClient(BatchPlayerSpec(argv, name="pol"), timeout_s=60) as client:
        assert client.hello["player"] == "policy"
        boards = {f"g{i}": Board(9) for i in range(8)}
        for _ in range(3):
            client.submit(boards)
            moves, failures = client.collect()
            assert not failures and set(moves) == set(boards)
            for g, b in boards.items():
                b.play(moves[g])
        assert client._sent == {g: b.move_number - 1 for g, b in boards.items()}
        client.forget(["g0"])
        boards.pop("g0")
        client.submit(boards)
        moves, failures = client.collect()
        assert not failures and set(moves) == set(boards) and client.restarts == 0
        proc = client._proc
    assert proc.poll() == 0   # quit answered: a clean exit


def test_batch_player_does_not_import_the_referee(checkpoint):
    import subprocess
    code = ("import sys, io; from go_core.learn import batch_player as bp;"
            f"p = bp.BatchPlayer('mcts', {str(checkpoint)!r}, visits=2);"
            "bp.serve(p, io.StringIO('{\"type\":\"hello\"}\\n'), sys.stderr);"
            "bad = [m for m in sys.modules if m.startswith('go_core.arena')];"
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_gumbel_root_player_plays_the_sequential_halving_choice(checkpoint):
    g = BatchPlayer("mcts", str(checkpoint), visits=8, device="cpu", seed=1, root="gumbel", gumbel_m=4)
    assert g.mcts_cfg.root == "gumbel" and g.name.startswith("mcts-gumbel:")
    boards = [Board(9) for _ in range(3)]
    ans, _ = g.handle(moves_request(1, [entry(f"g{i}", b) for i, b in enumerate(boards)]))
    for i, b in enumerate(boards):
        t = g.trees[f"g{i}"]
        # 7 root simulations over 4 moves: each once, then the better 2 (Sequential Halving)
        assert sorted(t.visit_counts()[t.visit_counts() > 0]) == [1, 1, 2, 3]
        assert ans["moves"][f"g{i}"] == t.best_move() and t.gumbel is not None
