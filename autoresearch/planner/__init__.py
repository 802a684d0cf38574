"""The offline question planner (no LLM): reads the question, finds the factors and values it
names (vocabulary.yaml, parse.py), and designs the experiment that answers it (design.py)."""
from autoresearch.planner.design import make_plan, parse_x_flag
from autoresearch.planner.parse import PlanRefused, read_question
from autoresearch.planner.plan import Arm, Plan

__all__ = ["Arm", "Plan", "PlanRefused", "make_plan", "parse_x_flag", "read_question"]
