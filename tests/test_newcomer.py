"""A newcomer's first run: the doctor, the preflight, a failed baseline, exit codes, progress."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoresearch import doctor, run_cli
from autoresearch.progress import Console, failure_line, progress_line
from experiment_tree.store import TreeStore
from go_core.arena import engines
from tests.fakerepo import FAKE_PROJECT, JOB_MODULE, make_fake_repo

ROOT = Path(__file__).resolve().parents[1]


def research(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    return subprocess.run([sys.executable, "-m", "autoresearch.cli", *args], cwd=ROOT,
                          env={**base, **(env or {})}, capture_output=True, text=True, timeout=timeout)


def engines_present() -> bool:
    try:
        engines.find_katago()
        engines.find_gnugo()
        return True
    except engines.EngineNotFound:
        return False


@pytest.mark.katago
def test_doctor_passes_on_a_machine_set_up_by_setup_sh():
    if not engines_present():
        pytest.skip("KataGo or GNU Go is not installed here (bash setup.sh as root installs both)")
    cp = research("doctor")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    for name in ("torch", "numba kernels", "katago binary", "katago network", "katago gtp game",
                 "gnu go", "anthropic"):
        assert name in cp.stdout
    assert "KataGo played" in cp.stdout


def test_doctor_names_a_missing_katago_and_the_line_that_fixes_it(tmp_path):
    cp = research("doctor", "--quick", env={"KATAGO_PATH": str(tmp_path / "no-katago")})
    assert cp.returncode == 1, cp.stdout
    assert "[FAIL] katago binary" in cp.stdout and "no-katago" in cp.stdout
    assert "fix: .venv/bin/python -m pip install --no-deps katrain==1.20.0" in cp.stdout


def test_the_doctor_never_prints_the_api_key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-very-secret-value")
    c = doctor.check_anthropic(doctor.load_default_model(), required=True)
    assert c.ok and "sk-ant" not in c.detail + (c.fix or "")
    retired = doctor.check_anthropic("claude-2.0", required=True)
    assert not retired.ok and "NOT" in retired.detail and "set anthropic.model" in retired.fix
    # listed by the SDK but past the end of life its table records
    gone = doctor.check_anthropic("claude-mythos-preview", required=True)
    assert not gone.ok and "retired" in gone.detail


def test_research_run_stops_in_preflight_and_trains_nothing(tmp_path):
    """KATAGO_PATH pointing at a missing file: exit 1 in seconds, the problem and its fix named."""
    ws = tmp_path / "ws"
    t = time.monotonic()
    cp = research("run", "Does c_puct 2.5 beat 1.5 on 9x9?", "--workspace", str(ws),
                  env={"KATAGO_PATH": str(tmp_path / "missing-katago")})
    elapsed = time.monotonic() - t
    print(f"preflight refusal took {elapsed:.1f} s")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "preflight failed, nothing was trained" in cp.stderr
    assert "missing-katago" in cp.stderr and "fix:" in cp.stderr
    assert not (ws / "runs").exists() and not (ws / "worktrees").exists()
    assert not (ws / "tree.db").exists() or TreeStore(ws / "tree.db").questions() == []


def fake_args(repo: Path, ws: Path, *extra: str) -> list[str]:
    return ["--workspace", str(ws), "--repo", str(repo), "--job-module", JOB_MODULE,
            "--proposer", "offline", "--sweep", str(FAKE_PROJECT / "fake_sweep.yaml"),
            "--mem-limit-mb", "0", "--no-report", *extra]


def test_a_crashed_baseline_stops_the_question_and_resume_runs_it_again(tmp_path, capsys):
    repo = make_fake_repo(tmp_path / "repo")
    ws = tmp_path / "ws"
    rc = run_cli.main(["Which lr?", *fake_args(repo, ws, "--max-nodes", "4",
                                               "--set", "fake.mode=crash")])
    out = capsys.readouterr().out
    assert rc == 1
    store = TreeStore(ws / "tree.db")
    q = store.get_question(1)
    nodes = store.nodes(1)
    assert q.status == "failed" and len(nodes) == 1, "no trial ran after the baseline crashed"
    assert "baseline" in q.answer and "crashed on purpose" in q.answer and "--resume" in q.answer
    # the console shows the exception's own message and the log path, not "Traceback ..."
    line = next(ln for ln in out.splitlines() if "node 1 crash" in ln)
    assert "RuntimeError: fake job crashed on purpose" in line and "Traceback" not in line
    assert f"(log: {ws / 'runs' / '1' / 'job.log'})" in out
    # the fix (here: dropping the crash override) then --resume: a new baseline, then the trials
    rc = run_cli.main(["--resume", *fake_args(repo, ws, "--max-nodes", "4")])
    assert rc == 0
    nodes = store.nodes(1)
    assert [n.kind for n in nodes[:2]] == ["baseline", "baseline"]
    assert nodes[0].status == "crash" and nodes[1].status == "ok"
    assert all(n.parent_id == nodes[1].id for n in nodes[2:] if n.kind != "rerun")
    assert any(n.verdict for n in nodes) and store.get_question(1).status != "failed"


def test_usage_errors_exit_2(tmp_path):
    ws = tmp_path / "ws"
    assert run_cli.main(["q?", "--workspace", str(ws), "--workers", "0", "--skip-preflight"]) == 2
    assert run_cli.main(["--resume", "--workspace", str(ws), "--skip-preflight"]) == 2
    assert run_cli.main(["--workspace", str(ws)]) == 2           # no question
    assert "130" in run_cli.__doc__ and "Exit codes" in run_cli.__doc__


def test_console_is_plain_when_not_a_terminal(tmp_path):
    out = io.StringIO()
    con = Console(out, live=False)
    run = tmp_path / "run"
    run.mkdir()
    con.update([(3, run, time.time())])                  # no progress.json yet: nothing
    assert out.getvalue() == ""
    (run / "progress.json").write_text(json.dumps(
        {"phase": "selfplay", "iteration": 2, "games_done": 14, "games_total": 32,
         "eta_s": 70, "sims_per_s": 540.4}))
    con.update([(3, run, time.time() - 83)])
    con.update([(3, run, time.time() - 84)])             # same phase: no second line
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "\x1b" not in out.getvalue()
    assert "node 3: self-play iteration 2: 14/32 games, 1:23 elapsed, ~1:10 left, 540 sims/s" in lines[0]
    (run / "progress.json").write_text(json.dumps({"phase": "training", "iteration": 2}))
    con.update([(3, run, time.time())])
    assert "training iteration 2" in out.getvalue().splitlines()[-1]


def test_console_redraws_live_lines_on_a_terminal(tmp_path):
    out = io.StringIO()
    con = Console(out, live=True)
    con.update([(1, None, time.time()), (2, None, time.time())])
    con.event("node 3 running")
    text = out.getvalue()
    assert text.count("\x1b[1A\x1b[2K") == 2, "the two live lines are cleared before the event"
    assert "node 3 running" in text.splitlines()[-1]


def test_failure_line_is_the_exception_not_the_traceback_header():
    tb = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
          "go_core.arena.engines.EngineNotFound: no KataGo network found in /x\n")
    assert failure_line(tb) == "go_core.arena.engines.EngineNotFound: no KataGo network found in /x"
    assert failure_line(None) == "no error message"
    assert progress_line(4, None, None).strip().startswith("node 4: starting")
