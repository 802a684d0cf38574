"""The offline planner reads questions as a researcher writes them: each phrasing maps to its
factors, values and design, and the questions it cannot plan are refused with what it can vary."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch.planner.design import make_plan, spread, thin
from autoresearch.planner.plan import Plan
from autoresearch.planner.parse import PlanRefused, read_question
from autoresearch.planner.vocabulary import (LEARNER_GROUPS, config_docs, defaults,
                                             load_vocabulary)

ROOT = Path(__file__).resolve().parents[1]
LR3 = [0.0005, 0.002, 0.008]
CPUCT3 = [0.75, 1.25, 3.0]

# question -> (design, {factor: values in plan order}, y). Values: control first for an A/B.
PHRASINGS = [
    # the README's example questions
    ("Which learning rate and c_puct make a tiny 9x9 run strongest?",
     "grid", {"train.lr": LR3, "mcts.c_puct": CPUCT3}, "elo"),
    ("Does a 10% no-resign fraction help a tiny 9x9 run?",
     "ab", {"selfplay.no_resign_fraction": [0.0, 0.1]}, "elo"),
    ("Does c_puct 2.5 beat 1.5 on 9x9?", "ab", {"mcts.c_puct": [1.5, 2.5]}, "elo"),
    ("Which lr and c_puct are strongest on 9x9?",
     "grid", {"train.lr": LR3, "mcts.c_puct": CPUCT3}, "elo"),
    # values, multipliers, ranges, on/off
    ("Do twice as many visits help?", "ab", {"selfplay.visits": [16, 32]}, "elo"),
    ("How does strength depend on visits between 8 and 64?",
     "sweep", {"selfplay.visits": [8, 16, 32, 64]}, "elo"),
    ("Is training stronger with and without Dirichlet noise?",
     "ab", {"mcts.dirichlet_eps": [0.0, 0.25]}, "elo"),
    ("Does b2c32 beat b6c96?", "ab", {"model": ["b6c96", "b2c32"]}, "elo"),
    ("Does a learning rate of 1e-3 beat 2e-3?", "ab", {"train.lr": [0.002, 0.001]}, "elo"),
    ("Does the cosine schedule beat constant?",
     "ab", {"train.schedule": ["constant", "cosine"]}, "elo"),
    ("Does turning off tree reuse hurt?", "ab", {"selfplay.tree_reuse": [True, False]}, "elo"),
    ("Does more exploration help?", "ab", {"mcts.c_puct": [1.25, 2.5]}, "elo"),
    ("Which batch size is best?", "sweep", {"train.batch_size": [64, 128, 256]}, "elo"),
    ("What weight decay gives the strongest net?",
     "sweep", {"train.weight_decay": [0.0, 1e-5, 1e-4, 1e-3]}, "elo"),
    ("Does halving the replay window hurt?",
     "ab", {"train.replay_samples": [50000, 25000]}, "elo"),
    ("How does the value loss depend on the temperature?",
     "sweep", {"selfplay.temperature": [0.5, 1.0, 1.5]}, "value_loss"),
    ("Does training with or without playout cap randomization give a stronger net?",
     "ab", {"selfplay.full_search_prob": [1.0, 0.25]}, "elo"),
    ("Do 64 visits with c_puct 2 beat 32 visits?",
     "grid", {"selfplay.visits": [32, 64], "mcts.c_puct": [1.25, 2.0]}, "elo"),
    ("Which is strongest: 8, 16, 32 or 64 playouts?",
     "sweep", {"selfplay.visits": [8, 16, 32, 64]}, "elo"),
    ("Does a no-resign fraction of 25% help more than 10%?",
     "ab", {"selfplay.no_resign_fraction": [0.1, 0.25]}, "elo"),
    ("How much does the number of residual blocks matter?",
     "sweep", {"model.blocks": [2, 4, 6]}, "elo"),
    ("Which net size is strongest on 9x9?", "sweep", {"model": ["b2c32", "b6c96", "b10c128"]}, "elo"),
    ("Do wider nets with 64 channels beat 32 channels?", "ab", {"model.channels": [32, 64]}, "elo"),
    ("How does the win rate against KataGo depend on c_puct?",
     "sweep", {"mcts.c_puct": [0.75, 1.25, 2.0, 3.0]}, "winrate_vs_ref"),
    ("Does a learning rate 3 times larger help?", "ab", {"train.lr": [0.002, 0.006]}, "elo"),
    ("Does lowering the first-play urgency reduction help?",
     "ab", {"mcts.fpu_reduction": [0.25, 0.125]}, "elo"),
    ("How do sims per second scale with visits?",
     "sweep", {"selfplay.visits": [8, 16, 32, 64]}, "sims_per_s"),
    ("Does a no-resign fraction of 10% stop value collapse on 9x9?",
     "ab", {"selfplay.no_resign_fraction": [0.0, 0.1]}, "value_loss"),
    # issue 18's options: before these words, "forced playouts" read as visits
    ("Does Gumbel root search help a tiny 9x9 run?", "ab", {"mcts.root": ["puct", "gumbel"]}, "elo"),
    ("Do forced playouts help a tiny 9x9 run?",
     "sweep", {"mcts.forced_playouts": [False, True]}, "elo"),
    ("Does an ownership head make a stronger net?",
     "sweep", {"model.ownership_head": [False, True]}, "elo"),
    ("How does the value loss change with a score head?",
     "sweep", {"model.score_head": [False, True]}, "value_loss"),
]

# questions the planner must refuse, and a word its message must contain
REFUSED = [
    ("Is Go hard?", "no factor"),
    ("What is the best opening?", "no factor"),
    ("Does the referee cheat?", "referee"),
    ("Make it stronger", "no factor"),
    ("Does a larger board size help?", "board"),
    ("Do learning rate, c_puct and visits interact?", "3 factors"),
    ("Do Gumbel search, an ownership head, a score head or forced playouts help?", "4 factors"),
    ("Does c_puct 1.25 help?", "already the baseline"),
    ("Does a 10% learning rate help?", "not a fraction"),
    ("Does a no-resign fraction of 150% help?", "outside"),
]


def _close(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return a == b


@pytest.mark.parametrize("question,design,factors,y", PHRASINGS, ids=[p[0][:50] for p in PHRASINGS])
def test_phrasing_gives_its_factors_values_and_design(question, design, factors, y):
    plan = make_plan(question)
    assert plan.design == design, plan.text()
    assert plan.factors == list(factors), plan.text()
    got = [plan.x_values] + ([plan.x2_values] if plan.x2_key else [])
    for want, have in zip(factors.values(), got):
        assert len(want) == len(have) and all(_close(a, b) for a, b in zip(want, have)), plan.text()
    assert plan.y == y
    # every arm is a real experiment: the default arm is the baseline node, the others override
    d = defaults()
    for arm in plan.arms:
        assert arm.is_baseline == all(_close(v, d[k]) for k, v in arm.x.items())


def test_at_least_25_phrasings_and_5_refusals():
    assert len(PHRASINGS) >= 25 and len(REFUSED) >= 5


@pytest.mark.parametrize("question,why", REFUSED, ids=[r[0][:50] for r in REFUSED])
def test_questions_the_planner_must_refuse(question, why):
    with pytest.raises(PlanRefused) as e:
        make_plan(question)
    assert why in str(e.value)


def test_a_refusal_lists_the_factors_with_their_docs():
    with pytest.raises(PlanRefused) as e:
        make_plan("Make it stronger")
    msg = str(e.value)
    assert "selfplay.no_resign_fraction" in msg and "fraction of games with resignation off" in msg
    assert "--x" in msg and "--sweep" in msg


def test_vocabulary_names_only_real_learner_fields():
    docs = config_docs()
    for key, f in load_vocabulary().factors.items():
        assert key.split(".")[0] in LEARNER_GROUPS
        assert key in docs and f.doc == docs[key]
        assert 2 <= len(f.sweep) <= 5, key


def test_every_sweep_value_is_accepted_by_the_job_config():
    """The overrides the planner writes compose and validate as a node's job would."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from autoresearch.search_space import format_value
    from experiments.config import validate

    factors = load_vocabulary().factors.values()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        for i in range(max(len(f.sweep) for f in factors)):     # the i-th value of every factor at once
            overrides = [f"{f.key}={format_value(f.coerce(f.sweep[i]))}" for f in factors
                         if i < len(f.sweep)]
            cfg = compose(config_name="config", overrides=["budget=tiny"] + overrides)
            merged = validate(cfg)
            for f in factors:
                if i < len(f.sweep) and f.key != "model" and not f.key.startswith("model."):
                    assert OmegaConf.select(merged, f.key) == f.coerce(f.sweep[i]), f.key


def test_a_vocabulary_with_a_referee_key_is_refused(tmp_path):
    bad = tmp_path / "v.yaml"
    bad.write_text("factors:\n  rating.games: {words: [games], type: int, sweep: [1, 2]}\n"
                   "metrics: {default: elo, elo: {words: [elo]}}\n")
    with pytest.raises(ValueError, match="not in a learner group"):
        load_vocabulary(str(bad))


def test_explicit_x_and_x2_flags_make_a_sweep_and_a_grid():
    p = make_plan("visits vs speed", x=("selfplay.visits", ["8", "16", "32"]), y="sims_per_s")
    assert (p.design, p.x_values, p.y) == ("sweep", [8, 16, 32], "sims_per_s")
    assert [a.is_baseline for a in p.arms] == [False, True, False]
    g = make_plan("lr by c_puct", x=("train.lr", ["0.001", "0.004"]), x2=("mcts.c_puct", ["1", "2"]))
    assert g.design == "grid" and len(g.new_arms) == 4 and g.runs == 5
    assert g.arms[0].overrides == ["train.lr=0.001", "mcts.c_puct=1.0"]
    # a learner field outside the vocabulary is allowed; a referee field is not
    v = make_plan("virtual loss", x=("mcts.virtual_loss", ["0.5", "1", "2"]))
    assert v.x_values == [0.5, 1.0, 2.0] and v.arms[1].is_baseline
    for bad in ("board.size", "rating.games", "train.nonsense", "seed"):
        with pytest.raises(PlanRefused, match="not a field a node may vary"):
            make_plan("q", x=(bad, ["1", "2"]))


def test_plan_round_trips_through_json():
    p = make_plan("Which learning rate and c_puct make a tiny 9x9 run strongest?", seeds=2,
                  max_nodes=12)
    q = Plan.from_json(json.dumps(json.loads(p.to_json())))
    assert q == p and q.description == p.description
    assert q.arm_of_overrides(["mcts.c_puct=3.0", "train.lr=0.008"]).x == {"train.lr": 0.008,
                                                                          "mcts.c_puct": 3.0}


def test_a_grid_too_big_for_the_budget_is_cut_and_says_what_it_costs():
    p = make_plan("Which learning rate and c_puct make a tiny 9x9 run strongest?", max_nodes=3)
    assert p.design == "axes" and p.runs == 3 and p.max_runs == 3
    assert any("interaction" in c for c in p.cut)
    assert any("dropped from the grid" in c for c in p.cut)
    assert "Cut to fit the budget" in p.description


def test_seeds_are_cut_before_points_and_the_precision_cost_is_stated():
    p = make_plan("Does c_puct 2.5 beat 1.5 on 9x9?", seeds=4, max_nodes=6)
    assert p.seeds == 2 and p.runs == 6
    assert p.cut[0].startswith("seeds per arm 4 -> 2") and "Elo" in p.cut[0]
    assert p.mde_elo == round(2.8 * 120 * math.sqrt(2 / 2))


def test_a_sweep_loses_points_to_fit_and_names_them():
    p = make_plan("How does strength depend on visits between 8 and 64?", max_nodes=3)
    assert p.x_values == [8, 16, 64] and p.runs == 3
    assert "selfplay.visits=32 not measured" in p.cut[0]


def test_hours_budget_and_workers_set_runs_and_minutes():
    p = make_plan("Which batch size is best?", max_hours=0.2, minutes_per_node=4.0, workers=1)
    assert p.max_runs == 3 and p.expected_minutes == 12.0
    p2 = make_plan("Which batch size is best?", minutes_per_node=4.0, workers=2)
    assert p2.runs == 3 and p2.expected_minutes == 8.0


def test_a_budget_below_the_smallest_plan_is_refused_with_what_it_needs():
    with pytest.raises(PlanRefused, match="--max-nodes 3"):
        make_plan("Does c_puct 2.5 beat 1.5 on 9x9?", max_nodes=2)


def test_spread_and_thin():
    visits = load_vocabulary().factors["selfplay.visits"]
    assert spread(8, 64, 4, visits) == [8, 16, 32, 64]
    lr = load_vocabulary().factors["train.lr"]
    assert thin([0.0005, 0.001, 0.002, 0.004, 0.008], 0.002, 3, lr) == LR3


def test_reading_notes_say_how_values_were_read():
    r = read_question("Does a 10% no-resign fraction help a tiny 9x9 run?")
    assert "'10%' -> selfplay.no_resign_fraction=0.1" in r.notes
    assert not any("9" in n and "ignored" in n for n in r.notes)   # 9x9 is the board


# -- research run --dry-run ----------------------------------------------------------------------
def _dry_run(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "autoresearch.cli", "run", *args, "--dry-run",
                           "--workspace", str(tmp_path / "ws")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_dry_run_prints_the_plan_and_stops(tmp_path):
    cp = _dry_run(tmp_path, "Does c_puct 2.5 beat 1.5 on 9x9?", "--max-nodes", "4")
    assert cp.returncode == 0, cp.stderr
    assert "Plan for: Does c_puct 2.5 beat 1.5 on 9x9?" in cp.stdout
    assert "mcts.c_puct=2.5 [treatment]: mcts.c_puct=2.5  (vs mcts.c_puct=1.5)" in cp.stdout
    assert not (tmp_path / "ws").exists()          # nothing ran, nothing was written


def test_dry_run_refusal_exits_1_with_the_factors(tmp_path):
    cp = _dry_run(tmp_path, "Is Go hard?")
    assert cp.returncode == 1
    assert "no factor" in cp.stderr and "mcts.c_puct" in cp.stderr


def test_dry_run_with_x_y_seeds_and_a_cut(tmp_path):
    cp = _dry_run(tmp_path, "How fast is search?", "--x", "selfplay.visits=8,16,32,64",
                  "--y", "sims_per_s", "--seeds", "2", "--max-nodes", "4")
    assert cp.returncode == 0, cp.stderr
    assert "y = sims_per_s" in cp.stdout and "cut: seeds per arm 2 -> 1" in cp.stdout
