"""Which Hydra overrides a proposal may make: the learner's config groups, nothing else.

The referee's settings (rating, budget, board, seed, device, Hydra and the launcher) decide
how a node is rated and how much work it gets; a proposal that could set them could set its own
score. So overrides are checked against an ALLOW-list of the learner's groups; anything else is
refused with the reason. One function, used by the loop and by the proposers:

    validate_overrides(["train.lr=0.01", "rating=smoke"])
    -> ["rating=smoke: 'rating' is not one of the learner's config groups (model, mcts, ...)"]
"""
from __future__ import annotations

import re

# The learner's config groups (conf/<group>/): a proposal may set these and their keys.
LEARNER_GROUPS: tuple[str, ...] = ("model", "mcts", "selfplay", "train")
# Whole-option choices allowed outside those groups: tracking may only be switched off.
EXTRA_ALLOWED: tuple[str, ...] = ("tracking=disabled",)
# Said explicitly in the error, so the proposer learns why (the allow-list refuses them anyway).
REFEREE_KEYS = ("rating", "budget", "board", "seed", "device", "hydra", "launcher")

_OVERRIDE = re.compile(r"^(?P<prefix>\+{0,2}|~)(?P<key>[A-Za-z_][\w\-]*(?:[./][\w\-]+)*)"
                       r"(?:@(?P<pkg>[\w.\-_]*))?(?:=(?P<value>.*))?$", re.S)


def validate_overrides(overrides: list[str]) -> list[str]:
    """The reasons `overrides` may not run (empty list: all allowed)."""
    errors: list[str] = []
    if not isinstance(overrides, (list, tuple)):
        return [f"overrides must be a list of key=value strings, got {type(overrides).__name__}"]
    for o in overrides:
        why = _refusal(o)
        if why:
            errors.append(f"{o!r}: {why}")
    return errors


def _refusal(o: object) -> str | None:
    if not isinstance(o, str):
        return f"an override must be a string, got {type(o).__name__}"
    if any(c in o for c in "\0\n\r") or not o.isprintable():
        return "contains a NUL, a newline or another control character"
    if o in EXTRA_ALLOWED:
        return None
    m = _OVERRIDE.match(o)
    if m is None:
        return "not a Hydra override of the form group.key=value"
    if m.group("value") is None and m.group("prefix") != "~":
        return "needs a value (key=value)"
    if m.group("pkg") is not None:
        return "package overrides (@) are not allowed: they can move a group under another key"
    key = m.group("key")
    group = re.split(r"[./]", key)[0]
    if group in REFEREE_KEYS or group.startswith(REFEREE_KEYS):
        return (f"'{group}' belongs to the referee (rating, budget, board, seed, device, "
                f"Hydra and the launcher are fixed for every node of a question)")
    if group not in LEARNER_GROUPS:
        return (f"'{group}' is not one of the learner's config groups "
                f"({', '.join(LEARNER_GROUPS)}; or {', '.join(EXTRA_ALLOWED)})")
    value = m.group("value") or ""
    if "${" in value:
        return "interpolations (${...}) are not allowed: they can read the referee's settings"
    return None
