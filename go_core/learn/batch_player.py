"""A player process that answers for many games at once: the learner's side of head-to-head.

    python -m go_core.learn.batch_player --checkpoint CKPT --player policy|mcts|random \
        [--visits N] [--root puct|gumbel] [--gumbel-m M] [--device cpu|cuda|auto] [--seed S] [--threads T]

The referee (`go_core.arena.batch_protocol`) starts this process — inside the node's sandbox,
with the node's own code — and sends it positions of many games; it answers one move per game,
evaluating all of them together: `policy` in ONE batched forward pass per request, `mcts` with
`go_core.learn.mcts.BatchedMCTS` over all the games' trees at once (one forward pass per search
round), with the search settings the checkpoint was trained with
(`mcts_config.search_config_from`: its c_puct, FPU, root search...; `--root`/`--gumbel-m` override them) and the caller's `--visits`
(Gumbel without noise here: the top-m moves by prior, then Sequential Halving on their values). It reads only its checkpoint and stdin, writes only stdout (the protocol) and stderr
(diagnostics), and never imports the referee (`go_core.arena`).

Protocol (version 1): JSON lines. Each request is one JSON object on one line; each gets exactly
one answer line. Moves are ints: `row * size + col` with row 0 on top, pass = `size * size`,
resign = -1 (answers only), as in `go_core.game.coords`.

    -> {"type": "hello", "protocol": 1}
    <- {"type": "hello", "protocol": 1, "name": "policy:ckpt.pt", "player": "policy",
        "visits": 1, "device": "cpu"}

    -> {"type": "moves", "id": 7, "temperature": 0.0, "forget": ["p0g1"],
        "games": [{"game": "p3g0", "size": 9, "komi": 7.0, "start": 12,
                   "moves": [40, 31], "to_play": "b"}, ...]}
    <- {"type": "moves", "id": 7, "moves": {"p3g0": 22, ...}}

    -> {"type": "quit"}
    <- {"type": "bye"}                       (then the process exits with status 0)

Incremental state: the player keeps one board per game id. `moves` are the moves of that game
from move number `start` on (the whole game from the empty board, black first, when `start` is
0; a game id never seen before must start at 0). The referee sends back every move actually
played, the player's own answers included, so the player's board always follows the referee's
and never guesses what was played. `to_play` ("b"/"w") is a check: it must be the colour to
move after the moves. `forget` lists finished games whose state can be dropped.
`temperature` 0 picks the most probable move (policy) or the most visited one (mcts); above 0
samples from policy^(1/T) (or visits^(1/T)) with the process's seeded random stream.

A request the player cannot honour (bad JSON, an unknown type, a `start` that does not match
its board, an illegal move in `moves`) gets `{"type": "error", "id": ..., "message": "..."}`
and the process keeps serving: the referee decides what a failure costs.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

import numpy as np

PROTOCOL_VERSION = 1
PLAYER_KINDS = ("policy", "mcts", "random")


class RequestError(ValueError):
    """A request this player cannot honour; answered with a protocol `error` line."""


class BatchPlayer:
    """The game states of one player process and the batched move choice over them."""

    def __init__(self, kind: str, checkpoint: str | None = None, visits: int = 1,
                 device: str = "cpu", seed: int = 0, root: str | None = None, gumbel_m: int | None = None):
        if kind not in PLAYER_KINDS:
            raise ValueError(f"player must be one of {PLAYER_KINDS}, not {kind!r}")
        self.kind = kind
        self.visits = int(visits)
        self.rng = np.random.default_rng(seed)
        self.boards: dict[str, object] = {}   # game id -> go_core.game.board.Board
        self.trees: dict[str, object] = {}    # game id -> search_tree.Tree (mcts only)
        self.evaluator = None
        self.meta: dict = {}                  # the checkpoint's metadata (its search settings: mcts_config.search_config_from)
        self.device = "cpu"
        self.name = kind
        if kind != "random":
            if not checkpoint:
                raise ValueError(f"--player {kind} needs --checkpoint PATH (a .pt from training)")
            from go_core.learn.evaluators import NetEvaluator
            from go_core.learn.net import load_checkpoint, select_device
            dev = select_device(device)
            net, self.meta = load_checkpoint(checkpoint, dev)
            # One forward pass per request: the batch is the number of games (chunked only
            # beyond this, to bound memory).
            self.evaluator = NetEvaluator(net, dev, max_batch=4096)
            self.device = str(dev)
            self.name = f"{kind}:{checkpoint}"
        if kind == "mcts":
            from go_core.learn.mcts import BatchedMCTS
            from go_core.learn.mcts_config import search_config_from
            if self.visits < 1:
                raise ValueError(f"--visits must be >= 1, not {visits}")
            # the search settings the checkpoint was trained with; --root/--gumbel-m when given
            given = {k: v for k, v in (("root", root), ("gumbel_m", gumbel_m)) if v is not None}
            self.mcts_cfg = search_config_from(self.meta, dirichlet_eps=0.0, **given)
            root = self.mcts_cfg.root
            self.searcher = BatchedMCTS(self.evaluator, self.mcts_cfg, self.rng)
            if root != "puct":
                self.name = f"{kind}-{root}:{checkpoint}"

    # -- state ---------------------------------------------------------------------------------
    def _update(self, g: dict):
        """Bring game `g["game"]`'s board up to date with the request's moves; return the board."""
        from go_core.game.board import Board
        try:
            gid, size, komi = str(g["game"]), int(g["size"]), float(g["komi"])
            start, moves, to_play = int(g["start"]), [int(m) for m in g["moves"]], g["to_play"]
        except (KeyError, TypeError, ValueError) as e:
            raise RequestError(f"a game entry needs game, size, komi, start, moves, to_play: {e}")
        board = self.boards.get(gid)
        if board is None or start == 0:
            if start != 0:
                raise RequestError(f"game {gid!r} is unknown here; send it from start 0")
            board = Board(size, komi)
            self.trees.pop(gid, None)
        if board.size != size or board.move_number != start:
            raise RequestError(f"game {gid!r}: this player has {board.move_number} moves on "
                               f"{board.size}x{board.size}, the request starts at {start} on "
                               f"{size}x{size}")
        tree = self.trees.get(gid)
        for m in moves:
            if not board.is_legal(m) or m < 0:
                raise RequestError(f"game {gid!r}: move {m} is illegal at move {board.move_number}")
            board.play(m)
            if tree is not None:
                tree.advance(m)   # keeps the searched subtree when the move was in it
        if to_play not in ("b", "w") or (to_play == "b") != (board.to_play == 1):
            raise RequestError(f"game {gid!r}: to_play {to_play!r} but "
                               f"{'black' if board.to_play == 1 else 'white'} is to move")
        if board.is_over:
            raise RequestError(f"game {gid!r} is over; there is no move to choose")
        self.boards[gid] = board
        return board

    def forget(self, ids) -> None:
        for gid in ids or ():
            self.boards.pop(str(gid), None)
            self.trees.pop(str(gid), None)

    # -- moves ---------------------------------------------------------------------------------
    def moves(self, request: dict) -> dict[str, int]:
        """One move per game of a `moves` request (see the module docstring)."""
        games = request.get("games")
        if not isinstance(games, list):
            raise RequestError("a moves request needs a list 'games'")
        temperature = float(request.get("temperature", 0.0))
        self.forget(request.get("forget"))
        ids = [str(g.get("game")) if isinstance(g, dict) else None for g in games]
        if None in ids or len(set(ids)) != len(ids):
            raise RequestError("every game entry must be an object with a distinct 'game' id")
        boards = [self._update(g) for g in games]
        if not boards:
            return {}
        if self.kind == "random":
            chosen = [self._random_move(b) for b in boards]
        elif self.kind == "policy":
            chosen = self._policy_moves(boards, temperature)
        else:
            chosen = self._mcts_moves(ids, boards, temperature)
        return dict(zip(ids, (int(m) for m in chosen)))

    def _random_move(self, board) -> int:
        """Uniform over legal points that do not fill one's own single-point eye; else pass."""
        from go_core.game.eyes import own_eye_mask
        n = board.size * board.size
        mask = board.legal_mask()[:n] & ~own_eye_mask(board.stones, board.to_play, board.size)
        pts = np.flatnonzero(mask)
        return int(pts[self.rng.integers(pts.size)]) if pts.size else n

    def _policy_moves(self, boards, temperature: float) -> list[int]:
        out = [0] * len(boards)
        for size in sorted({b.size for b in boards}):   # one forward pass per board size
            idx = [i for i, b in enumerate(boards) if b.size == size]
            priors, _ = self.evaluator.evaluate([boards[i] for i in idx])
            if temperature <= 0:
                picks = np.argmax(priors, axis=1)
            else:
                p = priors.astype(np.float64) ** (1.0 / temperature)
                p /= p.sum(axis=1, keepdims=True)
                picks = [self.rng.choice(p.shape[1], p=row) for row in p]
            for i, m in zip(idx, picks):
                out[i] = int(m)
        return out

    def _mcts_moves(self, ids, boards, temperature: float) -> list[int]:
        from go_core.learn.search_tree import Tree
        out = [0] * len(boards)
        for size in sorted({b.size for b in boards}):   # trees of one size share a searcher call
            idx = [i for i, b in enumerate(boards) if b.size == size]
            trees = []
            for i in idx:
                t = self.trees.get(ids[i])
                if t is None or t.board.history != boards[i].history:
                    t = Tree(boards[i], self.mcts_cfg)
                    self.trees[ids[i]] = t
                trees.append(t)
            sims = [max(1, self.visits - t.root_visits) for t in trees]
            self.searcher.search_many(trees, sims, False)
            for i, t in zip(idx, trees):
                out[i] = t.pick_move(temperature, self.rng)
        return out

    # -- the protocol --------------------------------------------------------------------------
    def handle(self, line: str) -> tuple[dict, bool]:
        """Answer one request line -> (answer object, keep serving)."""
        try:
            req = json.loads(line)
        except json.JSONDecodeError as e:
            return {"type": "error", "id": None, "message": f"not JSON: {e}"}, True
        if not isinstance(req, dict):
            return {"type": "error", "id": None, "message": "a request is a JSON object"}, True
        kind, rid = req.get("type"), req.get("id")
        if kind == "hello":
            return {"type": "hello", "protocol": PROTOCOL_VERSION, "name": self.name,
                    "player": self.kind, "visits": self.visits, "device": self.device}, True
        if kind == "quit":
            return {"type": "bye"}, False
        if kind == "moves":
            try:
                return {"type": "moves", "id": rid, "moves": self.moves(req)}, True
            except RequestError as e:
                return {"type": "error", "id": rid, "message": str(e)}, True
        return {"type": "error", "id": rid,
                "message": f"unknown request type {kind!r} (hello, moves, quit)"}, True


def serve(player: BatchPlayer, stdin: TextIO, stdout: TextIO) -> None:
    """Answer requests from `stdin` until `quit` or end of input."""
    for line in stdin:
        if not line.strip():
            continue
        answer, more = player.handle(line)
        stdout.write(json.dumps(answer, separators=(",", ":")) + "\n")
        stdout.flush()
        if not more:
            return


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m go_core.learn.batch_player",
                                description="Answer batched move requests (JSON lines on stdin).")
    p.add_argument("--checkpoint", default=None, help="a .pt written by training (policy, mcts)")
    p.add_argument("--player", choices=PLAYER_KINDS, default="policy")
    p.add_argument("--visits", type=int, default=1, help="root visits per move (mcts)")
    p.add_argument("--root", choices=("puct", "gumbel"), default=None,
                   help="root search (mcts; default: the checkpoint's own mcts.root)")
    p.add_argument("--gumbel-m", type=int, default=None,
                   help="moves considered at the root (mcts --root gumbel; default: the checkpoint's)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--seed", type=int, default=0, help="seeds sampling and search")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    a = p.parse_args(argv)
    # The protocol owns stdout: anything a library prints while loading goes to stderr.
    protocol_out, sys.stdout = sys.stdout, sys.stderr
    if a.threads > 0:
        import torch
        torch.set_num_threads(a.threads)
    player = BatchPlayer(a.player, a.checkpoint, a.visits, a.device, a.seed, a.root, a.gumbel_m)
    serve(player, sys.stdin, protocol_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
