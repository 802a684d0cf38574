"""The GTP client against a fake engine that misbehaves on purpose, and against real GNU Go."""
from __future__ import annotations

import os
import sys
import textwrap
import time

import pytest

from go_core.arena import engines
from go_core.arena.gtp_client import EngineCrashed, EngineTimeout, GTPClient, GTPError

FAKE_ENGINE = textwrap.dedent(r'''
    import sys, time, os
    print("fake engine starting", file=sys.stderr, flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        ident = words[0] if words[0].isdigit() else ""
        cmd = words[1:] if ident else words
        name = cmd[0]
        if name == "name":
            out = "= fake"
        elif name == "multi":
            out = "= line one\nline two\nline three"
        elif name == "banner":          # stray output before the answer
            out = "some banner text\n= after banner"
        elif name == "err":
            out = "? nope, refused"
        elif name == "crash":
            print("about to die: segfault simulated", file=sys.stderr, flush=True)
            os._exit(3)
        elif name == "closeout":        # close stdout but stay alive a while
            sys.stdout.flush(); os.close(1)
            time.sleep(30)
            sys.exit(0)
        elif name == "hang":
            time.sleep(3600)
            out = "= too late"
        elif name == "slow":
            time.sleep(float(cmd[1]))
            out = "= slow done"
        elif name == "quit":
            sys.stdout.write("=%s\n\n" % ident); sys.stdout.flush()
            break
        else:
            out = "? unknown command"
        out = out[0] + ident + out[1:]
        sys.stdout.write(out + "\n\n")
        sys.stdout.flush()
''')


@pytest.fixture
def fake_argv(tmp_path):
    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE_ENGINE)
    return [sys.executable, str(script)]


def _gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie still answers kill(0); read its state
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split()[2] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_answers_multiline_and_stray_output(fake_argv):
    with GTPClient(fake_argv, timeout_s=10) as c:
        assert c.send("name") == "fake"
        assert c.send("multi") == "line one\nline two\nline three"
        assert c.send("banner") == "after banner"
        assert c.alive


def test_error_answer_raises_gtp_error_and_engine_keeps_serving(fake_argv):
    with GTPClient(fake_argv, timeout_s=10) as c:
        with pytest.raises(GTPError) as e:
            c.send("err")
        assert e.value.message == "nope, refused" and e.value.command == "err"
        with pytest.raises(GTPError, match="unknown command"):
            c.send("frobnicate")
        assert c.send("name") == "fake"


def test_crash_is_detected_with_exit_code_and_stderr_then_restart(fake_argv):
    c = GTPClient(fake_argv, timeout_s=10)
    pid = c.pid
    with pytest.raises(EngineCrashed) as e:
        c.send("crash")
    msg = str(e.value)
    assert "exit code 3" in msg and "segfault simulated" in msg and "restart()" in msg
    assert _gone(pid)
    with pytest.raises(EngineCrashed, match="not running"):
        c.send("name")
    c.restart()
    new_pid = c.pid
    assert new_pid != pid and c.send("name") == "fake"
    c.close()
    assert _gone(new_pid)


def test_closed_output_counts_as_a_crash(fake_argv):
    c = GTPClient(fake_argv, timeout_s=10)
    pid = c.pid
    with pytest.raises(EngineCrashed):
        c.send("closeout")
    assert _gone(pid)  # the client kills a half-dead engine rather than leaving it running


def test_hang_times_out_and_engine_is_killed(fake_argv):
    c = GTPClient(fake_argv, timeout_s=10)
    assert c.send("name") == "fake"
    pid = c.pid
    t0 = time.monotonic()
    with pytest.raises(EngineTimeout, match="within 0.5 s"):
        c.send("hang", timeout_s=0.5)
    assert time.monotonic() - t0 < 5
    assert _gone(pid)
    with pytest.raises(EngineCrashed):
        c.send("name")
    c.restart()
    assert c.send("slow 0.1", timeout_s=5) == "slow done"
    c.close()


def test_default_timeout_applies_after_first_command(fake_argv):
    c = GTPClient(fake_argv, timeout_s=0.3, start_timeout_s=10)
    assert c.send("slow 0.5") == "slow done"  # first command: the start-up timeout
    with pytest.raises(EngineTimeout):
        c.send("slow 5")
    c.close()


def test_missing_binary_raises_engine_crashed(tmp_path):
    with pytest.raises(EngineCrashed, match="could not start"):
        GTPClient([str(tmp_path / "no-such-engine")])


def test_one_command_per_send(fake_argv):
    with GTPClient(fake_argv) as c:
        with pytest.raises(ValueError):
            c.send("name\nname")


@pytest.mark.gnugo
def test_real_gnugo_plays_and_refuses_illegal_moves():
    try:
        argv = engines.gnugo_command(level=0)
    except engines.EngineNotFound as e:
        pytest.skip(f"GNU Go not installed: {e}")
    with GTPClient(argv, timeout_s=30) as g:
        assert g.send("protocol_version") == "2"
        g.send("boardsize 9")
        g.send("clear_board")
        g.send("komi 7")
        g.send("play b E5")
        with pytest.raises(GTPError, match="illegal move"):
            g.send("play w E5")
        move = g.send("genmove w")
        assert move.upper() == "PASS" or (move[0].upper() in "ABCDEFGHJ" and 1 <= int(move[1:]) <= 9)
        assert move.upper() != "E5"
        pid = g.pid
    assert _gone(pid)
