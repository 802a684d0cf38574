"""conf/launcher/: the local default, SLURM through submitit (checked up to sbatch), Ray if present."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A fake `sbatch`: keeps the submission script it was given, then fails as a cluster-less
# machine would, so the Hydra launcher stops right after generating the job description.
FAKE_SBATCH = """#!/bin/sh
cp "$1" "$SBATCH_RECORD"
echo "$@" > "$SBATCH_RECORD.argv"
echo "sbatch: error: no cluster here (fake sbatch for tests)" >&2
exit 1
"""


@pytest.fixture()
def app(tmp_path) -> Path:
    """A minimal Hydra app whose defaults list selects our launcher group, as conf/config.yaml does."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/config.yaml").write_text(textwrap.dedent(f"""
        defaults:
          - launcher: local
          - _self_
        hydra:
          searchpath: [file://{ROOT / 'conf'}]
        x: 1
    """))
    (tmp_path / "app.py").write_text(textwrap.dedent("""
        import hydra
        @hydra.main(config_path="conf", config_name="config", version_base=None)
        def main(cfg):
            print("job ran with x =", cfg.x)
        if __name__ == "__main__":
            main()
    """))
    return tmp_path


def run_app(app: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "app.py", *args], cwd=app, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def test_local_is_the_default_launcher(app):
    cp = run_app(app, "--cfg", "hydra")
    assert cp.returncode == 0, cp.stderr
    assert "BasicLauncher" in cp.stdout and "launcher: local" in cp.stdout
    cp = run_app(app, "-m", "x=1,2", "hydra.sweep.dir=multirun")
    assert cp.returncode == 0, cp.stderr
    assert "x = 1" in cp.stdout and "x = 2" in cp.stdout


def test_slurm_launcher_writes_a_valid_sbatch_script(app, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher",
                        reason="hydra-submitit-launcher missing: pip install -e '.[cluster]'")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")   # submitit looks for srun first
    (bin_dir / "srun").chmod(0o755)
    record = tmp_path / "submitted.sh"
    cp = run_app(app, "-m", "launcher=slurm", "hydra.launcher.partition=gpu-a100",
                 "hydra.launcher.timeout_min=90", "hydra.launcher.cpus_per_task=6",
                 "hydra.launcher.gpus_per_node=2", "hydra.launcher.mem_gb=48",
                 f"hydra.sweep.dir={tmp_path / 'multirun'}", "x=1,2",
                 env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "SBATCH_RECORD": str(record)})
    assert record.exists(), f"sbatch was never called:\n{cp.stdout}\n{cp.stderr}"
    assert "no cluster here" in cp.stderr + cp.stdout   # the launcher really went to sbatch
    script = record.read_text()
    lines = script.splitlines()
    assert lines[0].startswith("#!/bin/bash")
    sbatch = dict(re.fullmatch(r"#SBATCH --([a-z-]+)(?:=(.*))?", ln).groups()
                  for ln in lines if ln.startswith("#SBATCH"))
    assert sbatch["partition"] == "gpu-a100"
    assert sbatch["time"] == "90"
    assert sbatch["cpus-per-task"] == "6"
    assert sbatch["gpus-per-node"] == "2"
    assert sbatch["mem"] == "48GB"
    assert sbatch["job-name"] == "tengen"
    assert sbatch["array"] == "0-1%2"   # one array task per job; parallelism min(64, 2)
    # options sbatch knows (a typo in the config would produce an unknown one)
    known = {"job-name", "partition", "time", "cpus-per-task", "gpus-per-node", "mem", "nodes",
             "ntasks-per-node", "array", "output", "error", "open-mode", "signal", "wckey",
             "account", "qos", "constraint", "gres", "exclude", "comment"}
    assert set(sbatch) <= known, set(sbatch) - known
    assert "--partition" not in (record.with_suffix(".sh.argv").read_text())
    # the command: srun runs submitit's entry point on the pickled Hydra job
    command = [ln for ln in lines if ln.startswith("srun")]
    assert command and "-m submitit.core._submit" in command[0]
    assert str(tmp_path / "multirun" / ".submitit") in script
    assert subprocess.run(["bash", "-n", str(record)]).returncode == 0   # valid shell


def test_train_job_accepts_the_launcher_group():
    cp = subprocess.run([sys.executable, "-m", "experiments.train", "--cfg", "hydra",
                         "launcher=slurm", "hydra.launcher.partition=gpu"],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stderr[-2000:]
    assert "SlurmLauncher" in cp.stdout and "partition: gpu" in cp.stdout


def test_ray_launcher_config_composes_when_the_plugin_is_installed(app):
    if importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None:
        pytest.skip("hydra-ray-launcher is not installed (optional: pip install hydra-ray-launcher)")
    cp = run_app(app, "--cfg", "hydra", "launcher=ray")
    assert cp.returncode == 0, cp.stderr
    assert "RayLauncher" in cp.stdout
