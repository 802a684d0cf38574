"""`research run --launcher slurm` and `research sweep --launcher slurm` on a real SLURM cluster.

The cluster is tests/slurm_cluster.py's: slurmctld, slurmd, slurmdbd, MariaDB and munged on
loopback, started once for the session. The nodes are the fake project's (tests/fake_project,
`--job-module fakejob`): seconds each, so what is tested is the path through sbatch, sacct and
scancel, not training. Each job asks for 1 CPU and 1 GB (the agent YAML below); the node has this
machine's cores.
"""
from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("submitit", reason="submitit missing: pip install -e '.[cluster]'")

from autoresearch.jobs import slurm_job, slurm_script  # noqa: E402
from autoresearch.jobs.spec import RECORD_NAME, SCRIPT_NAME, STARTED_NAME  # noqa: E402
from tests.launch import start_job  # noqa: E402
from autoresearch.agent_config import SlurmConfig  # noqa: E402
from experiment_tree.store import TreeStore  # noqa: E402
from tests.fakerepo import FAKE_PROJECT, JOB_MODULE, behaviour_patch, make_fake_repo  # noqa: E402
from tests.slurm_cluster import slurm_cluster, slurm_env  # noqa: E402,F401 (fixtures)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
# what a job of the fake project gets on the test node (conf/launcher/slurm.yaml asks for 8 CPUs,
# a GPU and 32 GB, which this node does not have: sbatch would refuse the job)
SLURM_YAML = {"cpus_per_task": 1, "gpus_per_node": 0, "mem_gb": 1, "poll_s": 1, "rc_grace_s": 10}


def agent_yaml(path: Path, partition: str, **more) -> Path:
    fields = {**SLURM_YAML, "partition": partition, **more}
    path.write_text("slurm:\n" + "".join(f"  {k}: {v}\n" for k, v in fields.items()))
    return path


def slurm_cfg(c, **more) -> SlurmConfig:
    return SlurmConfig(**{**SLURM_YAML, "partition": c.partition, **more})


def cli(*args: str, env: dict[str, str], timeout: float = 600, **kw):
    return subprocess.run([sys.executable, "-m", "autoresearch.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, **kw)


def clean_env(c) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}, **c.env}


def run_args(repo: Path, ws: Path, agent: Path, *extra: str) -> list[str]:
    return ["--workspace", str(ws), "--repo", str(repo), "--job-module", JOB_MODULE,
            "--proposer", "offline", "--sweep", str(FAKE_PROJECT / "fake_sweep.yaml"),
            "--mem-limit-mb", "0", "--no-report", "--agent-config", str(agent), *extra]


def wait_for(cond, timeout: float, what: str):
    end = time.time() + timeout
    while time.time() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def bwrap_works() -> bool:
    """job.sh's own check (jobs/slurm_script.py): can an ordinary bubblewrap sandbox start?"""
    return subprocess.run(["bash", "-c", "command -v bwrap >/dev/null && bwrap --unshare-user "
                           "--unshare-pid --ro-bind / / --proc /proc --dev /dev true"],
                          capture_output=True).returncode == 0


def records(ws: Path) -> dict[int, dict]:
    return {int(p.parent.name): json.loads(p.read_text())
            for p in (ws / "runs").glob(f"*/{RECORD_NAME}")}


def test_the_cluster_answers_sinfo_and_sacct(slurm_env):
    c = slurm_env
    print(json.dumps({"daemon_start_s": c.started_s, "node": c.node, "cpus": c.cpus,
                      "real_memory_mb": c.memory_mb}))
    assert "idle" in c.run("sinfo", "-h", "-o", "%t").stdout
    # the check the fixture makes at the end (nothing left) sees the five daemons now
    daemons = {"munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd"}
    seen = {Path(ln.split()[1]).name for ln in c.leftovers()}
    assert daemons <= seen, seen
    out = c.run("sbatch", "--parsable", "-c", "1", "--mem=100M", "-o", "/dev/null",
                "--wrap", "exit 3", check=True).stdout
    job = out.strip().split(";")[0]
    assert wait_for(lambda: c.job_state(job) == "FAILED", 60, "sacct to say FAILED")
    exit_code = c.run("sacct", "-n", "-X", "-P", "-o", "ExitCode", "-j", job).stdout.strip()
    assert exit_code == "3:0"


def test_research_run_runs_its_nodes_as_slurm_jobs(slurm_env, tmp_path):
    """Nodes submitted through submitit; sacct has each job, COMPLETED, on this node."""
    c = slurm_env
    repo, ws = make_fake_repo(tmp_path / "repo"), tmp_path / "ws"
    t0 = time.time()
    cp = cli("run", "Which lr?", *run_args(repo, ws, agent_yaml(tmp_path / "a.yaml", c.partition),
                                           "--launcher", "slurm", "--max-nodes", "3",
                                           "--workers", "2"), env=clean_env(c))
    wall = time.time() - t0
    assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr[-3000:]
    store = TreeStore(ws / "tree.db")
    nodes = store.nodes(store.questions()[-1].id)
    assert len(nodes) == 3 and all(n.status == "ok" for n in nodes), \
        [(n.id, n.status, n.error) for n in nodes]
    recs = records(ws)
    assert sorted(recs) == sorted(n.id for n in nodes)
    for n in nodes:
        rec = recs[n.id]
        assert rec["cluster"] == "slurm"
        assert c.job_state(rec["job_id"]) == "COMPLETED"
        log = (Path(n.run_dir) / "job.log").read_text()
        assert f"job {rec['job_id']} on {c.node}" in log
        # the node's sandbox runs inside the SLURM job (bubblewrap, where it can run here)
        sandboxed = "# sandbox: bwrap" in log
        assert sandboxed or "# sandbox: none" in log, log[:500]
        assert sandboxed == bwrap_works(), log[:500]
        assert n.metrics["elo"] is not None
    # sacct's other fields lag: slurmdbd may get a job's step before the job itself and show it
    # as "allocation" for a few seconds (seen here); State is right at once
    ids = ",".join(r["job_id"] for r in recs.values())
    want = sorted(f"tengen-{i}" for i in recs)
    wait_for(lambda: sorted(c.run("sacct", "-n", "-X", "-P", "-o", "JobName", "-j", ids)
                            .stdout.split()) == want, 60, f"sacct to name the jobs {want}")
    print(json.dumps({"research_run_slurm_3_nodes_wall_s": round(wall, 1)}))


def test_node_start_latency_slurm_vs_local(slurm_env, tmp_path):
    """Seconds from the launch call to the node's command running (env.json written by the fake
    job) and to its result, for a SLURM job and a local sandboxed process. Printed, not asserted."""
    c = slurm_env
    repo = make_fake_repo(tmp_path / "repo")
    ws = tmp_path / "ws"
    times: dict[str, list[tuple[float, float]]] = {"slurm": [], "local": []}
    for i in range(3):
        for launcher in ("local", "slurm"):
            node = len(times["slurm"]) + len(times["local"]) + 1
            run_dir = ws / "runs" / str(node)
            t0 = time.time()
            if launcher == "slurm":
                job = start_job(repo, node, [], None, run_dir, 120, 0, {},
                                launcher="slurm", job_module=JOB_MODULE,
                                slurm=slurm_cfg(c, poll_s=0.5, rc_grace_s=5))
            else:
                job = start_job(repo, node, [], None, run_dir, 120, 0, {}, job_module=JOB_MODULE)
            wait_for(lambda: (run_dir / "env.json").exists(), 120, f"{launcher} node to start")
            started = (run_dir / "env.json").stat().st_mtime - t0
            res = job.wait(poll_s=0.2)
            assert res.status == "ok", res.error
            times[launcher].append((started, time.time() - t0))

    def stats(pairs, k):
        xs = [p[k] for p in pairs]
        return {"mean": round(statistics.mean(xs), 2), "min": round(min(xs), 2),
                "max": round(max(xs), 2), "n": len(xs)}
    print(json.dumps({launcher: {"to_command_s": stats(v, 0), "to_result_s": stats(v, 1)}
                      for launcher, v in times.items()}))


def test_scancel_of_a_running_node_is_a_crash_with_the_reason(slurm_env, tmp_path):
    c = slurm_env
    repo = make_fake_repo(tmp_path / "repo")
    job = start_job(repo, 1, [], behaviour_patch("hang"), tmp_path / "ws/runs/1",
                    600, 0, {}, launcher="slurm", job_module=JOB_MODULE,
                    slurm=slurm_cfg(c, poll_s=0.5, rc_grace_s=3))
    wait_for(lambda: (job.run_dir / "env.json").exists(), 120, "the node to run")
    assert job.poll() is None
    c.run("scancel", job.job_id, check=True)          # someone else (an admin, a user) cancels
    res = job.wait(poll_s=0.5)
    assert res.status == "crash", res.error
    assert f"SLURM job {job.job_id} ended CANCELLED" in res.error
    summary = json.loads((job.run_dir / "summary.json").read_text())
    assert summary["status"] == "crash" and "CANCELLED" in summary["error"]
    assert not (tmp_path / "ws/worktrees/1").exists()


def test_a_job_past_its_slurm_time_limit_is_a_timeout(slurm_env, tmp_path):
    """Our own wall clock off (0): SLURM's --time ends the job, the node says timeout.

    submitit asks SLURM for USR2 90 s before --time and ends the job when it comes; SLURM may
    send it up to 60 s early. With --time=1 min it could come before submitit had installed its
    handler (seen: the job died FAILED with no word from submitit), so 3 min: USR2 at 30-90 s."""
    c = slurm_env
    repo = make_fake_repo(tmp_path / "repo")
    job = start_job(repo, 1, [], behaviour_patch("hang"), tmp_path / "ws/runs/1",
                    0, 0, {}, launcher="slurm", job_module=JOB_MODULE,
                    slurm=slurm_cfg(c, poll_s=1, rc_grace_s=3, time_margin_min=3))
    assert job.record["time_limit_min"] == 3
    t0 = time.time()
    res = job.wait(poll_s=1)
    took = time.time() - t0
    assert res.status == "timeout", (res.error, res.log_tail)
    assert "time limit of 3 min" in res.error
    state = c.job_state(job.job_id)
    print(json.dumps({"time_limit_job": {"sacct_state": state, "ended_after_s": round(took, 1),
                                         "error": res.error}}))


def test_resume_after_kill_9_reattaches_to_queued_and_running_jobs(slurm_env, tmp_path):
    """After the baseline, three nodes at once on a two-core node: two run (15 s each), one is
    queued. After kill -9 of `research run`, --resume follows those three jobs to their end
    instead of submitting them again."""
    c = slurm_env
    repo, ws = make_fake_repo(tmp_path / "repo"), tmp_path / "ws"
    agent = agent_yaml(tmp_path / "a.yaml", c.partition)
    # the nodes sleep (a gate file would be hidden from them: the SLURM job's sandbox binds only
    # the node's worktree and run directory, not job.readonly)
    args = run_args(repo, ws, agent, "--set", "fake.sleep=15")
    loop = subprocess.Popen([sys.executable, "-m", "autoresearch.cli", "run", "Which lr?", *args,
                             "--launcher", "slurm", "--max-nodes", "4", "--workers", "3"],
                            cwd=ROOT, env=clean_env(c), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def two_running_one_queued():
            recs = {i: r for i, r in records(ws).items() if i != 1}
            states = sorted(c.job_state(r["job_id"]) for r in recs.values())
            running = sum((ws / "runs" / str(i) / "env.json").exists() for i in recs)
            return states == ["PENDING", "RUNNING", "RUNNING"] and running == 2
        wait_for(two_running_one_queued, 120, "two nodes running and one queued")
        loop.send_signal(signal.SIGKILL)
        loop.wait(timeout=30)
        before = {i: r["job_id"] for i, r in records(ws).items()}
        assert len(before) == 4
        assert sorted(c.job_state(before[i]) for i in before if i != 1) == \
            ["PENDING", "RUNNING", "RUNNING"], "the jobs outlive the killed loop"

        resume = subprocess.Popen([sys.executable, "-m", "autoresearch.cli", "run", "--resume",
                                   *args], cwd=ROOT, env=clean_env(c), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = resume.communicate(timeout=300)
        finally:
            if resume.poll() is None:
                resume.kill()
                resume.wait()
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.wait()
    assert resume.returncode == 0, out[-3000:]
    store = TreeStore(ws / "tree.db")
    nodes = store.nodes(store.questions()[-1].id)
    assert sorted(n.id for n in nodes) == sorted(before), [(n.id, n.status) for n in nodes]
    assert all(n.status == "ok" for n in nodes), [(n.id, n.status, n.error) for n in nodes]
    # the same jobs, not new ones: every job id unchanged, and no other job of this workspace
    assert {i: r["job_id"] for i, r in records(ws).items()} == before
    for job_id in before.values():
        assert c.job_state(job_id) == "COMPLETED"
    # sbatch --chdir is the node's run directory: every job this workspace ever submitted
    rows = c.run("sacct", "-n", "-X", "-P", "-o", "JobID,WorkDir", "-S", "now-1hours").stdout.split()
    submitted = {ln.split("|")[0] for ln in rows if ln.split("|")[1].startswith(str(ws.resolve()))}
    assert submitted == set(before.values())


def test_a_sweep_whose_trials_are_slurm_jobs_sharing_one_study(slurm_env, tmp_path):
    import optuna
    from tests.sweep_helpers import make_fake_repo as make_sweep_repo, write_sweep

    c = slurm_env
    sweep = write_sweep(tmp_path / "s.yaml", """
        name: slurm_sweep
        objective: elo
        params:
          fake.quality: {type: float, low: 0.1, high: 2.0}
        pruner: none
        sampler: {type: tpe, seed: 0, n_startup_trials: 2}
        base_overrides: [fake.steps=2, fake.sleep=0.01]
        job: {module: fake_train, wall_clock_s: 120}
    """)
    ws = tmp_path / "ws"
    cp = cli("sweep", str(sweep), "--trials", "4", "--workers", "2", "--workspace", str(ws),
             "--repo", str(make_sweep_repo(tmp_path)), "--launcher", "slurm",
             "--agent-config", str(agent_yaml(tmp_path / "a.yaml", c.partition)), env=clean_env(c))
    assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr[-3000:]
    out = json.loads(cp.stdout[cp.stdout.index("{"):])
    assert out["worker_exit_codes"] == [0, 0] and out["states"] == {"COMPLETE": 4}
    study = optuna.load_study(study_name="slurm_sweep", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(ws / "optuna-journal.log"))))
    recs = records(ws)
    assert sorted(t.user_attrs["node_id"] for t in study.trials) == sorted(recs)
    for t in study.trials:
        rec = recs[t.user_attrs["node_id"]]
        assert rec["cluster"] == "slurm" and c.job_state(rec["job_id"]) == "COMPLETED"
        assert rec["branch"].startswith("sweep/slurm_sweep-")
        summary = json.loads((ws / "runs" / str(t.user_attrs["node_id"]) / "summary.json").read_text())
        assert summary["metrics"]["elo"] == pytest.approx(t.value)


def test_a_stale_sweep_trial_on_slurm_is_scancelled(slurm_env, tmp_path):
    """A sweep worker dies (kill -9) while its trial runs as a SLURM job; the job is SLURM's and
    lives on. The next worker's fail_stale_trials must scancel it: its pid file names a process
    on the compute node (here the same machine, on a real cluster another one), not ours to kill."""
    from autoresearch.search_space import load_sweep
    from autoresearch.sweep import fail_stale_trials, open_study
    from experiment_tree.workspace import Workspace
    from tests.sweep_helpers import make_fake_repo as make_sweep_repo, write_sweep

    c = slurm_env
    sweep = write_sweep(tmp_path / "s.yaml", """
        name: stale_slurm
        objective: elo
        params: {fake.quality: {type: float, low: 0.5, high: 1.0}}
        pruner: none
        sampler: {type: random, seed: 3}
        base_overrides: [fake.steps=1200, fake.sleep=0.1]
        job: {module: fake_train, wall_clock_s: 300}
        heartbeat: {interval_s: 1, grace_s: 2, max_retry: 1}
    """)
    ws, repo = Workspace(tmp_path / "ws"), make_sweep_repo(tmp_path)
    run = ws.runs_dir / "1"
    worker = subprocess.Popen([sys.executable, "-m", "autoresearch.sweep", str(sweep), "--trials",
                               "1", "--workspace", str(ws.root), "--repo", str(repo), "--launcher",
                               "slurm", "--agent-config",
                               str(agent_yaml(tmp_path / "a.yaml", c.partition))],
                              cwd=ROOT, env=clean_env(c), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: (run / "metrics.jsonl").exists() and slurm_job.read_record(run), 120,
                 "the trial's SLURM job to run")
        job_id = slurm_job.read_record(run)["job_id"]
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        time.sleep(4)                                   # past grace_s: the trial is stale
        assert c.job_state(job_id) == "RUNNING", "the job outlives the worker that submitted it"
        spec = load_sweep(sweep)
        study = open_study(spec, str(ws.root / "optuna-journal.log"), create=False)
        with ws.store() as store:
            marked = fail_stale_trials(study, spec, store, 1, repo, ws.root, worker=1)
            node = store.get_node(1)
        state = c.job_state(job_id)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert marked == [1]
    assert state == "CANCELLED", state
    assert node.status == "interrupted"
    assert f"its SLURM job {job_id} was cancelled (scancel; sacct: CANCELLED)" in node.error
    assert "queued its parameters again as trial 1" in node.error
    assert not (ws.root / "worktrees" / "1").exists(), "the cancelled trial's worktree is removed"
    assert [t.state.name for t in study.trials] == ["FAIL", "WAITING"]


# what a real training node does on the test node: the tiny budget cut to 16 self-play games with
# small searches and a short warm start (a few minutes on 2 busy cores, shared start included)
REAL_TINY = ["tracking=disabled", "budget.max_games=16", "selfplay.games_per_iteration=8",
             "selfplay.parallel_games=8", "selfplay.visits=8", "selfplay.cheap_visits=2",
             "train.batch_size=64", "train.max_steps_per_iteration=10",
             "train.warm_start.random_value_games=100", "train.warm_start.random_value_steps=10"]


@pytest.mark.timeout(3600)
def test_a_real_question_whose_nodes_train_on_slurm_is_rated_by_the_referee(slurm_env, tmp_path):
    """`research run "..." --launcher slurm` with the real job (experiments.train): baseline and one
    child, each a SLURM job that trains from the question's shared start (read through the
    sandbox's read-only bind), then the referee's ladder Elo of both and its head-to-head verdict."""
    c = slurm_env
    repo, ws = tmp_path / "repo", tmp_path / "ws"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True, timeout=120)
    agent = agent_yaml(tmp_path / "a.yaml", c.partition, cpus_per_task=c.cpus, mem_gb=4, poll_s=2)
    with open(agent, "a") as f:   # a small head-to-head: one seed pair, at most 24 game pairs
        f.write("verdict:\n  pairs_per_seed_pair: 24\n  max_seed_pairs: 1\n")
    sets = [w for o in REAL_TINY for w in ("--set", o)]
    t0 = time.time()
    cp = cli("run", "Does mcts.c_puct=2.0 beat the default c_puct?", "--workspace", str(ws),
             "--repo", str(repo), "--launcher", "slurm", "--max-nodes", "2", "--workers", "1",
             "--proposer", "offline", "--no-report", "--agent-config", str(agent), *sets,
             env=clean_env(c), timeout=3300)
    wall = time.time() - t0
    print(cp.stdout[-3000:])
    assert cp.returncode == 0, cp.stdout[-4000:] + cp.stderr[-4000:]
    store = TreeStore(ws / "tree.db")
    q = store.questions()[-1]
    nodes = store.nodes(q.id)
    assert [(n.kind, n.status) for n in nodes] == [("baseline", "ok"), ("config", "ok")], \
        [(n.id, n.kind, n.status, n.error) for n in nodes]
    base, child = nodes
    assert child.parent_id == base.id and "mcts.c_puct=2" in " ".join(child.overrides)
    start = Path(q.settings["start_checkpoint"])
    assert start.is_file() and start.is_relative_to(ws)
    recs = records(ws)
    starts = {}
    for n in nodes:
        rec, run = recs[n.id], Path(n.run_dir)
        # a SLURM job of this cluster, COMPLETED, that ran the real training job
        assert rec["cluster"] == "slurm" and c.job_state(rec["job_id"]) == "COMPLETED"
        assert rec["command"][:3] == [sys.executable, "-m", "experiments.train"]
        log = (run / "job.log").read_text()
        assert f"job {rec['job_id']} on {c.node}" in log
        assert ("# sandbox: bwrap" in log) == bwrap_works(), log[:500]
        # the shared start, read inside the job's sandbox through its read-only bind
        assert f"train.warm_start.init_checkpoint={start}" in rec["command"]
        script = (run / SCRIPT_NAME).read_text()
        assert f"--ro-bind {start.parent} {start.parent}" in script
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "ok" and summary["metrics"]["games"] == 16
        assert summary["warm_start"]["init_checkpoint"] == str(start)
        # the referee's ladder Elo, with its interval, from its own folder (not the job's word)
        m = n.metrics
        assert m["elo_ci95"][0] < m["elo"] < m["elo_ci95"][1], m
        assert (ws / "ratings" / str(n.id) / "ladder.json").is_file()
        starts[n.id] = float((run / STARTED_NAME).read_text().split()[0]) - rec["submitted_at"]
    # the head-to-head verdict of the child against the baseline, with interval and MDE
    v = child.metrics["verdict_detail"]
    assert child.verdict in ("better", "worse", "inconclusive") and child.verdict_test
    assert v["ci95"][0] <= v["diff_elo"] <= v["ci95"][1] and v["mde_elo"] > 0
    assert v["games_per_side"] >= 2 and v["seed_pairs"] == 1
    print(json.dumps({"real_question_on_slurm": {
        "wall_s": round(wall, 1), "submit_to_command_s": {k: round(s, 2) for k, s in starts.items()},
        "elo": {n.id: [n.metrics["elo"], n.metrics["elo_ci95"]] for n in nodes},
        "verdict": [child.verdict, v["diff_elo"], v["ci95"], v["games_per_side"], v["mde_elo"]]}}))


@pytest.mark.skipif(os.geteuid() != 0 or not bwrap_works(), reason="needs root and bubblewrap")
def test_a_root_submitted_job_can_read_the_start_a_local_sandbox_wrote(tmp_path):
    """The start is written 0600 by a local sandboxed job (uid nobody when the harness is root);
    the SLURM job's sandbox is root without capabilities: it reads only what the modes allow."""
    from autoresearch import bwrap
    start = tmp_path / "start" / "checkpoints"
    start.mkdir(parents=True)
    ckpt = start / "latest.pt"
    ckpt.write_bytes(b"net")
    for p in (start, ckpt):
        os.chown(p, bwrap.SANDBOX_UID, bwrap.SANDBOX_UID)
    ckpt.chmod(0o600)
    start.chmod(0o700)
    read = ["bwrap", "--unshare-user", "--cap-drop", "ALL", "--ro-bind", "/", "/", "--proc", "/proc",
            "--dev", "/dev", "cat", str(ckpt)]
    assert subprocess.run(read, capture_output=True).returncode != 0, "unreadable before"
    slurm_script.readable_by_job((start,))
    assert subprocess.run(read, capture_output=True).stdout == b"net"
