"""A real one-node SLURM cluster on loopback, for the tests (pytest fixture `slurm_cluster`).

Debian's slurm-wlm 22.05 (slurmctld + slurmd), munge, slurmdbd and MariaDB, all started here in a
temporary folder and stopped at the end of the session, the way tests/test_postgres_sweep.py
starts PostgreSQL:

    munged    a key made for the test, its own socket (slurm.conf AuthInfo=socket=...)
    mariadbd  a fresh datadir (mariadb-install-db), TCP on 127.0.0.1, a `slurm` user
    slurmdbd  accounting: `sacct`, which submitit and jobs.slurm_job.SlurmJob read, needs it in 22.05
    slurmctld the controller; slurmd the one compute node (this machine's name, cores, memory)

Nothing under /etc is touched: every client (sbatch, sacct, scancel, squeue, sinfo) finds the
cluster through SLURM_CONF, which the `slurm_env` fixture puts in the environment. The daemons run
as root in the foreground (-D), children of this process; `stop()` cancels the jobs left, ends
the daemons by pid and checks with `ps` that nothing started from the temporary folder is left.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

INSTALL = ("apt-get install slurm-wlm slurmdbd munge mariadb-server "
           "(Debian; setup.sh does it when run as root)")
BINARIES = ("munged", "mariadbd", "mariadb-install-db", "mariadb", "slurmdbd", "slurmctld",
            "slurmd", "sbatch", "sacct", "sinfo", "scancel", "squeue", "sacctmgr")
SBIN = ("/usr/sbin", "/usr/bin", "/sbin")
PARTITION = "tengen"            # the one partition (the default one)
CLUSTER = "tengen"              # ClusterName; slurmdbd's accounting rows carry it
START_TIMEOUT_S = 90.0          # each daemon must be up within this
MIN_JOB_MEM_MB = 1024           # what a job of the fake project asks for (--mem), see agent YAMLs


def which(name: str) -> str | None:
    path = shutil.which(name)
    if path:
        return path
    for d in SBIN:
        if os.access(f"{d}/{name}", os.X_OK):
            return f"{d}/{name}"
    return None


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if which(b) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def real_memory_mb() -> int:
    """slurmd's RealMemory: a bit below what the machine has (slurmd drains a node that claims
    more memory than it finds)."""
    with open("/proc/meminfo") as f:
        total_kb = next(int(ln.split()[1]) for ln in f if ln.startswith("MemTotal:"))
    return int(total_kb / 1024 * 0.9)


@dataclass
class SlurmCluster:
    """A running one-node cluster: its folder, slurm.conf and the environment its clients need."""
    root: Path
    conf: Path
    node: str                   # the node's name (this machine's hostname)
    cpus: int
    memory_mb: int
    partition: str = PARTITION
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    started_s: dict[str, float] = field(default_factory=dict)   # seconds each daemon took

    @property
    def env(self) -> dict[str, str]:
        """What a client process needs: SLURM_CONF (no /etc/slurm here) and sbin on PATH."""
        path = os.environ.get("PATH", "")
        extra = [d for d in SBIN if d not in path.split(":")]
        return {"SLURM_CONF": str(self.conf), "PATH": ":".join([path, *extra]).strip(":")}

    def run(self, *cmd: str, timeout: float = 30, check: bool = False) -> subprocess.CompletedProcess:
        cp = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **self.env})
        if check and cp.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({cp.returncode}):\n{cp.stdout}\n{cp.stderr}"
                               f"\n{self.logs()}")
        return cp

    def logs(self, chars: int = 2000) -> str:
        out = []
        for log in sorted(self.root.glob("log/*.log")):
            text = log.read_text(errors="replace")[-chars:]
            out.append(f"--- {log.name}\n{text}")
        return "\n".join(out)

    def job_state(self, job_id: str) -> str:
        """sacct's state of a job ('' while accounting has not seen it)."""
        cp = self.run("sacct", "-n", "-X", "-P", "-o", "State", "-j", str(job_id))
        return cp.stdout.strip().split("\n")[0].split(" ")[0] if cp.returncode == 0 else ""

    def wait_idle(self, timeout: float = 120) -> None:
        """Until no job is queued or running (the next test starts on an empty node)."""
        end = time.time() + timeout
        while time.time() < end:
            cp = self.run("squeue", "-h", "-o", "%i")
            if cp.returncode == 0 and not cp.stdout.strip():
                return
            time.sleep(0.5)
        raise TimeoutError(f"jobs still in the queue after {timeout} s:\n"
                           f"{self.run('squeue').stdout}")

    # -------------------------------------------------------------------- start

    def start(self) -> "SlurmCluster":
        for d in ("log", "run", "state", "spool", "mysql", "munge"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self._start_munge()
        db_port = self._start_mariadb()
        dbd_port = free_port()
        self._start_slurmdbd(db_port, dbd_port)
        self._write_slurm_conf(dbd_port)
        self._start("slurmctld", [which("slurmctld"), "-D", "-f", str(self.conf)],
                    ready=lambda: self.run("sinfo", "-h").returncode == 0)
        self._start("slurmd", [which("slurmd"), "-D", "-N", self.node, "-f", str(self.conf)],
                    ready=self._node_idle)
        self._wait("sacct", lambda: self.run("sacct", "-n", "-X").returncode == 0, time.time())
        return self

    def _start(self, name: str, cmd: list[str], ready, env: dict[str, str] | None = None) -> None:
        t0 = time.time()
        log = open(self.root / "log" / f"{name}.out", "wb")
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.root,
                                            env={**os.environ, **self.env, **(env or {})})
        log.close()
        self._wait(name, ready, t0)

    def _wait(self, name: str, ready, t0: float) -> None:
        end = t0 + START_TIMEOUT_S
        while time.time() < end:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                out = (self.root / "log" / f"{name}.out").read_text(errors="replace")
                raise RuntimeError(f"{name} exited with {proc.returncode} while starting:\n{out}\n"
                                   f"{self.logs()}")
            if ready():
                self.started_s[name] = round(time.time() - t0, 2)
                return
            time.sleep(0.2)
        raise TimeoutError(f"{name} not ready after {START_TIMEOUT_S} s\n{self.logs()}")

    def _start_munge(self) -> None:
        key = self.root / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        self.munge_socket = self.root / "munge" / "munge.socket"
        self._start("munged", [which("munged"), "--foreground", "--force",
                               f"--key-file={key}", f"--socket={self.munge_socket}",
                               f"--pid-file={self.root / 'run' / 'munged.pid'}",
                               f"--seed-file={self.root / 'munge' / 'munged.seed'}",
                               f"--log-file={self.root / 'log' / 'munged.log'}"],
                    ready=self.munge_socket.exists)

    def _start_mariadb(self) -> int:
        data = self.root / "mysql" / "data"
        cp = subprocess.run([which("mariadb-install-db"), "--no-defaults", f"--datadir={data}",
                             "--user=root", "--auth-root-authentication-method=socket",
                             "--skip-test-db"], capture_output=True, text=True, timeout=180)
        if cp.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{cp.stdout}\n{cp.stderr}")
        port = free_port()
        self.db_socket = self.root / "mysql" / "mysqld.sock"
        # small and unsafe on purpose: a throw-away database on a shared 2-core test machine
        self._start("mariadbd", [
            which("mariadbd"), "--no-defaults", f"--datadir={data}", "--user=root",
            f"--socket={self.db_socket}", f"--port={port}", "--bind-address=127.0.0.1",
            f"--pid-file={self.root / 'run' / 'mariadbd.pid'}",
            f"--log-error={self.root / 'log' / 'mariadbd.log'}", "--skip-name-resolve",
            "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M",
            "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
            "--innodb-lock-wait-timeout=900", "--skip-log-bin"],
            ready=lambda: self._sql("SELECT 1").returncode == 0)
        self.db_password = secrets.token_hex(8)
        cp = self._sql(f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{self.db_password}'; "
                       f"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';")
        if cp.returncode != 0:
            raise RuntimeError(f"creating the slurm database user failed: {cp.stderr}")
        return port

    def _sql(self, sql: str) -> subprocess.CompletedProcess:
        return subprocess.run([which("mariadb"), "--no-defaults", f"--socket={self.db_socket}",
                               "-u", "root", "-e", sql], capture_output=True, text=True, timeout=30)

    def _auth(self) -> str:
        return f"AuthType=auth/munge\nAuthInfo=socket={self.munge_socket}\n"

    def _start_slurmdbd(self, db_port: int, dbd_port: int) -> None:
        conf = self.root / "slurmdbd.conf"
        conf.write_text(
            self._auth() +
            f"DbdHost=localhost\nDbdAddr=127.0.0.1\nDbdPort={dbd_port}\nSlurmUser=root\n"
            f"PidFile={self.root / 'run' / 'slurmdbd.pid'}\n"
            f"LogFile={self.root / 'log' / 'slurmdbd.log'}\nDebugLevel=info\n"
            f"StorageType=accounting_storage/mysql\nStorageHost=127.0.0.1\n"
            f"StoragePort={db_port}\nStorageUser=slurm\nStoragePass={self.db_password}\n"
            f"StorageLoc=slurm_acct_db\n")
        conf.chmod(0o600)   # slurmdbd refuses a config others can read (it holds the password)

        def dbd_up() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", dbd_port)) == 0
        self._start("slurmdbd", [which("slurmdbd"), "-D"], ready=dbd_up,
                    env={"SLURM_CONF": str(self.root / "slurm.conf")})

    def _write_slurm_conf(self, dbd_port: int) -> None:
        r = self.root
        self.conf.write_text(
            f"ClusterName={CLUSTER}\nSlurmctldHost={self.node}(127.0.0.1)\n" + self._auth() +
            f"SlurmctldPort={free_port()}\nSlurmdPort={free_port()}\n"
            f"SlurmUser=root\nSlurmdUser=root\n"
            f"StateSaveLocation={r / 'state'}\nSlurmdSpoolDir={r / 'spool'}\n"
            f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}\nSlurmdPidFile={r / 'run' / 'slurmd.pid'}\n"
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}\nSlurmdLogFile={r / 'log' / 'slurmd.log'}\n"
            "SlurmctldDebug=info\nSlurmdDebug=info\nMailProg=/bin/true\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nMpiDefault=none\n"
            "SchedulerType=sched/backfill\nSelectType=select/cons_tres\n"
            "SelectTypeParameters=CR_Core_Memory\nReturnToService=2\n"
            # quick turnaround for the tests: a cancelled job's processes get KillWait s after
            # SIGTERM; time limits are checked every few seconds (the default is 30)
            "KillWait=5\nInactiveLimit=0\nMinJobAge=300\nMessageTimeout=30\n"
            "SchedulerParameters=bf_interval=5\n"
            "AccountingStorageType=accounting_storage/slurmdbd\n"
            f"AccountingStorageHost=127.0.0.1\nAccountingStoragePort={dbd_port}\n"
            # the connection to slurmdbd does not use AuthInfo: its munge socket is named here
            f"AccountingStoragePass={self.munge_socket}\n"
            "JobAcctGatherType=jobacct_gather/none\nJobCompType=jobcomp/none\n"
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} "
            f"RealMemory={self.memory_mb} State=UNKNOWN\n"
            f"PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE "
            f"State=UP\n")

    def _node_idle(self) -> bool:
        cp = self.run("sinfo", "-h", "-N", "-o", "%N %t")
        return cp.returncode == 0 and any(ln.split()[-1] == "idle" for ln in cp.stdout.splitlines()
                                          if ln.split() and ln.split()[0] == self.node)

    # -------------------------------------------------------------------- stop

    def stop(self) -> list[str]:
        """Cancel every job, end the daemons (slurmd first, munged last); return the `ps` lines
        of processes still running from this cluster's folder (expected: none)."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run("scancel", "--full", "--user=root", timeout=30)
            try:
                self.wait_idle(timeout=30)
            except (TimeoutError, subprocess.TimeoutExpired):
                pass
        for name in ("slurmd", "slurmctld", "slurmdbd", "mariadbd", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return self.leftovers()

    def leftovers(self) -> list[str]:
        """Live processes of this cluster: a daemon, a slurmstepd, a job's command. Each has the
        folder in its command line or SLURM_CONF=<this slurm.conf> in its environment (slurmd
        passes its own to slurmstepd, sbatch the submitter's to the job)."""
        marker = f"SLURM_CONF={self.conf}".encode()
        out = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                env = (proc / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and (str(self.root) in cmd or marker in env):
                out.append(f"{proc.name} {cmd.strip()}")
        return out


def start_cluster(root: Path | None = None) -> SlurmCluster:
    root = Path(root or tempfile.mkdtemp(prefix="tengen-slurm-"))
    cluster = SlurmCluster(root=root, conf=root / "slurm.conf", node=socket.gethostname(),
                           cpus=os.cpu_count() or 1, memory_mb=real_memory_mb())
    try:
        return cluster.start()
    except BaseException:
        cluster.stop()
        raise


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real one-node SLURM cluster for the session (skipped where the packages are missing)."""
    missing = missing_binaries()
    if missing:
        pytest.skip(f"SLURM test cluster: {', '.join(missing)} not found: {INSTALL}")
    if os.geteuid() != 0:
        pytest.skip("SLURM test cluster: slurmd runs jobs as their owner and must start as root")
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        left = cluster.stop()
        for line in left:                  # ours: end them, then fail the session
            try:
                os.kill(int(line.split()[0]), 9)
            except (ProcessLookupError, ValueError):
                pass
        shutil.rmtree(cluster.root, ignore_errors=True)
        assert not left, "processes of the test cluster left behind:\n" + "\n".join(left)


@pytest.fixture()
def slurm_env(slurm_cluster, monkeypatch) -> SlurmCluster:
    """The cluster, with SLURM_CONF and PATH set for this test (submitit calls sbatch in-process)."""
    for k, v in slurm_cluster.env.items():
        monkeypatch.setenv(k, v)
    yield slurm_cluster
    try:
        slurm_cluster.wait_idle(timeout=30)
    except TimeoutError as e:   # the test left jobs behind: end them so the next test starts clean
        slurm_cluster.run("scancel", "--full", "--user=root")
        slurm_cluster.wait_idle(timeout=60)
        pytest.fail(f"the test left SLURM jobs queued or running (now cancelled): {e}")
