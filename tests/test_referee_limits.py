"""Red team: a node that tries to exhaust the machine -- a fork bomb, a huge file, a run
directory that fills the disk -- is stopped by the sandbox's limits, and nothing else is hurt."""
from __future__ import annotations

import textwrap

import pytest

from autoresearch import bwrap
from tests.launch import start_job
from tests.fakerepo import JOB_MODULE, code_patch, make_fake_repo

pytestmark = pytest.mark.skipif(not bwrap.bwrap_status()[0],
                                reason=f"bubblewrap cannot run here: {bwrap.bwrap_status()[1]}")


def run(tmp_path, code: str, **kw):
    repo = make_fake_repo(tmp_path / "repo")
    return start_job(repo, 1, [], code_patch(repo, textwrap.dedent(code)), tmp_path / "ws/runs/1",
                     wall_clock_s=60, mem_limit_mb=0, job_module=JOB_MODULE, **kw).wait()


def test_a_fork_bomb_hits_the_process_limit(tmp_path):
    res = run(tmp_path, """
        import os, sys, time
        n = 0
        try:
            for _ in range(400):
                if os.fork() == 0:
                    time.sleep(3)
                    os._exit(0)
                n += 1
        except OSError as e:
            print(f"fork refused after {n}: {e}", flush=True)
            sys.exit(3)
        """, limits=bwrap.Limits(nproc=64))
    assert res.status == "crash"
    assert "fork refused after" in res.log_tail and "Resource temporarily unavailable" in res.log_tail


def test_a_file_larger_than_the_file_size_limit_cannot_be_written(tmp_path):
    res = run(tmp_path, """
        import sys
        run_dir = [a.split("=", 1)[1] for a in sys.argv if a.startswith("hydra.run.dir=")][0]
        with open(run_dir + "/big.bin", "wb") as f:
            for _ in range(64):
                f.write(b"x" * 2 ** 20)
        """, limits=bwrap.Limits(fsize_mb=8))
    assert res.status == "crash", res.error
    assert (tmp_path / "ws/runs/1/big.bin").stat().st_size <= 8 * 2 ** 20


def test_a_run_directory_past_its_disk_cap_is_killed(tmp_path):
    res = run(tmp_path, """
        import sys, time
        run_dir = [a.split("=", 1)[1] for a in sys.argv if a.startswith("hydra.run.dir=")][0]
        for i in range(40):
            with open(f"{run_dir}/chunk{i}.bin", "wb") as f:
                f.write(b"x" * 2 ** 20)
        time.sleep(60)
        """, disk_limit_mb=16)
    assert res.status == "crash"
    assert "disk" in res.error and "over the cap of 16 MiB" in res.error
