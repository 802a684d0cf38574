"""No module of the project over MAX_LINES lines, except those that hold numba kernels (issue 15:
"one home per concept"; a long file is a sign of two). A file over the limit is split into
modules named for what they do, not exempted.

The exemptions are named here and checked: a kernel file must really hold numba kernels, and an
exemption that is no longer needed (the file shrank or went away) fails too, so the list stays
true.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("go_core", "experiments", "autoresearch", "experiment_tree", "reports", "benchmarks",
           "tests")
MAX_LINES = 450   # the "about 400", with room for a docstring that grows

# Modules of numba kernels: hot loops over flat arrays, kept with the small functions that call
# them and the plain-Python references the tests compare against.
KERNEL_MODULES: dict[str, str] = {
    "go_core/game/board_kernels.py": "the rules engine's kernels (moves, captures, superko, scoring)",
}


def line_counts() -> dict[str, int]:
    """Project-relative path -> lines, for every Python file under FOLDERS."""
    out = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if any(part.startswith(".") or part == "__pycache__" for part in path.parts):
                continue
            out[str(path.relative_to(ROOT))] = len(path.read_text().splitlines())
    return out


def oversized(counts: dict[str, int]) -> list[str]:
    return [f"{p}: {n} lines (split it into modules named for what they do)"
            for p, n in sorted(counts.items()) if n > MAX_LINES and p not in KERNEL_MODULES]


def stale_exemptions(counts: dict[str, int]) -> list[str]:
    return [f"{p}: {'gone' if p not in counts else f'{counts[p]} lines'}, no longer over "
            f"{MAX_LINES}: remove it from the exemptions" for p in sorted(KERNEL_MODULES)
            if counts.get(p, 0) <= MAX_LINES]


def test_no_module_over_the_limit_except_the_named_ones():
    counts = line_counts()
    assert len(counts) > 100                      # the walk sees the project at all
    bad = oversized(counts)
    assert not bad, f"modules over {MAX_LINES} lines:\n" + "\n".join(bad)


def test_every_exemption_is_still_needed_and_true():
    counts = line_counts()
    stale = stale_exemptions(counts)
    assert not stale, "\n".join(stale)
    for path in KERNEL_MODULES:     # `@numba.njit(...)` or a local `@njit` wrapper of it
        assert re.search(r"^@(numba\.)?njit\b", (ROOT / path).read_text(), re.M), \
            f"{path} is exempt as a kernel module but holds no numba kernel"


def test_the_check_catches_a_long_module(tmp_path, monkeypatch):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "reports" / "short.py").write_text("x = 1\n" * MAX_LINES)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    counts = line_counts()
    assert oversized(counts) == [f"reports/long.py: {MAX_LINES + 1} lines (split it into modules "
                                 f"named for what they do)"]
    assert len(stale_exemptions(counts)) == len(KERNEL_MODULES)   # none of the exempt files is there
