"""`research run --launcher slurm|submitit-local`: nodes sent to a cluster through submitit.

SLURM is faked by shell scripts on PATH (sbatch keeps the script and answers a job id, sacct
answers the state the test sets, scancel records the call): the generated sbatch script and the
node's job.sh are checked, then the test plays the compute node by running job.sh itself.
submitit's LocalExecutor runs real nodes end to end on this machine.
"""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("submitit", reason="submitit missing: pip install -e '.[cluster]'")

from autoresearch import jobs, run_cli  # noqa: E402
from autoresearch.jobs import slurm as cluster  # noqa: E402
from autoresearch.jobs.spec import SCRIPT_NAME, STARTED_NAME  # noqa: E402
from tests.launch import start_job  # noqa: E402
from autoresearch.agent_config import SlurmConfig  # noqa: E402
from experiment_tree.store import TreeStore  # noqa: E402
from tests.fakerepo import FAKE_PROJECT, JOB_MODULE, behaviour_patch, make_fake_repo  # noqa: E402

FAKE_SLURM = {
    # keeps every submitted script; answers like sbatch (or fails like it, if $FAKE/refuse exists)
    "sbatch": """#!/bin/bash
if [ -f "$FAKE/refuse" ]; then cat "$FAKE/refuse" >&2; exit 1; fi
id=$(cat "$FAKE/next_id"); echo $((id + 1)) > "$FAKE/next_id"
cp "$1" "$FAKE/sbatch_$id.sh"; echo "$@" > "$FAKE/sbatch_$id.argv"
echo PENDING > "$FAKE/state_$id"
echo "Submitted batch job $id"
""",
    # sacct -o JobID,State,NodeList --parsable2 -j ID ...: the state the test wrote
    "sacct": """#!/bin/bash
echo "JobID|State|NodeList"
while [ $# -gt 0 ]; do
  if [ "$1" = "-j" ]; then shift; [ -f "$FAKE/state_$1" ] && echo "$1|$(cat "$FAKE/state_$1")|node1"; fi
  shift
done
""",
    "squeue": "#!/bin/bash\necho JOBID\n",
    "scancel": """#!/bin/bash
echo "$@" >> "$FAKE/scancel.log"
echo "CANCELLED by $(id -u)" > "$FAKE/state_$1"
""",
    "srun": "#!/bin/bash\nexit 1\n",   # submitit's SlurmExecutor requires srun on PATH
}


@pytest.fixture()
def fake_slurm(tmp_path, monkeypatch) -> Path:
    fake = tmp_path / "fake_slurm"
    (fake / "bin").mkdir(parents=True)
    for name, text in FAKE_SLURM.items():
        (fake / "bin" / name).write_text(text)
        (fake / "bin" / name).chmod(0o755)
    # submitit caches job states per job id for the whole process: ids unique per test
    (fake / "next_id").write_text(str(random.randrange(10 ** 6, 10 ** 7)))
    monkeypatch.setenv("FAKE", str(fake))
    monkeypatch.setenv("PATH", f"{fake / 'bin'}:{os.environ['PATH']}")
    return fake


@pytest.fixture()
def repo(tmp_path) -> Path:
    return make_fake_repo(tmp_path / "repo")


def set_state(fake: Path, job_id: str, state: str) -> None:
    (fake / f"state_{job_id}").write_text(state + "\n")


def sbatch_options(script: str) -> dict[str, str | None]:
    return dict(re.fullmatch(r"#SBATCH --([a-z-]+)(?:=(.*))?", ln).groups()
                for ln in script.splitlines() if ln.startswith("#SBATCH"))


def submit(repo, ws, node_id, wall=600.0, slurm=None, overrides=("train.lr=0.01",), patch=None,
           env=None):
    return start_job(
        repo, node_id, list(overrides), patch, ws / "runs" / str(node_id), wall, 4096,
        env or {"TENGEN_TEST_VAR": "from the loop"}, launcher="slurm",
        slurm=slurm or SlurmConfig(poll_s=0, rc_grace_s=0), job_module=JOB_MODULE)


def play_compute_node(job, **env) -> subprocess.CompletedProcess:
    """Do what SLURM + submitit would do on the node: run job.sh (in the worktree)."""
    return subprocess.run(["bash", str(job.run_dir / SCRIPT_NAME)], cwd=job.worktree,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def test_sbatch_script_for_a_partition_and_the_node_command(repo, tmp_path, fake_slurm):
    ws = tmp_path / "ws"
    cfg = SlurmConfig(partition="gpu-a100", account="proj42", cpus_per_task=6, gpus_per_node=2,
                      mem_gb=48, setup=["module load cuda/12"], poll_s=0, rc_grace_s=0)
    job = submit(repo, ws, 1, wall=1500.0, slurm=cfg)
    assert isinstance(job, cluster.SlurmJob)
    jid = job.job_id
    script = (fake_slurm / f"sbatch_{jid}.sh").read_text()
    opts = sbatch_options(script)
    assert opts["partition"] == "gpu-a100"
    assert opts["account"] == "proj42"
    assert opts["time"] == "35"                      # 1500 s = 25 min + 10 min margin
    assert opts["cpus-per-task"] == "6"
    assert opts["gpus-per-node"] == "2"
    assert opts["mem"] == "48GB"
    assert opts["job-name"] == "tengen-1"
    assert opts["nodes"] == "1" and opts["ntasks-per-node"] == "1"
    assert "array" not in opts                       # one node, one job
    assert opts["chdir"] == str((ws / "runs/1").resolve())
    assert "module load cuda/12" in script.splitlines()
    run_dir = (ws / "runs/1").resolve()
    # the node's command is named in the script (a comment) and is what the pickle runs
    assert f"hydra.run.dir={run_dir}" in script and "-m fakejob train.lr=0.01" in script
    srun = [ln for ln in script.splitlines() if ln.startswith("srun")]
    assert srun and "-m submitit.core._submit" in srun[0]
    # the step must not inherit sbatch's --export list (it would lose SUBMITIT_EXECUTOR and
    # the setup lines' variables): on a real SLURM the job died at once without this line
    lines = script.splitlines()
    assert lines.index("export SLURM_EXPORT_ENV=ALL") < lines.index(srun[0])
    assert subprocess.run(["bash", "-n", "-c", script]).returncode == 0
    fn = job.sjob.submission().function
    assert fn.command == ["bash", str(run_dir / "job.sh")]
    assert Path(fn.cwd) == (ws / "worktrees/1").resolve() and fn.env is None
    sh = (run_dir / "job.sh").read_text()
    assert f"cd {(ws / 'worktrees/1').resolve()}" in sh
    assert f"hydra.run.dir={run_dir}" in sh and "ulimit" not in sh   # SLURM's --mem is the limit
    # OpenMP threads wait passively (bwrap.ENV_DEFAULTS) unless the batch environment says otherwise
    assert sh.index("OMP_WAIT_POLICY=PASSIVE") < sh.index('${OMP_WAIT_POLICY+"OMP_WAIT_POLICY=$OMP_WAIT_POLICY"}')
    assert subprocess.run(["bash", "-n", str(run_dir / "job.sh")]).returncode == 0
    record = json.loads((run_dir / "job.submitit.json").read_text())
    assert record["job_id"] == jid and record["cluster"] == "slurm"
    assert record["resources"]["partition"] == "gpu-a100"

    # queued, then running: poll says "not yet"
    assert job.poll() is None
    set_state(fake_slurm, jid, "RUNNING")
    assert job.poll() is None
    # the compute node runs job.sh; it must not pass the API key on to the run
    cp = play_compute_node(job, ANTHROPIC_API_KEY="sk-secret", SLURM_JOB_ID=jid)
    assert cp.returncode == 0, cp.stderr
    set_state(fake_slurm, jid, "COMPLETED")
    res = job.wait(poll_s=0.05)
    assert res.status == "ok", res.error
    assert res.summary["metrics"]["elo"] > 0
    env = json.loads((run_dir / "env.json").read_text())
    assert "ANTHROPIC_API_KEY" not in env["keys"] and "TENGEN_TEST_VAR" in env["keys"]
    assert Path(env["cwd"]).resolve() == (ws / "worktrees/1").resolve()
    assert f"job {jid} on" in (run_dir / "job.log").read_text()
    assert not (ws / "worktrees/1").exists(), "worktree removed once the job is over"


def test_gres_instead_of_gpus_and_resources_from_the_hydra_launcher_yaml(repo, tmp_path, fake_slurm):
    launcher = tmp_path / "slurm.yaml"
    launcher.write_text("hydra:\n  launcher:\n    partition: shared\n    cpus_per_task: 3\n"
                        "    gpus_per_node: 4\n    mem_gb: 12\n    setup: ['source venv/bin/activate']\n")
    cfg = SlurmConfig(resources_from=str(launcher), gpus_per_node=0, gres="gpu:a100:1",
                      additional={"mail-type": "END"}, poll_s=0, rc_grace_s=0)
    res = cluster.slurm_resources(cfg)
    assert (res.partition, res.cpus_per_task, res.gpus_per_node, res.mem_gb) == ("shared", 3, 0, 12)
    job = submit(repo, tmp_path / "ws", 2, slurm=cfg)
    script = (fake_slurm / f"sbatch_{job.job_id}.sh").read_text()
    opts = sbatch_options(script)
    assert opts["partition"] == "shared" and opts["cpus-per-task"] == "3"
    assert opts["gres"] == "gpu:a100:1" and "gpus-per-node" not in opts
    assert opts["mem"] == "12GB" and opts["mail-type"] == "END"
    assert "source venv/bin/activate" in script
    job.kill("test over")
    assert job.wait(poll_s=0.05).status == "crash"
    # the project's own launcher file is what `research run` uses by default
    default = cluster.slurm_resources(SlurmConfig())
    assert default.cpus_per_task == 8 and default.gpus_per_node == 1 and default.mem_gb == 32


SUBMITIT_TIMEOUT_LOG = ("submitit WARNING - Caught signal SIGUSR2 on node1: this job is timed-out.\n"
                        "submitit INFO - Job not requeued because: timed-out and not checkpointable.\n")


@pytest.mark.parametrize("state,status,words,log", [
    ("FAILED", "crash", "ended FAILED", ""),
    ("TIMEOUT", "timeout", "time limit of 20 min", ""),
    ("OUT_OF_MEMORY", "crash", "ended OUT_OF_MEMORY", ""),
    ("NODE_FAIL", "crash", "ended NODE_FAIL", ""),
    # SLURM's USR2 before the limit: submitit ends the job itself, SLURM says FAILED
    ("FAILED", "timeout", "time limit of 20 min (submitit: timed-out)", SUBMITIT_TIMEOUT_LOG),
])
def test_slurm_end_states_map_to_node_statuses(repo, tmp_path, fake_slurm, state, status, words,
                                               log):
    job = submit(repo, tmp_path / "ws", 3)
    set_state(fake_slurm, job.job_id, "RUNNING")
    assert job.poll() is None
    # the job died on the node before job.sh could record an exit code
    (job.sjob.paths.stderr).parent.mkdir(parents=True, exist_ok=True)
    job.sjob.paths.stderr.write_text("slurmstepd: error: something on the node\n" + log)
    set_state(fake_slurm, job.job_id, state)
    res = job.wait(poll_s=0.05)
    assert res.status == status and words in res.error, res.error
    assert "slurmstepd: error" in res.log_tail          # submitit's log is in the node's tail
    summary = json.loads((tmp_path / "ws/runs/3/summary.json").read_text())
    assert summary["status"] == status


def test_a_scancel_from_outside_after_the_command_recorded_its_exit_code_says_cancelled(
        repo, tmp_path, fake_slurm):
    """scancel kills the command; job.sh may still write job.rc (143) before SLURM ends the job.
    The node waits for sacct to say how the job ended (rc_grace_s at most), then says CANCELLED."""
    from autoresearch.jobs.spec import RC_NAME
    job = submit(repo, tmp_path / "ws", 7, slurm=SlurmConfig(poll_s=0, rc_grace_s=60))
    set_state(fake_slurm, job.job_id, "RUNNING")
    assert job.poll() is None
    (job.run_dir / RC_NAME).write_text("143\n")
    assert job.poll() is None, "classified before sacct said how the job ended"
    set_state(fake_slurm, job.job_id, f"CANCELLED by {os.getuid()}")
    res = job.wait(poll_s=0.05)
    assert res.status == "crash" and res.returncode == 143, res.error
    assert f"SLURM job {job.job_id} ended CANCELLED" in res.error
    assert "CANCELLED" in json.loads((tmp_path / "ws/runs/7/summary.json").read_text())["error"]


def test_completed_job_with_a_crashing_or_invalid_run_is_classified_like_a_local_one(
        repo, tmp_path, fake_slurm):
    ws = tmp_path / "ws"
    crash = submit(repo, ws, 4, patch=behaviour_patch("crash"))
    bad = submit(repo, ws, 5, overrides=["bad.key=1"])
    for job in (crash, bad):
        set_state(fake_slurm, job.job_id, "RUNNING")
        assert play_compute_node(job).returncode != 0
        set_state(fake_slurm, job.job_id, "FAILED")
    res = crash.wait(poll_s=0.05)
    assert res.status == "crash" and "RuntimeError" in res.error and res.returncode == 1
    assert "fake job crashed on purpose" in res.log_tail
    res = bad.wait(poll_s=0.05)
    assert res.status == "invalid" and "Could not override 'bad.key'" in res.error


def test_our_wall_clock_cancels_the_slurm_job(repo, tmp_path, fake_slurm):
    job = submit(repo, tmp_path / "ws", 6, wall=5.0)
    set_state(fake_slurm, job.job_id, "PENDING")
    assert job.poll() is None                      # time in the queue does not count
    set_state(fake_slurm, job.job_id, "RUNNING")
    (job.run_dir / STARTED_NAME).write_text(f"{time.time() - 60:.0f} node1\n")
    assert job.poll() is None                      # past its limit: cancelled, not yet gone
    assert job.job_id in (fake_slurm / "scancel.log").read_text()
    res = job.wait(poll_s=0.05)                    # scancel made sacct say CANCELLED
    assert res.status == "timeout" and "wall-clock limit of 5 s" in res.error
    assert not (tmp_path / "ws/worktrees/6").exists()


def test_refused_patch_never_reaches_the_cluster(repo, tmp_path, fake_slurm):
    from tests.fakerepo import PROTECTED_PATCH
    job = submit(repo, tmp_path / "ws", 7, patch=PROTECTED_PATCH)
    assert job.wait().status == "refused"
    assert not list(fake_slurm.glob("sbatch_*.sh"))


def agent_yaml(tmp_path: Path, **slurm) -> Path:
    path = tmp_path / "agent.yaml"
    lines = ["slurm:", "  poll_s: 0", "  rc_grace_s: 0"] + [f"  {k}: {v}" for k, v in slurm.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def loop_args(repo, ws, agent, *extra):
    return ["--workspace", str(ws), "--repo", str(repo), "--job-module", JOB_MODULE,
            "--proposer", "offline", "--sweep", str(FAKE_PROJECT / "fake_sweep.yaml"),
            "--mem-limit-mb", "0", "--no-report", "--agent-config", str(agent), *extra]


def test_resume_reattaches_to_the_slurm_job_of_a_killed_loop(repo, tmp_path, fake_slurm):
    """The loop died while its baseline was a running SLURM job: --resume follows that job to
    its end instead of re-running it, and the node is counted once."""
    ws = tmp_path / "ws"
    store = TreeStore(ws / "tree.db")
    qid = store.add_question("q", {"runs": 1, "board": "9x9", "budget": "tiny", "seed": 0,
                                   "proposer": "offline", "job_module": JOB_MODULE,
                                   "launcher": "slurm"})
    base = store.add_node(qid, None, "baseline", "baseline")
    job = submit(repo, ws, base)                   # what the dead loop had submitted
    store.update_node(base, status="running", run_dir=str(ws / "runs" / str(base)))
    set_state(fake_slurm, job.job_id, "RUNNING")
    del job

    def compute_node():                            # the job finishes while the loop watches
        time.sleep(1.0)
        subprocess.run(["bash", str(ws / "runs" / str(base) / "job.sh")], check=True,
                       capture_output=True, timeout=60)
        set_state(fake_slurm, record["job_id"], "COMPLETED")

    record = json.loads((ws / "runs" / str(base) / "job.submitit.json").read_text())
    t = threading.Thread(target=compute_node)
    t.start()
    rc = run_cli.main(["--resume", *loop_args(repo, ws, agent_yaml(tmp_path))])
    t.join()
    assert rc == 1   # the baseline alone (budget 1) compares nothing: exit 1 says so
    nodes = store.nodes(qid)
    assert [(n.id, n.status) for n in nodes] == [(base, "ok")], [(n.id, n.status, n.error) for n in nodes]
    assert len(list(fake_slurm.glob("sbatch_*.sh"))) == 1, "reattached, not resubmitted"
    assert not (fake_slurm / "scancel.log").exists()


def test_a_refused_submission_pauses_the_question_instead_of_spending_runs(repo, tmp_path,
                                                                          fake_slurm):
    (fake_slurm / "refuse").write_text("sbatch: error: invalid partition specified: nope\n")
    ws = tmp_path / "ws"
    rc = run_cli.main(["q?", *loop_args(repo, ws, agent_yaml(tmp_path), "--launcher", "slurm",
                                         "--partition", "nope", "--max-nodes", "2")])
    assert rc == 130
    store = TreeStore(ws / "tree.db")
    q = store.questions()[-1]
    assert q.status == "interrupted" and q.settings["launcher"] == "slurm"
    [node] = store.nodes(q.id)
    assert node.status == "pending"               # resumable once the partition is fixed
    assert not (ws / "worktrees" / str(node.id)).exists()


# ------------------------------------------------------------------ submitit's LocalExecutor

def local_job(repo, ws, node_id, overrides=(), patch=None, wall=60.0, mem=0):
    return start_job(repo, node_id, list(overrides), patch, ws / "runs" / str(node_id), wall, mem,
                     {"WANDB_MODE": "offline"}, launcher="submitit-local", job_module=JOB_MODULE)


def test_submitit_local_runs_nodes_end_to_end(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-secret")
    ws = tmp_path / "ws"
    ok = local_job(repo, ws, 1, ["seed=3"], patch=behaviour_patch("ok", 250.0))
    hung = local_job(repo, ws, 2, patch=behaviour_patch("hang"), wall=2.0)
    res = ok.wait()
    assert res.status == "ok", res.log_tail
    env = json.loads((ws / "runs/1/env.json").read_text())
    assert "ANTHROPIC_API_KEY" not in env["keys"] and env["WANDB_MODE"] == "offline"
    assert Path(env["cwd"]).resolve() == (ws / "worktrees/1").resolve()
    assert (ws / "runs/1/job.rc").read_text().strip() == "0"
    shown = subprocess.run(["git", "show", "node/1:go_core/learn/fake_behaviour.py"], cwd=repo,
                           capture_output=True, text=True).stdout
    assert "ELO_BONUS = 250.0" in shown
    pgid = int((ws / "runs/2/job.pid").read_text().split()[0])
    res = hung.wait()
    assert res.status == "timeout" and "wall-clock limit of 2 s" in res.error
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)                        # the hung run's whole group is gone
    assert not (ws / "worktrees/2").exists()


def test_research_run_with_the_submitit_local_launcher(repo, tmp_path):
    ws = tmp_path / "ws"
    rc = run_cli.main(["Which lr?", *loop_args(repo, ws, agent_yaml(tmp_path),
                                               "--launcher", "submitit-local",
                                               "--max-nodes", "2", "--workers", "2")])
    assert rc == 0
    store = TreeStore(ws / "tree.db")
    nodes = store.nodes(store.questions()[-1].id)
    assert len(nodes) == 2 and all(n.status == "ok" for n in nodes), [(n.status, n.error) for n in nodes]
    for n in nodes:
        assert (Path(n.run_dir) / "job.submitit.json").exists()
        assert json.loads((Path(n.run_dir) / "job.submitit.json").read_text())["cluster"] == "local"


def test_workspace_folders_symlinked_to_a_shared_disk_are_resolved_for_the_node(
        repo, tmp_path, fake_slurm):
    """tree.db may stay local; runs/ and worktrees/ are symlinks into the shared disk."""
    shared, ws = tmp_path / "shared", tmp_path / "ws"
    for name in ("runs", "worktrees", "submitit"):
        (shared / name).mkdir(parents=True)
        ws.mkdir(exist_ok=True)
        (ws / name).symlink_to(shared / name)
    job = submit(repo, ws, 8)
    sh = (shared / "runs/8/job.sh").read_text()
    assert f"cd {shared / 'worktrees/8'}" in sh and f"hydra.run.dir={shared / 'runs/8'}" in sh
    assert str(ws) not in sh
    assert str(shared / "submitit") in (fake_slurm / f"sbatch_{job.job_id}.sh").read_text()
    set_state(fake_slurm, job.job_id, "RUNNING")
    assert play_compute_node(job).returncode == 0
    assert job.wait(poll_s=0.05).status == "ok"
    assert not (shared / "worktrees/8").exists()


def test_after_a_dead_loop_a_submitit_local_node_is_ended_not_reattached(repo, tmp_path):
    """submitit-local jobs die with their handles: --resume kills the orphan (job.pid, this host)
    and re-queues the node, as for a local run."""
    ws = tmp_path / "ws"
    job = local_job(repo, ws, 9, patch=behaviour_patch("hang"), wall=600)
    run_dir = ws / "runs/9"
    end = time.time() + 30
    while not (run_dir / "env.json").exists() and time.time() < end:
        time.sleep(0.1)
    assert jobs.reattach(run_dir) is None
    assert jobs.local.kill_orphan(run_dir)
    res = job.wait()
    assert res.status == "crash" and res.returncode != 0


def test_a_slurm_node_can_read_the_questions_starting_checkpoint(repo, tmp_path, fake_slurm):
    """The shared start lives outside the node's worktree and run dir: job.sh's sandbox must bind
    it read-only, as the local launcher does (seen missing: every SLURM node would crash)."""
    start = tmp_path / "ws" / "start" / "1" / "checkpoints"
    start.mkdir(parents=True)
    job = start_job(
        repo, 5, ["train.lr=0.01"], None, tmp_path / "ws" / "runs" / "5", 600.0, 4096, {},
        launcher="slurm", slurm=SlurmConfig(poll_s=0, rc_grace_s=0), job_module=JOB_MODULE,
        inputs=(start,))
    sh = (job.run_dir / SCRIPT_NAME).read_text()
    assert f"--ro-bind {start.resolve()} {start.resolve()}" in sh
