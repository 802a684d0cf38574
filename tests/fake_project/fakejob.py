"""A fake training job for the agent-loop tests: Hydra-style `key=value` arguments in, a run
directory with `metrics.jsonl` and `summary.json` out, in well under a second.

Behaviour comes from `fake.mode` (override) or `BEHAVIOUR` in fake_behaviour.py (what a code patch
edits): ok | crash | hang | oom | invalid. An override whose key starts with `bad.` gets Hydra's own
error for an unknown key. Elo is a smooth function of train.lr and mcts.c_puct plus seeded noise,
so an optimiser has something to find.
"""
import json
import math
import os
import random
import sys
import time

from go_core.learn import fake_behaviour

# fake.summary=<kind>: the job writes a summary.json that breaks the contract in this way
MALFORMED = {
    "list": lambda s: json.dumps([s]).encode(),
    "non_utf8": lambda s: json.dumps(s).encode().replace(b'"fake"', b'"\xff\xfe"'),
    "string_elo": lambda s: json.dumps({**s, "metrics": {**s["metrics"], "elo": "5000"}}).encode(),
    "nan": lambda s: json.dumps({**s, "metrics": {**s["metrics"], "elo": float("nan")}}).encode(),
    "huge": lambda s: json.dumps({**s, "padding": "x" * 3_000_000}).encode(),
    "no_keys": lambda s: b"{}",
    "not_json": lambda s: b"{status: ok",
    "deep": lambda s: b"[" * 100000 + b"]" * 100000,
}
KNOWN = ("seed", "board", "budget", "hydra.run.dir", "tracking", "device")
GROUPS = ("train.", "mcts.", "selfplay.", "model.", "fake.")


def main(argv):
    cfg = {}
    for arg in argv:
        key, _, value = arg.lstrip("+").partition("=")
        if key not in KNOWN and not key.startswith(GROUPS):
            print(f"Could not override '{key}'.\nTo append to your config use +{key}={value}\n"
                  f"Key '{key}' is not in struct\n    full_key: {key}\n    object_type=dict\n\n"
                  "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.",
                  file=sys.stderr)
            return 1
        cfg[key] = value
    run_dir = cfg["hydra.run.dir"]
    os.makedirs(run_dir, exist_ok=True)
    mode = cfg.get("fake.mode", fake_behaviour.BEHAVIOUR)
    with open(os.path.join(run_dir, "env.json"), "w") as f:
        json.dump({"cwd": os.getcwd(), "keys": sorted(os.environ), "argv": argv,
                   "WANDB_MODE": os.environ.get("WANDB_MODE")}, f)
    time.sleep(float(cfg.get("fake.sleep", 0)))
    gate = cfg.get("fake.gate")          # the job waits while this file exists (resume tests)
    if gate and os.path.exists(gate):
        open(os.path.join(run_dir, "at_gate"), "w").close()
        while os.path.exists(gate):
            time.sleep(0.1)
    if mode == "crash":
        raise RuntimeError("fake job crashed on purpose (BEHAVIOUR=crash)")
    if mode == "hang":
        while True:
            time.sleep(1)
    if mode == "oom":
        hog = bytearray(4 * 1024 ** 3)
        print(len(hog))
    lr = float(cfg.get("train.lr", 0.003))
    c_puct = float(cfg.get("mcts.c_puct", 1.5))
    seed = int(cfg.get("seed", 0))
    elo = float(cfg.get("fake.elo", 300 - 150 * (math.log10(lr) + 2.0) ** 2 - 40 * (c_puct - 2.0) ** 2))
    elo += random.Random(seed).gauss(0, 5) + fake_behaviour.ELO_BONUS
    ci = float(cfg.get("fake.ci", 40))
    with open(os.path.join(run_dir, "metrics.jsonl"), "w") as f:
        for step in range(3):
            f.write(json.dumps({"step": step, "loss": 1.0 / (step + 1)}) + "\n")
    wr = 1 / (1 + 10 ** (-(elo - 300) / 400))
    summary = {"status": "ok", "metrics": {"elo": elo, "elo_ci95": [elo - ci, elo + ci],
                                           "winrate_vs_ref": wr, "winrate_ci95": [max(0, wr - .1), min(1, wr + .1)],
                                           "games_vs_ref": 40},
               "reference": "fake", "compute": {"wall_s": 0.1}, "checkpoint": None,
               "git": {"commit": None, "dirty": False, "patch_sha256": None}}
    bad = MALFORMED.get(cfg.get("fake.summary", ""))   # red team: a summary.json off contract
    if bad is not None:
        with open(os.path.join(run_dir, "summary.json"), "wb") as f:
            f.write(bad(summary))
        return 0
    tmp = os.path.join(run_dir, ".summary.tmp")
    with open(tmp, "w") as f:
        json.dump(summary, f)
    os.replace(tmp, os.path.join(run_dir, "summary.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
