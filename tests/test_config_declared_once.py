"""Each config value is declared once, with a doc, where the code that uses it lives; one name per class.

Walks every field of the training job's schema (experiments/config.py JobConfig, composed from
go_core/learn's config classes) and of the agent's (autoresearch/agent_config.py AgentConfig), and
every key of the YAML in conf/: a field without its one-line doc, a class that mirrors a schema's
fields under another name, or a YAML value that repeats its schema's default is a second
declaration, and fails here.
"""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import yaml

from autoresearch.agent_config import AgentConfig, load_agent_config
from experiments.config import GROUPS, JobConfig
from experiments.config_docs import walk_fields

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("go_core", "experiments", "autoresearch", "experiment_tree", "reports", "benchmarks")
# Groups of the job whose YAML may only say what differs from the schema: the learner's, and the
# rating's (its schema, go_core/arena/rungs.py, is pinned with it). conf/board and conf/budget are
# the referee's, pinned at a question's start and composed by the rating without the learner's code
# (where their schema lives), so their files state every value (typed through job_schema all the same).
LEARNER_GROUPS = ("model", "mcts", "selfplay", "train", "rating")
REFEREE_GROUPS = ("board", "budget")
# Mirrors of a schema known to remain, each with the reason; the test fails when one goes away too,
# so that this list only shrinks.
KNOWN_MIRRORS: dict[tuple[str, str], str] = {}


def _source_dataclasses() -> dict[str, list[tuple[str, set[str]]]]:
    """class name -> [(file, fields declared in its body)] for every dataclass of the project."""
    out: dict[str, list[tuple[str, set[str]]]] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and any(
                        "dataclass" in ast.unparse(d) for d in node.decorator_list):
                    names = {s.target.id for s in node.body
                             if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
                    out.setdefault(node.name, []).append((str(path.relative_to(ROOT)), names))
    return out


def _schema_classes() -> set[type]:
    return {cls for root in (JobConfig, AgentConfig) for _, cls, _ in walk_fields(root)} | {JobConfig, AgentConfig}


@pytest.mark.parametrize("root", [JobConfig, AgentConfig], ids=["job", "agent"])
def test_every_field_has_exactly_one_documented_declaration(root):
    seen: dict[str, type] = {}
    undocumented = []
    for key, cls, doc in walk_fields(root):
        assert key not in seen, f"{key} declared twice: {seen[key].__qualname__} and {cls.__qualname__}"
        seen[key] = cls
        if not doc:
            undocumented.append(f"{key} ({cls.__module__}.{cls.__qualname__})")
    assert not undocumented, ("fields without their one-line doc (a comment beside the field): "
                              + ", ".join(undocumented))


def test_the_learner_declares_its_own_groups_and_the_job_uses_those_classes():
    from go_core.learn.mcts_config import MCTSConfig
    from go_core.learn.net import NetConfig
    from go_core.learn.selfplay import SelfPlayConfig
    from go_core.learn.training import TrainConfig
    from go_core.learn.warmstart import WarmStartConfig
    assert GROUPS["mcts"] is MCTSConfig and GROUPS["selfplay"] is SelfPlayConfig and GROUPS["train"] is TrainConfig
    assert issubclass(GROUPS["model"], NetConfig)
    assert {f.name: f.type for f in dataclasses.fields(TrainConfig)}["warm_start"] in (WarmStartConfig, "WarmStartConfig")


def _module(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def test_no_class_mirrors_a_schema_under_another_name():
    """A second dataclass holding most of a schema's fields, or one with its name, is a second
    declaration of them (as experiments' MCTSConfig was of go_core.learn's, with a renaming function)."""
    source = _source_dataclasses()
    schemas = _schema_classes()
    mirrors = set()
    for schema in schemas:
        own = {f.name for f in dataclasses.fields(schema)}
        related = {c.__name__ for c in schema.__mro__} | {c.__name__ for c in schemas if issubclass(c, schema)}
        for name, decls in source.items():
            for path, names in decls:
                if name in related and (name != schema.__name__ or _module(path) == schema.__module__):
                    continue
                if name == schema.__name__ or len(own & names) >= max(3, len(own) // 2):
                    mirrors.add((schema.__name__, name))
    assert mirrors == set(KNOWN_MIRRORS), (
        f"dataclasses that repeat a config schema's fields: {sorted(mirrors - set(KNOWN_MIRRORS))}; use the "
        f"schema class itself (no copy, no renaming function). Gone (remove from KNOWN_MIRRORS): "
        f"{sorted(set(KNOWN_MIRRORS) - mirrors)}")


def _leaves(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _default(cls: type, key: str):
    obj = cls()
    for part in key.split("."):
        if not dataclasses.is_dataclass(obj) or part not in {f.name for f in dataclasses.fields(obj)}:
            raise KeyError(key)
        obj = getattr(obj, part)
    return obj


def learner_yaml_problems(root: Path) -> tuple[list[str], int]:
    """What in root/conf/<learner group>/*.yaml is not a difference from its schema; keys checked."""
    problems, checked = [], 0
    for group in LEARNER_GROUPS:
        for path in sorted((root / "conf" / group).glob("*.yaml")):
            where = path.relative_to(root)
            raw = yaml.safe_load(path.read_text()) or {}
            first = (raw.get("defaults") or [None])[0]
            if first != "schema" and not (first == "default" and path.name != "default.yaml"):
                # (conf/rating/full.yaml extends default.yaml, which extends the schema and sets nothing)
                problems.append(f"{where} must extend its schema (defaults: [schema, _self_])")
            for key, value in _leaves({k: v for k, v in raw.items() if k != "defaults"}):
                checked += 1
                try:
                    default = _default(GROUPS[group], key)
                except KeyError:
                    problems.append(f"{where}: {key} is not a field of {GROUPS[group].__name__}")
                    continue
                if value == default:
                    problems.append(f"{where}: {key}: {value!r} repeats the default declared in "
                                    f"{GROUPS[group].__module__}; delete the line")
    return problems, checked


def test_learner_yaml_holds_only_what_differs_from_its_schema():
    problems, checked = learner_yaml_problems(ROOT)
    assert not problems, "\n".join(problems)
    assert checked > 0   # the b2c32 and b10c128 nets differ from the default net


def test_a_yaml_that_repeats_a_default_or_names_no_schema_is_caught(tmp_path):
    """The check can fail: conf/mcts/default.yaml used to copy every MCTSConfig field."""
    (tmp_path / "conf" / "mcts").mkdir(parents=True)
    (tmp_path / "conf" / "mcts" / "default.yaml").write_text("c_puct: 1.25\neval_visits: 64\nroot: gumbel\n")
    problems, checked = learner_yaml_problems(tmp_path)
    assert checked == 3 and len(problems) == 3, problems
    assert "extend its schema" in problems[0] and "repeats the default" in problems[1]
    assert "eval_visits is not a field" in problems[2]


def test_referee_yaml_names_only_schema_fields():
    for group in REFEREE_GROUPS:
        for path in sorted((ROOT / "conf" / group).glob("*.yaml")):
            raw = yaml.safe_load(path.read_text()) or {}
            text = path.read_text()
            if "@package _global_" in text:   # conf/budget/tiny.yaml sets other groups too
                items = [(k, g) for g in raw if g != "defaults" for k, _ in _leaves(raw[g], f"{g}.")]
                for key, g in items:
                    _default(JobConfig, key)
            else:
                for key, _ in _leaves(raw):
                    _default(GROUPS[group], key)


def test_root_and_agent_yaml_hold_only_what_differs():
    raw = yaml.safe_load((ROOT / "conf/config.yaml").read_text())
    assert raw["defaults"][0] == "job_schema"
    for key, value in _leaves({k: v for k, v in raw.items() if k not in ("defaults", "hydra")}):
        assert value != _default(JobConfig, key), f"conf/config.yaml: {key} repeats its default"
    agent = yaml.safe_load((ROOT / "conf/agent/default.yaml").read_text()) or {}
    for key, value in _leaves(agent):
        assert value != _default(AgentConfig, key), (f"conf/agent/default.yaml: {key}: {value!r} repeats the "
                                                     f"default declared in autoresearch/agent_config.py")
    assert load_agent_config() == AgentConfig()


def test_no_two_classes_share_a_name():
    where: dict[str, list[str]] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef):
                    where.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    shared = {name: paths for name, paths in where.items() if len(paths) > 1}
    assert not shared, f"one name for two classes (rename one): {shared}"
