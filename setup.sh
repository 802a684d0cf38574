#!/usr/bin/env bash
# One-step set-up on a fresh machine with only Python: system packages (when root),
# a virtualenv in .venv, the CPU torch wheel first, then this project and its test extra,
# and the KataGo binary from the katrain wheel (without katrain's GUI dependencies).
# Idempotent: running it again only checks what is there.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  need=""
  # slurm-wlm slurmdbd munge mariadb-server: the one-node SLURM cluster of the tests
  # (tests/slurm_cluster.py starts its own daemons; the system services are not used)
  for p in gnugo ocl-icd-libopencl1 pocl-opencl-icd chromium postgresql bubblewrap \
           slurm-wlm slurmdbd munge mariadb-server; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
  done
  if [ -n "$need" ]; then
    echo "[setup] apt-get install$need"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
  fi
else
  echo "[setup] not root: install these Debian packages yourself for the full set of tests:" \
       "sudo apt-get install gnugo ocl-icd-libopencl1 pocl-opencl-icd chromium postgresql bubblewrap" \
       "slurm-wlm slurmdbd munge mariadb-server" \
       "(tests that need them skip with the reason)" >&2
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
# torch first, pinned: on a CPU machine this takes the CPU wheel instead of GBs of CUDA packages.
.venv/bin/python -c "import torch" 2>/dev/null || $PIP install -q "torch==2.13.0" || $PIP install -q "torch>=2.2,<2.14"
$PIP install -q -e ".[test,cluster]"
.venv/bin/python -c "import katrain" 2>/dev/null || $PIP install -q --no-deps "katrain==1.20.0"
echo "[setup] ready: $(.venv/bin/python --version), torch $(.venv/bin/python -c 'import torch; print(torch.__version__)')"
