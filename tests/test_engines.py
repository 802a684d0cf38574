"""Locating KataGo, its network and GNU Go; the KataGo GTP config we write."""
from __future__ import annotations

import importlib.machinery
import os
import re
import stat
from pathlib import Path

import pytest

from go_core.arena import engines
from go_core.arena.engines import EngineNotFound

REQUIRED_KATAGO_KEYS = ("logDir logAllGTPCommunication logSearchInfo logToStderr rules allowResignation "
                        "resignThreshold resignConsecTurns ponderingEnabled maxVisits numSearchThreads "
                        "nnMaxBatchSize").split()


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def clean_env(monkeypatch):
    for var in ("KATAGO_PATH", "KATAGO_MODEL", "GNUGO_PATH"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def _fake_katrain(monkeypatch, root: Path | None):
    """Make importlib find a katrain package at `root` (None: no katrain installed)."""
    real = importlib.util.find_spec

    def find_spec(name, *a, **kw):
        if name == "katrain":
            if root is None:
                return None
            spec = importlib.machinery.ModuleSpec("katrain", None, is_package=True)
            spec.submodule_search_locations = [str(root)]
            return spec
        return real(name, *a, **kw)

    monkeypatch.setattr(engines.importlib.util, "find_spec", find_spec)


def test_katago_lookup_order(tmp_path, clean_env):
    configured = _exe(tmp_path / "cfg" / "katago")
    from_env = _exe(tmp_path / "env" / "katago")
    wheel = _exe(tmp_path / "site" / "katrain" / "KataGo" / "katago")
    _fake_katrain(clean_env, wheel.parent.parent)
    assert engines.find_katago() == wheel                       # the katrain wheel's binary
    clean_env.setenv("KATAGO_PATH", str(from_env))
    assert engines.find_katago() == from_env                    # KATAGO_PATH beats the wheel
    assert engines.find_katago(configured) == configured        # the config path beats both


def test_katago_not_found_says_what_to_install(tmp_path, clean_env):
    _fake_katrain(clean_env, None)
    clean_env.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineNotFound) as e:
        engines.find_katago()
    msg = str(e.value)
    assert "pip install --no-deps katrain==1.20.0" in msg and "pocl-opencl-icd" in msg
    clean_env.setenv("KATAGO_PATH", str(tmp_path / "missing"))
    with pytest.raises(EngineNotFound, match="KATAGO_PATH.*does not exist"):
        engines.find_katago()


def test_installed_katrain_wheel_is_found():
    if importlib.util.find_spec("katrain") is None:
        pytest.skip("katrain wheel not installed (pip install --no-deps katrain==1.20.0)")
    if os.environ.get("KATAGO_PATH"):
        pytest.skip("KATAGO_PATH overrides the wheel here")
    path = engines.find_katago()
    assert path.parts[-3:] == ("katrain", "KataGo", "katago") and os.access(path, os.X_OK)


def test_the_shipped_network_is_the_default(clean_env):
    """A clone or an installed wheel has no ../shared: the net ships inside the package."""
    net = engines.find_katago_model()
    assert net == engines.BUNDLED_KATAGO_MODEL and net.stat().st_size > 1_000_000
    assert "shared" not in net.parts
    assert (engines.BUNDLED_KATAGO_DIR / "LICENSE").read_text().count("MIT") >= 1


def test_model_lookup_order(tmp_path, clean_env):
    shared = tmp_path / "shared" / "katago"
    shared.mkdir(parents=True)
    (shared / "b-net.bin.gz").write_bytes(b"x")
    (shared / "a-net.bin.gz").write_bytes(b"x")
    clean_env.setattr(engines, "BUNDLED_KATAGO_DIR", shared)
    assert engines.find_katago_model() == shared / "a-net.bin.gz"
    env_net = tmp_path / "env.bin.gz"
    env_net.write_bytes(b"x")
    clean_env.setenv("KATAGO_MODEL", str(env_net))
    assert engines.find_katago_model() == env_net
    assert engines.find_katago_model(shared / "b-net.bin.gz") == shared / "b-net.bin.gz"
    with pytest.raises(EngineNotFound, match="does not exist"):
        engines.find_katago_model(tmp_path / "nope.bin.gz")
    clean_env.delenv("KATAGO_MODEL")
    clean_env.setattr(engines, "BUNDLED_KATAGO_DIR", tmp_path / "empty")
    with pytest.raises(EngineNotFound, match="KATAGO_MODEL"):
        engines.find_katago_model()


def _read_cfg(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def test_katago_config_has_every_required_key_and_our_rules(tmp_path):
    path = engines.write_katago_config(tmp_path, visits=32, threads=2)
    cfg = _read_cfg(path)
    for key in REQUIRED_KATAGO_KEYS:
        assert key in cfg, key
    assert cfg["rules"] == "tromp-taylor" and cfg["allowResignation"] == "false"
    assert cfg["maxVisits"] == "32" and cfg["numSearchThreads"] == "2"
    assert Path(cfg["logDir"]).is_dir() and Path(cfg["logDir"]).is_relative_to(tmp_path)
    # same settings share a file; different settings never overwrite each other's
    assert engines.write_katago_config(tmp_path, visits=32, threads=2) == path
    other = engines.write_katago_config(tmp_path, visits=1, extra={"nnMaxBatchSize": 8})
    assert other != path and _read_cfg(other)["nnMaxBatchSize"] == "8" and _read_cfg(path)["maxVisits"] == "32"
    with pytest.raises(ValueError, match="numSearchThreads"):
        engines.write_katago_config(tmp_path, threads=4)
    with pytest.raises(ValueError, match="visits"):
        engines.write_katago_config(tmp_path, visits=0)


def test_katago_command(tmp_path, clean_env):
    exe = _exe(tmp_path / "bin" / "katago")
    net = tmp_path / "net.bin.gz"
    net.write_bytes(b"x")
    argv = engines.katago_command(model=net, visits=8, config_dir=tmp_path / "cfg", binary=exe)
    assert argv[1] == "APPIMAGE_EXTRACT_AND_RUN=1" and os.path.basename(argv[0]) == "env"
    assert argv[2:6] == [str(exe), "gtp", "-model", str(net)] and argv[6] == "-config"
    assert _read_cfg(Path(argv[7]))["maxVisits"] == "8"
    assert engines.katago_env({})["APPIMAGE_EXTRACT_AND_RUN"] == "1"


def test_gnugo_lookup_and_command(tmp_path, clean_env):
    fake = _exe(tmp_path / "gnugo")
    clean_env.setenv("GNUGO_PATH", str(fake))
    assert engines.find_gnugo() == fake
    assert engines.gnugo_command(level=3) == [str(fake), "--mode", "gtp", "--level", "3", "--chinese-rules"]
    assert engines.gnugo_command(level=0, seed=5)[-2:] == ["--seed", "5"]
    with pytest.raises(ValueError, match="0..10"):
        engines.gnugo_command(level=11)
    clean_env.delenv("GNUGO_PATH")
    clean_env.setattr(engines, "GNUGO_DEFAULT_PATH", tmp_path / "none" / "gnugo")
    clean_env.setenv("PATH", str(tmp_path / "none"))
    with pytest.raises(EngineNotFound) as e:
        engines.find_gnugo()
    assert "apt-get install gnugo" in str(e.value)


def test_real_gnugo_is_found_where_debian_puts_it(clean_env):
    if not Path("/usr/games/gnugo").exists():
        pytest.skip("GNU Go not installed (apt-get install gnugo)")
    assert engines.find_gnugo() == Path("/usr/games/gnugo")
    assert re.fullmatch(r".*/gnugo", engines.gnugo_command()[0])


def test_an_installed_wheel_carries_the_network(tmp_path):
    """`pip install tengen` (no clone at all) must find the same net: it is package data."""
    import subprocess
    import sys
    import zipfile
    root = engines.BUNDLED_KATAGO_DIR.parents[2]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(root)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("tengen-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert f"go_core/arena/katago/{engines.BUNDLED_KATAGO_MODEL.name}" in names
    assert "go_core/arena/katago/LICENSE" in names
