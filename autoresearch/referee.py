"""The harness's side of the referee: rate a finished node with code no node can change.

A node may change the learner; it can never change (or reach) what rates it. So:
- when a question starts, the referee (`go_core/game`, `go_core/arena`, the rating entry points
  and their configs) is pinned: copied out of git at the question's start commit into
  `WORKSPACE/referee/<question>/`, read-only, hash-checked before each use (`referee_pin`);
- after a node's job has ended, its checkpoint is rated by `python -m go_core.arena.rate` run
  from that pin, in its own process: Elo on the reference ladder (the headline strength) and
  head-to-head game pairs against its parent (the verdict's data);
- the candidate plays as itself -- with the node's own code as committed when it was launched
  (`git archive node/<id>`, not the worktree the job could rewrite while it ran), with the
  referee's folders replaced by the pin's -- inside the node's sandbox, which cannot see the
  reference engines; the referee starts the references, applies every move and scores;
- the numbers that rank nodes come only from the JSON the rating process writes under
  `WORKSPACE/ratings/`, where no job can write; Elo or win rates in a job's own summary.json
  are dropped (`jobs.status.job_metrics`).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import io
from dataclasses import dataclass
from pathlib import Path

from autoresearch import bwrap
from autoresearch.referee_pin import REFEREE_PATHS, pin_referee, verify_pin
from experiment_tree.workspace import Workspace

RATE_TIMEOUT_S = 1800.0        # one rating process (a ladder walk or a head-to-head match)
LADDER_PLAYER = "mcts"         # how the candidate plays the ladder (the rating config's visits)
H2H_PLAYER = "policy"          # how checkpoints play each other: raw policy, batched


class RefereeError(RuntimeError):
    """The referee could not rate a node (its message says why); the node is not ranked."""


@dataclass
class Referee:
    workspace: Path
    question_id: int
    repo_root: Path
    commit: str                        # the question's start commit: the referee's code
    sandbox: str = "auto"              # auto | bwrap | none (bwrap.sandbox_mode)
    python: str = sys.executable

    @property
    def pin(self) -> Path:
        return Workspace(self.workspace).referee_pin_dir(self.question_id)

    def ensure_pin(self, board_size: int = 9, komi: float = 7.0) -> Path:
        """Pin the referee, and record the ladder's scale the question is rated on."""
        pin = pin_referee(self.repo_root, self.commit, self.pin)
        if not self.anchors_path.exists():
            self._rate(["anchors", "--board-size", str(board_size), "--komi", str(komi)],
                       self.anchors_path, self.anchors_path.with_suffix(".log"))
        return pin

    @property
    def anchors_path(self) -> Path:
        """The rung Elos the question started with: parent and child rated on one scale."""
        return Workspace(self.workspace).anchors_file(self.question_id)

    # -- the candidate's code ----------------------------------------------------------------
    def candidate_root(self, node_id: int) -> Path:
        """The node's committed code (branch node/<id>) with the referee's folders from the pin:
        what the candidate's player process imports. Read-only; made once per node."""
        root = Workspace(self.workspace).candidate_dir(node_id)
        if (root / ".complete").exists():
            return root
        if root.exists():
            _make_writable(root)
            shutil.rmtree(root)
        tar = subprocess.run(["git", "-c", "core.hooksPath=/dev/null", "archive", "--format=tar",
                              f"node/{node_id}"], cwd=self.repo_root, capture_output=True)
        if tar.returncode != 0:
            raise RefereeError(f"no committed code for node {node_id} (branch node/{node_id}): "
                               f"{tar.stderr.decode(errors='replace').strip()[:300]}")
        root.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as tf:
            members = [m for m in tf.getmembers() if (m.isfile() or m.isdir())
                       and not any(m.name == p or m.name.startswith(p + "/") for p in REFEREE_PATHS)]
            tf.extractall(root, members=members)
        verify_pin(self.pin)
        for rel in REFEREE_PATHS:
            src = self.pin / rel
            if src.is_dir():
                shutil.copytree(src, root / rel, dirs_exist_ok=True)
            elif src.is_file():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, root / rel)
        (root / ".complete").write_text(self.commit)
        _make_readonly(root)
        return root

    def _player(self, root: Path, module_argv: list[str], checkpoint: Path, name: str) -> dict:
        """A player process of the candidate: its own code, in its sandbox (no engines, no
        network, nothing writable), as a spec the rating process starts."""
        argv = [self.python, "-m", *module_argv]
        env = bwrap.allowed_env({"PYTHONPATH": str(root), "OMP_NUM_THREADS": "1",
                                 "PYTHONDONTWRITEBYTECODE": "1", "NUMBA_CACHE_DIR": "/tmp/numba"})
        mode = bwrap.sandbox_mode(self.sandbox)
        if mode == "bwrap":
            argv = bwrap.sandboxed_argv(argv, writable=[], readonly=[root, checkpoint.parent],
                                        env=env, cwd=root)
        return {"argv": argv, "env": env, "cwd": str(root), "name": name, "sandbox": mode}

    # -- ratings -----------------------------------------------------------------------------
    def _rate(self, args: list[str], out: Path, log: Path) -> dict:
        verify_pin(self.pin)
        out.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not bwrap.is_secret_env(k)}
        env["PYTHONPATH"] = str(self.pin)
        env.setdefault("OMP_NUM_THREADS", "1")
        # nothing may be written into the pin (root ignores its read-only bits): no bytecode,
        # numba's compiled kernels cached beside it instead
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["NUMBA_CACHE_DIR"] = str(Workspace(self.workspace).referee_numba_cache)
        with open(log, "ab") as f:
            try:
                subprocess.run([self.python, "-m", "go_core.arena.rate", *args, "--out", str(out)],
                               cwd=self.pin, env=env, stdout=f, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=RATE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise RefereeError(f"rating took over {RATE_TIMEOUT_S:.0f} s (log: {log})") from None
        try:
            result = json.loads(out.read_text())
        except (OSError, ValueError) as e:
            raise RefereeError(f"the rating process left no result ({e}; log: {log})") from None
        if result.get("status") != "ok":
            raise RefereeError(f"{result.get('error', 'rating failed')} (log: {log})")
        return result

    def ratings_dir(self, node_id: int) -> Path:
        return Workspace(self.workspace).rating_dir(node_id)

    def snapshot(self, node_id: int, checkpoint: Path) -> Path:
        """The checkpoint as rated: a read-only copy in the ratings folder (the run directory
        is the job's; the candidate's sandboxed player reads this copy)."""
        dest = self.ratings_dir(node_id) / "checkpoint.pt"
        if not dest.exists() and not Path(checkpoint).is_file():
            raise RefereeError(f"node {node_id}: checkpoint {checkpoint} does not exist")
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".tmp")
            shutil.copyfile(checkpoint, tmp)
            tmp.chmod(0o444)
            os.replace(tmp, dest)
        return dest

    def ladder(self, node_id: int, checkpoint: Path, visits: int, start_elo: float | None = None,
               board_size: int = 9, komi: float = 7.0) -> dict:
        """Elo with its interval on the reference ladder, the walk starting at `start_elo`."""
        root = self.candidate_root(node_id)
        checkpoint = self.snapshot(node_id, checkpoint)
        argv = ["go_core.arena.gtp_server", "--player", LADDER_PLAYER, "--checkpoint",
                str(checkpoint), "--visits", str(int(visits))]
        d = self.ratings_dir(node_id)
        d.mkdir(parents=True, exist_ok=True)
        spec = self._player(root, argv, Path(checkpoint), "candidate")
        (d / "ladder_player.json").write_text(json.dumps(spec))
        args = ["ladder", "--player-json", str(d / "ladder_player.json"), "--anchors",
                str(self.anchors_path), "--sgf-dir",
                str(d / "ladder_games"), "--board-size", str(board_size), "--komi", str(komi)]
        if start_elo is not None:
            args += ["--start-elo", f"{start_elo:.1f}"]
        res = self._rate(args, d / "ladder.json", d / "rating.log")
        res["sandbox"] = spec["sandbox"]
        return res

    def head_to_head(self, child: tuple[int, Path], parent: tuple[int, Path], seed: int,
                     max_pairs: int, delta: float, alpha: float, beta: float, settle_se: float,
                     board_size: int = 9, komi: float = 7.0) -> dict:
        """Colour-swapped game pairs, child (A) against parent (B), both as raw policies."""
        (cid, cckpt), (pid, pckpt) = child, parent
        d = self.ratings_dir(cid) / f"h2h_vs_{pid}"
        d.mkdir(parents=True, exist_ok=True)
        for role, (nid, ckpt) in (("a", child), ("b", parent)):
            ckpt = self.snapshot(nid, ckpt)
            spec = self._player(self.candidate_root(nid), [
                "go_core.learn.batch_player", "--checkpoint", str(ckpt), "--player", H2H_PLAYER,
                "--device", "cpu", "--seed", str(seed)], Path(ckpt), f"node{nid}")
            (d / f"{role}.json").write_text(json.dumps(spec))
        args = ["h2h", "--a-json", str(d / "a.json"), "--b-json", str(d / "b.json"),
                "--seed", str(seed), "--max-pairs", str(max_pairs), "--delta", str(delta),
                "--alpha", str(alpha), "--beta", str(beta), "--settle-se", f"{settle_se:.3f}",
                "--sgf-dir", str(d / "games"), "--board-size", str(board_size), "--komi", str(komi)]
        return self._rate(args, d / "h2h.json", d / "rating.log")


def _make_readonly(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            p.chmod(p.stat().st_mode & ~0o222)
    for dirpath, dirnames, _ in os.walk(root, topdown=False):
        Path(dirpath).chmod(0o555)


def _make_writable(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        Path(dirpath).chmod(0o755)
        for name in filenames:
            p = Path(dirpath) / name
            p.chmod(p.stat().st_mode | 0o200)
