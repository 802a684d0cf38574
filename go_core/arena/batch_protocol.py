"""The referee's side of the batched move protocol: start a player process, ask it for moves
for many games at once, and check every answer.

The protocol (JSON lines, version 1) is documented in `go_core.learn.batch_player`, the
learner's side; this module only speaks it and never imports the learner. The player process
is untrusted (a node's own code, inside its sandbox): whatever it answers — malformed JSON,
game ids it was not asked about, a move that is illegal, a timeout, a crash — becomes a
`Failure` attributed to it, with the reason, and never an exception that stops a match.

    spec = BatchPlayerSpec(argv=[...], cwd=..., env=..., name="child")
    with BatchPlayerClient(spec) as player:            # starts it, checks the hello
        player.submit({"p0g0": board0, "p1g1": board1})  # Board objects, that player to move
        moves, failures = player.collect()             # {game: move}, {game: reason}

`submit` returns at once, so the referee can ask both players of a match at the same time and
then `collect` both: on a machine with two cores the two processes think in parallel. The
client remembers how many moves of each game it has sent and sends only the new ones (the
protocol's incremental form); after a crash or timeout it restarts the process (up to
`max_restarts` times) and resends whole games.
"""
from __future__ import annotations

import collections
import json
import queue
import subprocess
import threading
import time
from dataclasses import dataclass

from go_core.arena.gtp_client import kill_process
from go_core.game.coords import RESIGN

PROTOCOL_VERSION = 1
MAX_LINE_CHARS = 16 * 1024 * 1024   # a longer answer line is refused as malformed
_EOF = object()


@dataclass
class BatchPlayerSpec:
    """How to launch one player process: the caller decides everything (a sandbox wrapper,
    the node's worktree as cwd, an allow-listed env); this module assumes nothing about argv."""
    argv: list[str]                # command line, e.g. [python, -m, go_core.learn.batch_player, ...]
    cwd: str | None = None         # working directory (None: the referee's)
    env: dict | None = None        # environment (None: inherit the referee's)
    name: str = "player"           # shown in results, SGF and failure reasons


class PlayerFailed(RuntimeError):
    """The player process cannot serve any more (failed its hello, or restarted too often)."""


@dataclass
class _Pending:
    request_id: int
    boards: dict                   # game id -> Board (the position asked about)
    deadline: float
    failure: str | None = None     # the request could not even be written: why


class BatchPlayerClient:
    """One player process speaking the batched move protocol (see the module docstring)."""

    def __init__(self, spec: BatchPlayerSpec, timeout_s: float = 120.0, start_timeout_s: float = 120.0,
                 temperature: float = 0.0, max_restarts: int = 3):
        if not spec.argv:
            raise ValueError(f"player {spec.name!r} has an empty argv")
        self.spec = spec
        self.timeout_s = float(timeout_s)          # per moves request
        self.start_timeout_s = float(start_timeout_s)  # for the hello (loading a net, numba, ...)
        self.temperature = float(temperature)
        self.max_restarts = int(max_restarts)
        self.restarts = 0
        self.hello: dict = {}
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._sent: dict[str, int] = {}      # game id -> moves the player has been sent
        self._forget: list[str] = []         # finished games to tell the player about
        self._next_id = 0
        self._pending: _Pending | None = None
        self.requests = 0                    # moves requests answered (for statistics)
        self.start()

    @property
    def name(self) -> str:
        return self.spec.name

    # -- process life ----------------------------------------------------------------------
    def start(self) -> None:
        """Start the process and check its hello; PlayerFailed if it does not answer one."""
        try:
            self._proc = subprocess.Popen(
                [str(a) for a in self.spec.argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd=self.spec.cwd, env=self.spec.env,
                start_new_session=True)   # own process group: a kill takes its children too
        except OSError as e:
            raise PlayerFailed(f"player {self.name}: could not start {self.spec.argv[0]!r}: {e}")
        self._lines = queue.Queue()
        self._stderr.clear()
        self._sent.clear()
        self._forget.clear()
        self._pending = None
        threading.Thread(target=self._pump_stdout, args=(self._proc, self._lines), daemon=True).start()
        threading.Thread(target=self._pump_stderr, args=(self._proc,), daemon=True).start()
        reason = self._write({"type": "hello", "protocol": PROTOCOL_VERSION})
        answer = reason or self._read(time.monotonic() + self.start_timeout_s, "hello")
        if isinstance(answer, str):
            self._kill()
            raise PlayerFailed(f"player {self.name} failed its hello: {answer}")
        if answer.get("type") != "hello" or answer.get("protocol") != PROTOCOL_VERSION:
            self._kill()
            raise PlayerFailed(f"player {self.name} answered the hello with {_short(answer)}; "
                               f"expected protocol {PROTOCOL_VERSION}")
        self.hello = answer

    @staticmethod
    def _pump_stdout(proc: subprocess.Popen, lines: queue.Queue) -> None:
        try:
            while True:
                line = proc.stdout.readline(MAX_LINE_CHARS + 1)
                if not line:
                    break
                lines.put(line)
        except (OSError, ValueError):
            pass
        lines.put(_EOF)

    def _pump_stderr(self, proc: subprocess.Popen) -> None:
        try:
            for line in proc.stderr:
                self._stderr.append(line.decode("utf-8", "replace").rstrip("\n")[:500])
        except (OSError, ValueError):
            pass

    def stderr_tail(self, n: int = 5) -> str:
        return " | ".join(list(self._stderr)[-n:])

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        kill_process(proc)

    def close(self, timeout_s: float = 5.0) -> None:
        """Ask the player to quit, then make sure its whole process group is gone."""
        proc = self._proc
        if proc is not None and proc.poll() is None and self._pending is None:
            if not self._write({"type": "quit"}):
                self._read(time.monotonic() + timeout_s, "quit")
                try:
                    proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    pass
        self._kill()

    def __enter__(self) -> "BatchPlayerClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self._kill()
        except Exception:
            pass

    # -- talking ---------------------------------------------------------------------------
    def _write(self, obj: dict) -> str | None:
        """Send one request line; a reason string if the process cannot take it."""
        if self._proc is None:
            return "the process is not running"
        try:
            self._proc.stdin.write((json.dumps(obj, separators=(",", ":")) + "\n").encode())
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as e:
            return f"it closed its input ({type(e).__name__}){self._exit_note()}"
        return None

    def _exit_note(self) -> str:
        proc = self._proc
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        time.sleep(0.05)   # the stderr pump catches the last words
        tail = self.stderr_tail()
        return (f", exit code {code}" if code is not None else "") + (f"; stderr: {tail}" if tail else "")

    def _read(self, deadline: float, what: str) -> dict | str:
        """The next answer line as an object, or the reason there is none."""
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return f"timeout: no answer to {what} within the time limit"
        if line is _EOF:
            return f"crash: the process exited during {what}{self._exit_note()}"
        if len(line) > MAX_LINE_CHARS:
            return f"malformed: an answer line longer than {MAX_LINE_CHARS} characters"
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return f"malformed: not JSON ({e}): {line[:120]!r}"
        if not isinstance(obj, dict):
            return f"malformed: an answer must be a JSON object, got {_short(obj)}"
        return obj

    def submit(self, boards: dict) -> None:
        """Ask for one move in each game of `boards` (game id -> our Board, this player to move).
        Returns at once; `collect` waits for the answer. One request in flight at a time."""
        if self._pending is not None:
            raise RuntimeError(f"player {self.name}: collect() the previous request first")
        self._next_id += 1
        games = []
        for gid, board in boards.items():
            history = board.history
            start = self._sent.get(gid, 0)
            if start > len(history):
                start = 0
            games.append({"game": gid, "size": board.size, "komi": board.komi, "start": start,
                          "moves": history[start:], "to_play": "b" if board.to_play == 1 else "w"})
        request = {"type": "moves", "id": self._next_id, "temperature": self.temperature,
                   "games": games}
        if self._forget:
            request["forget"], self._forget = self._forget, []
        self._pending = _Pending(self._next_id, dict(boards), time.monotonic() + self.timeout_s)
        reason = self._write(request)
        if reason:
            self._pending.failure = f"crash: {reason}"   # collect reports it at once
        else:
            for gid, board in boards.items():
                self._sent[gid] = board.move_number

    def collect(self) -> tuple[dict[str, int], dict[str, str]]:
        """Wait for the answer to `submit` -> (moves {game: move}, failures {game: reason}).

        Every game asked about is in exactly one of the two. A move is a legal point, the pass
        (`size*size`) or RESIGN (-1), checked against our Board. A failure of the whole answer
        (crash, timeout, malformed, wrong ids) fails every game of the request and restarts the
        process for the next one (PlayerFailed once `max_restarts` is spent)."""
        pending, self._pending = self._pending, None
        if pending is None:
            raise RuntimeError(f"player {self.name}: collect() without submit()")
        boards = pending.boards
        answer = pending.failure or self._read(pending.deadline, f"moves request {pending.request_id}")
        if isinstance(answer, dict):
            answer = self._check_answer(answer, pending)
        if isinstance(answer, str):
            reason = f"{self.name}: {answer}"
            self._restart_after(reason)
            return {}, {gid: reason for gid in boards}
        self.requests += 1
        moves, failures = {}, {}
        for gid, board in boards.items():
            m = answer[gid]
            if m == RESIGN or (board.is_legal(m) and 0 <= m <= board.size * board.size):
                moves[gid] = m
            else:
                failures[gid] = (f"{self.name}: illegal move {m} in game {gid} at move "
                                 f"{board.move_number + 1}")
        return moves, failures

    def _check_answer(self, obj: dict, pending: _Pending) -> dict | str:
        """The answer's {game: int move} if it is well formed for this request, else the reason."""
        if obj.get("type") == "error":
            return f"error answer: {str(obj.get('message'))[:300]}"
        if obj.get("type") != "moves" or obj.get("id") != pending.request_id:
            return (f"malformed: expected a moves answer with id {pending.request_id}, "
                    f"got {_short(obj)}")
        moves = obj.get("moves")
        if not isinstance(moves, dict):
            return f"malformed: 'moves' must be an object game -> move, got {_short(moves)}"
        asked = set(pending.boards)
        if set(moves) != asked:
            missing, extra = sorted(asked - set(moves)), sorted(set(moves) - asked)
            return f"wrong game ids: missing {missing[:5]}, not asked {extra[:5]}"
        bad = [g for g, m in moves.items() if not isinstance(m, int) or isinstance(m, bool)]
        if bad:
            return f"malformed: moves must be ints, got {_short(moves[bad[0]])} for {bad[0]}"
        return moves

    def _restart_after(self, reason: str) -> None:
        self._kill()
        if self.restarts >= self.max_restarts:
            raise PlayerFailed(f"player {self.name} failed {self.restarts + 1} times, the last: "
                               f"{reason}; not restarted again")
        self.restarts += 1
        self.start()

    def forget(self, game_ids) -> None:
        """Finished games: the next request tells the player to drop their state."""
        for gid in game_ids:
            if self._sent.pop(gid, None) is not None:
                self._forget.append(gid)


def _short(obj, n: int = 120) -> str:
    text = json.dumps(obj) if not isinstance(obj, str) else repr(obj)
    return text if len(text) <= n else text[:n] + "..."
