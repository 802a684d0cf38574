"""The one-line doc of each config field: the comment beside the field where it is declared.

Config dataclasses document each field with a trailing comment (`lr: float = 2e-3  # peak
learning rate of AdamW`), as CleanRL does; this reads those comments back from the source so that
the planner, `research run --help` and the tests show the same text as the code, with no copy.
Standard library only (callers such as the agent CLI import it cheaply).
"""
from __future__ import annotations

import ast
import inspect
import io
import textwrap
import tokenize
from dataclasses import fields, is_dataclass
from functools import lru_cache


def declaring_class(cls: type, name: str) -> type:
    """The class in `cls`'s MRO whose body declares field `name` (a subclass may add fields)."""
    for klass in cls.__mro__:
        if name in klass.__dict__.get("__annotations__", {}):
            return klass
    raise KeyError(f"{cls.__name__} has no field {name!r}")


@lru_cache(maxsize=None)
def _class_comments(klass: type) -> dict[str, str]:
    """field -> trailing comment of its declaration line ('' when there is none)."""
    lines, _ = inspect.getsourcelines(klass)
    src = textwrap.dedent("".join(lines))
    comments = {tok.start[0]: tok.string.lstrip("#").strip()
                for tok in tokenize.generate_tokens(io.StringIO(src).readline) if tok.type == tokenize.COMMENT}
    body = ast.parse(src).body[0]
    out = {}
    for stmt in body.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            out[stmt.target.id] = comments.get(stmt.end_lineno, "") or comments.get(stmt.lineno, "")
    return out


def field_doc(cls: type, name: str) -> str:
    """The doc of field `name` of dataclass `cls` ('' when its declaration has no comment)."""
    return _class_comments(declaring_class(cls, name)).get(name, "")


def walk_fields(cls: type, prefix: str = ""):
    """(dotted key, declaring class, doc) for every leaf and nested field of dataclass `cls`;
    a field whose default is itself a dataclass is walked into (and listed too)."""
    for f in fields(cls):
        key = f"{prefix}{f.name}"
        yield key, declaring_class(cls, f.name), field_doc(cls, f.name)
        nested = f.default_factory() if callable(f.default_factory) else None  # type: ignore[misc]
        if is_dataclass(nested):
            yield from walk_fields(type(nested), key + ".")
