"""A GTP client: runs an external engine as a subprocess and talks GTP v2 to it.

Every command has a timeout. A crash (the process exits, or its stdout closes) raises
`EngineCrashed`; a hang past the timeout kills the engine's whole process group and raises
`EngineTimeout`; an error answer (`? ...`) raises `GTPError` and the engine keeps running.
After a crash or timeout the client is dead until `restart()`.

    with GTPClient(engines.gnugo_command(level=0)) as gnugo:
        gnugo.send("boardsize 9")
        move = gnugo.send("genmove b")        # "D4", "pass" or "resign"
"""
from __future__ import annotations

import collections
import os
import queue
import signal
import subprocess
import threading
import time

_EOF = object()  # the reader thread's end-of-stream marker


class GTPClientError(RuntimeError):
    """Base class of the errors this client raises."""


class GTPError(GTPClientError):
    """The engine answered `? message` to a command."""

    def __init__(self, command: str, message: str):
        super().__init__(f"engine refused {command!r}: {message}")
        self.command = command
        self.message = message


class EngineCrashed(GTPClientError):
    """The engine process exited or closed its output."""


class EngineTimeout(GTPClientError):
    """The engine did not answer within the timeout; it has been killed."""


class GTPClient:
    """One external GTP engine subprocess.

    argv      -- the command line (e.g. from `engines.katago_command`)
    env, cwd  -- for the subprocess (env None: inherit)
    timeout_s -- default per-command timeout in seconds
    start_timeout_s -- timeout of the first command after a (re)start (engines load nets then)
    """

    def __init__(self, argv: list[str], env: dict | None = None, cwd: str | None = None,
                 timeout_s: float = 30.0, start_timeout_s: float | None = None, name: str | None = None):
        if not argv:
            raise ValueError("GTPClient needs a non-empty argv")
        self.argv = [str(a) for a in argv]
        self.env = env
        self.cwd = cwd
        self.timeout_s = float(timeout_s)
        self.start_timeout_s = float(start_timeout_s if start_timeout_s is not None else max(timeout_s, 120.0))
        self.name = name or os.path.basename(self.argv[0])
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=50)
        self._fresh = False
        self.start()

    # -- process life ----------------------------------------------------------------------
    def start(self) -> None:
        """Start the engine process (called by the constructor and `restart`)."""
        try:
            # Own session/process group: KataGo's AppImage runs the real binary as a child,
            # and a timeout must kill both.
            self._proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=self.env, cwd=self.cwd, text=True, encoding="utf-8", errors="replace",
                bufsize=1, start_new_session=True)
        except OSError as e:
            raise EngineCrashed(f"could not start engine {self.argv[0]!r}: {e}") from e
        self._lines = queue.Queue()
        self._stderr.clear()
        threading.Thread(target=self._pump_stdout, args=(self._proc, self._lines), daemon=True).start()
        threading.Thread(target=self._pump_stderr, args=(self._proc,), daemon=True).start()
        self._fresh = True

    @staticmethod
    def _pump_stdout(proc: subprocess.Popen, lines: queue.Queue) -> None:
        try:
            for line in proc.stdout:
                lines.put(line)
        except (OSError, ValueError):
            pass
        lines.put(_EOF)

    def _pump_stderr(self, proc: subprocess.Popen) -> None:
        try:
            for line in proc.stderr:
                self._stderr.append(line.rstrip("\n"))
        except (OSError, ValueError):
            pass

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stderr_tail(self, n: int = 20) -> str:
        """The engine's last `n` stderr lines (for error messages)."""
        return "\n".join(list(self._stderr)[-n:])

    def _kill(self) -> None:
        kill_process(self._proc)

    def close(self, timeout_s: float = 5.0) -> None:
        """Ask the engine to quit, then make sure it (and its children) are gone."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                self.send("quit", timeout_s=timeout_s)
            except GTPClientError:
                pass
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        self._kill()
        self._proc = None

    def restart(self) -> None:
        """Kill the engine if it runs and start a fresh one (all engine state is lost)."""
        if self._proc is not None:
            self._kill()
            self._proc = None
        self.start()

    def __enter__(self) -> "GTPClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self._kill()
        except Exception:
            pass

    # -- talking ---------------------------------------------------------------------------
    def _crashed(self, command: str, detail: str) -> EngineCrashed:
        proc = self._proc
        code = proc.poll() if proc is not None else None
        if proc is not None and code is None:
            try:
                code = proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        time.sleep(0.05)  # let the stderr pump catch the last words
        tail = self.stderr_tail()
        self._kill()
        self._proc = None
        return EngineCrashed(
            f"engine {self.name} {detail} during {command!r} (exit code {code}); "
            f"call restart() to start a new one" + (f"; its stderr ends:\n{tail}" if tail else ""))

    def send(self, command: str, timeout_s: float | None = None) -> str:
        """Send one GTP command and return the answer's text (without `=`); see class doc for errors."""
        command = command.strip()
        if "\n" in command:
            raise ValueError(f"one GTP command per send, got {command!r}")
        if self._proc is None:
            raise EngineCrashed(f"engine {self.name} is not running (crashed, timed out or closed); "
                                "call restart()")
        if timeout_s is None:
            timeout_s = self.start_timeout_s if self._fresh else self.timeout_s
        try:
            self._proc.stdin.write(command + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as e:
            raise self._crashed(command, f"closed its input ({e.__class__.__name__})") from None
        deadline = time.monotonic() + timeout_s
        answer: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(remaining, 0.0)) if remaining > 0 else self._lines.get_nowait()
            except queue.Empty:
                self._kill()
                self._proc = None
                raise EngineTimeout(
                    f"engine {self.name} gave no answer to {command!r} within {timeout_s:g} s; "
                    "it was killed, call restart() to start a new one") from None
            if line is _EOF:
                if command == "quit" and answer:
                    break
                if command == "quit":
                    return ""
                raise self._crashed(command, "exited")
            line = line.rstrip("\r\n")
            if not answer:
                if not line.strip():
                    continue  # blank lines before an answer are noise
                if line[0] not in "=?":
                    continue  # stray output (some engines print banners to stdout)
                answer.append(line)
                continue
            if not line.strip():
                break
            answer.append(line)
        self._fresh = False
        head = answer[0]
        status, rest = head[0], head[1:]
        # strip an optional numeric id, then one space
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        rest = rest[i:]
        if rest.startswith(" "):
            rest = rest[1:]
        text = "\n".join([rest] + answer[1:]).strip()
        if status == "?":
            raise GTPError(command, text)
        return text


def kill_process(proc: subprocess.Popen | None) -> None:
    """SIGKILL an engine's whole process group (it runs in its own session), reap it and close
    its pipes; a process that is already gone is fine."""
    if proc is None:
        return
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        try:
            if stream:
                stream.close()
        except OSError:
            pass
