"""Net players: in-process, and as `research gtp --player policy|mcts` subprocesses."""
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from go_core.game.board import Board
from go_core.game.coords import gtp_to_move
from go_core.arena.gtp_client import GTPClient
from go_core.learn.net import NetConfig, PolicyValueNet, save_checkpoint
from go_core.learn.net_players import MCTSPlayer, PolicyPlayer
from go_core.arena.players import make_player

TINY = NetConfig(blocks=1, channels=8, gpool_every=0, gpool_channels=4, policy_channels=4,
                 value_channels=4, value_hidden=8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ck") / "tiny.pt"
    save_checkpoint(path, PolicyValueNet(TINY), board_size=9, step=0)
    return path


def test_players_play_legal_moves_and_reuse_the_tree(checkpoint):
    policy = make_player("policy", checkpoint=str(checkpoint), device="cpu")
    mcts = make_player("mcts", checkpoint=str(checkpoint), visits=24, device="cpu")
    assert isinstance(policy, PolicyPlayer) and isinstance(mcts, MCTSPlayer)
    board = Board(9)
    for turn in range(12):
        player = mcts if turn % 2 == 0 else policy
        move = player.genmove(board)
        assert board.is_legal(move), (turn, move)
        board.play(move)
        if board.is_over:
            break
        if turn % 2 == 0:
            assert mcts.tree.board.history == board.history  # the tree followed our move
    # after the opponent's move, the MCTS player continues from its old subtree
    if not board.is_over:
        kept = mcts._tree_for(board)
        assert kept is mcts.tree and kept.board.history == board.history
    mcts.reset()
    assert mcts.tree is None
    with pytest.raises(ValueError, match="checkpoint"):
        PolicyPlayer()


def research_gtp(*args):
    exe = shutil.which("research") or str(Path(sys.executable).with_name("research"))
    if Path(exe).exists():
        return [exe, "gtp", *args]
    return [sys.executable, "-m", "autoresearch.cli", "gtp", *args]


@pytest.mark.parametrize("kind", ["policy", "mcts"])
def test_gtp_subprocess_plays_legal_moves(checkpoint, kind):
    extra = ["--visits", "16"] if kind == "mcts" else []
    with GTPClient(research_gtp("--player", kind, "--checkpoint", str(checkpoint), *extra),
                   timeout_s=120) as engine:
        engine.send("boardsize 9")
        engine.send("clear_board")
        engine.send("komi 7")
        board = Board(9, komi=7)
        replies = iter(["E5", "C3", "G7", "C7", "G3"])
        for colour in "bwbwb":
            if colour == "b":
                answer = engine.send("genmove b")
                move = gtp_to_move(answer, 9)
                assert board.is_legal(move), answer
            else:  # the opponent: the first free point of a fixed list
                reply = next(r for r in replies if board.is_legal(gtp_to_move(r, 9)))
                engine.send(f"play w {reply}")
                move = gtp_to_move(reply, 9)
            board.play(move)
