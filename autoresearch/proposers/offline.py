"""The offline proposer: Optuna ask/tell over a search space in `conf/sweep/` (no API key needed).

Each trial is one node (kind `sweep-trial`, parent: the baseline) whose hypothesis says what the
sampler chose and why. The study lives in the workspace (`W/optuna.db`, one study per question),
with the node of each trial in `W/offline_q<id>.json`, so `--resume` continues the same study.
An experiment already in the tree is never proposed again: the sampler is told the old result
and asked once more.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from autoresearch.digest import proposal_key
from autoresearch.forecast import prior_forecast
from autoresearch.proposers.base import Conclusion, Proposal, Proposer
from experiments.rundir import atomic_write_text

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_DUPLICATE_ASKS = 50


def sweep_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return REPO_ROOT / "conf" / "sweep" / f"{name_or_path}.yaml"


class OfflineProposer(Proposer):
    name = "offline"

    def __init__(self, workspace: Path | str, question_id: int, sweep: str = "agent_default",
                 seed: int | None = None):
        import optuna
        from autoresearch.search_space import load_sweep, make_sampler

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.spec = load_sweep(sweep_path(sweep))
        if seed is not None and "seed" not in self.spec.sampler:
            self.spec.sampler["seed"] = seed
        self.workspace = Path(workspace)
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.study_name = f"q{question_id}-{self.spec.name}"
        self.study = optuna.create_study(
            storage=f"sqlite:///{self.workspace / 'optuna.db'}", study_name=self.study_name,
            directions=self.spec.directions, sampler=make_sampler(self.spec), load_if_exists=True)
        self.map_path = self.workspace / f"offline_q{question_id}.json"
        self.node_trial: dict[int, int] = {}
        if self.map_path.exists():
            self.node_trial = {int(k): int(v) for k, v in json.loads(self.map_path.read_text()).items()}

    # -- the interface ---------------------------------------------------------------------
    def propose(self, digest: Any, n: int) -> list[Proposal] | Conclusion:
        from autoresearch.search_space import suggest_overrides

        baseline = digest.baseline()
        out: list[Proposal] = []
        keys = set(digest.keys)
        asks = 0
        while len(out) < n and asks < MAX_DUPLICATE_ASKS + n:
            asks += 1
            trial = self.study.ask()
            overrides = [o for o in suggest_overrides(trial, self.spec)]
            key = proposal_key(overrides, None)
            if key in keys:
                self._tell_duplicate(trial, key, digest)
                continue
            keys.add(key)
            out.append(Proposal(kind="sweep-trial", overrides=overrides,
                                parent_id=baseline.node_id if baseline else None,
                                hypothesis=self._hypothesis(trial, overrides),
                                meta={"trial_number": trial.number},
                                forecast=prior_forecast(None, by="optuna-prior"),
                                track=f"Optuna search over {self.spec.name}",
                                track_aim="the best settings in the search space"))
        if not out:
            return Conclusion(self._exhausted_answer(digest), evidence=[])
        return out

    def accepted(self, proposal: Proposal, node_id: int) -> None:
        if "trial_number" in proposal.meta:
            self.node_trial[node_id] = int(proposal.meta["trial_number"])
            self._save()

    def rejected(self, proposal: Proposal, reason: str) -> None:
        if "trial_number" in proposal.meta:
            self._tell(int(proposal.meta["trial_number"]), None)

    def rerun(self, old_node_id: int, new_node_id: int) -> None:
        if old_node_id in self.node_trial:
            self.node_trial[new_node_id] = self.node_trial.pop(old_node_id)
            self._save()

    def observe(self, node: Any) -> None:
        number = self.node_trial.get(node.id)
        if number is None or node.kind == "rerun":
            return
        values = self._values(node)
        self._tell(number, values)

    # -- helpers -----------------------------------------------------------------------------
    def _values(self, node: Any) -> list[float] | None:
        from autoresearch.search_space import objective_values

        if node.status != "ok":
            return None
        try:
            return objective_values({"metrics": node.metrics or {}}, self.spec)
        except KeyError as e:
            logging.getLogger(__name__).warning("node %s: %s; told as FAIL", node.id, e)
            return None

    def _tell(self, number: int, values: list[float] | None) -> None:
        TrialState = self.optuna.trial.TrialState
        trial = self.study.trials[number] if number < len(self.study.trials) else None
        if trial is None or trial.state != TrialState.RUNNING:
            return
        if values is None:
            self.study.tell(number, state=TrialState.FAIL)
        else:
            self.study.tell(number, values if len(values) > 1 else values[0])

    def _tell_duplicate(self, trial: Any, key: Any, digest: Any) -> None:
        """The sampler chose an experiment the tree already holds: tell it the known result."""
        for e in digest.entries:
            if e.kind != "rerun" and proposal_key(e.overrides, None) == key and e.status == "ok" \
                    and e.elo is not None and not self.spec.multi_objective \
                    and self.spec.objectives == ["elo"]:
                self.study.tell(trial, e.elo)
                return
        self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)

    def _hypothesis(self, trial: Any, overrides: list[str]) -> str:
        done = [t for t in self.study.trials
                if t.state == self.optuna.trial.TrialState.COMPLETE]
        sampler = type(self.study.sampler).__name__
        objective = ", ".join(f"{d} {o}" for o, d in zip(self.spec.objectives, self.spec.directions))
        why = (f"{sampler} chose these values from {len(done)} finished trial(s)"
               if done else f"{sampler} starts with values spread over the search space")
        return (f"Trial {trial.number} of sweep '{self.spec.name}': "
                f"{' '.join(overrides)} should {objective} relative to the baseline; {why}.")

    def _exhausted_answer(self, digest: Any) -> str:
        return (f"The offline proposer found no experiment in sweep '{self.spec.name}' that the "
                f"tree does not already hold (after {MAX_DUPLICATE_ASKS} asks): the search space "
                f"is exhausted.")

    def _save(self) -> None:
        atomic_write_text(self.map_path, json.dumps(self.node_trial))
