"""A sweep whose Optuna storage is a real PostgreSQL server (started here, on loopback).

Workers on many machines share a study this way; here two worker processes share it. The server
comes from Debian's `postgresql` package; it runs as an unprivileged user when the tests run as
root (PostgreSQL refuses to run as root), in a temporary data directory, and is stopped after.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres


def find_pg_bin() -> Path | None:
    for name in ("initdb", "pg_ctl"):
        path = shutil.which(name)
        if path and name == "pg_ctl":
            return Path(path).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    bin_dir = find_pg_bin()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    pytest.importorskip("psycopg2", reason="psycopg2 missing: pip install psycopg2-binary")
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:   # postgres will not run as root: run it as an unprivileged user
        for name in ("postgres", "nobody"):
            try:
                owner = pwd.getpwnam(name)
                break
            except KeyError:
                continue
        runuser = shutil.which("runuser")
        if owner is None or runuser is None:
            pytest.skip("running as root and no unprivileged user (postgres/nobody) or runuser")
        as_user = [runuser, "-u", owner.pw_name, "--"]
    root = Path(tempfile.mkdtemp(prefix="tengen-pg-"))
    data = root / "data"
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    port = free_port()
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}

    def run(*cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *cmd], capture_output=True, text=True, env=env,
                              timeout=timeout, cwd=root)

    cp = run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--no-sync")
    assert cp.returncode == 0, f"initdb failed:\n{cp.stdout}\n{cp.stderr}"
    opts = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c synchronous_commit=off -c full_page_writes=off")
    cp = run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "server.log"),
             "-w", "-t", "60", "start")
    if cp.returncode != 0:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed:\n{cp.stdout}\n{cp.stderr}\n{log}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_a_postgres_study(tmp_path, postgres_url):
    import optuna
    from autoresearch.sweep import run_sweep
    from experiment_tree.workspace import Workspace
    from tests.sweep_helpers import make_fake_repo, write_sweep

    sweep = write_sweep(tmp_path / "pg.yaml", """
        name: pg_sweep
        objective: elo
        params:
          fake.quality: {type: float, low: 0.1, high: 2.0}
        pruner: none
        sampler: {type: tpe, seed: 0, n_startup_trials: 2}
        base_overrides: [fake.steps=2, fake.sleep=0.01]
        job: {module: fake_train, wall_clock_s: 60}
    """)
    ws = Workspace(tmp_path / "ws")
    out = run_sweep(sweep, trials=4, workers=2, workspace=ws.root, storage=postgres_url,
                    repo_root=make_fake_repo(tmp_path), poll_s=0.1)
    assert out["worker_exit_codes"] == [0, 0]
    assert out["storage"] == postgres_url and not (ws.root / "optuna-journal.log").exists()

    # read back through a fresh connection: the study lives in PostgreSQL
    # (SQLAlchemy >= 2.1 reads plain postgresql:// as psycopg 3; name the installed driver)
    study = optuna.load_study(study_name="pg_sweep",
                              storage=postgres_url.replace("postgresql://", "postgresql+psycopg2://"))
    assert len(study.trials) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    with ws.store() as store:
        nodes = {n.id: n for n in store.nodes() if n.kind == "sweep-trial"}
    assert sorted(t.user_attrs["node_id"] for t in study.trials) == sorted(nodes)
    for t in study.trials:
        assert nodes[t.user_attrs["node_id"]].metrics["elo"] == pytest.approx(t.value)
    assert study.best_value == max(t.value for t in study.trials)
