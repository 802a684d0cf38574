"""Read a research question: the factors it names, the values it mentions, what it asks of them.

No language model: phrases come from vocabulary.yaml, values from a handful of patterns that cover
how researchers write ("10%", "0.5", "1e-3", "twice as many visits", "between 8 and 64", "with and
without Dirichlet noise", "more visits", "b2c32"). Each number goes to the factor named nearest to
it. What the question asks (compare one value, find the best, see how y depends on x) is read from
a few cue words; design.py turns the result into arms.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from autoresearch.planner.vocabulary import Factor, PlanRefused, Vocabulary, load_vocabulary

NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
NUM_RE = re.compile(rf"(?<![\w.]){NUMBER}(?:\s*%)?(?![\w.])")
BOARD_RE = re.compile(r"\b\d+\s*[x×]\s*\d+\b")
MODEL_RE = re.compile(r"\bb\d+c\d+\b")
RANGE_RE = re.compile(rf"\b(?:between\s+({NUMBER})\s+and\s+({NUMBER})|from\s+({NUMBER})\s+to\s+({NUMBER}))",
                      re.I)
WORD_NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "ten": 10}
MULTIPLIER_RES = [
    (re.compile(rf"\b({NUMBER}|two|three|four|five|ten)\s*(?:times|[x×])\s+(?:as\s+(?:many|much|large|big)"
                rf"|more|the|larger|bigger|higher)?", re.I), None),
    (re.compile(r"\b(?:twice|double[sd]?|doubling)\b", re.I), 2.0),
    (re.compile(r"\b(?:triple[sd]?|tripling)\b", re.I), 3.0),
    (re.compile(r"\b(?:quadruple[sd]?|quadrupling)\b", re.I), 4.0),
    (re.compile(r"\b(?:half|halve[sd]?|halving)\b", re.I), 0.5),
]
MORE_RE = re.compile(r"\b(?:more|higher|larger|bigger|increas(?:e|ed|ing)|rais(?:e|es|ed|ing)|deeper|wider)\b",
                     re.I)
LESS_RE = re.compile(r"\b(?:fewer|less|lower(?:ing|ed)?|smaller|decreas(?:e|ed|ing)|reduc(?:e|ed|ing)|shallower|"
                     r"narrower)\b", re.I)
WITH_WITHOUT_RE = re.compile(r"\bwith\s+(?:and|or)\s+without\b|\b(?:on|enabled)\s+(?:and|or|vs\.?|versus)\s+"
                             r"(?:off|disabled)\b|\b(?:off|disabled)\s+(?:and|or|vs\.?|versus)\s+(?:on|enabled)\b",
                             re.I)
OFF_RE = re.compile(r"\b(?:without|turn(?:ing|ed)?\s+off|switch(?:ing|ed)?\s+off|disabl(?:e|ed|ing)|"
                    r"remov(?:e|ed|ing)|drop(?:ping|ped)?)\b|\boff\b", re.I)
# Cues that the question asks how y depends on x, or which x is best: a sweep.
SWEEP_RE = re.compile(r"\b(?:which|what\s+(?:value|setting|level)|best|optimal|optimum|depend(?:s|ence)?|"
                      r"how\s+(?:does|do|much|strongly)|effect\s+of|affects?|var(?:y|ies|ying)|sweep|scal(?:e|es|ing)|"
                      r"as\s+a\s+function|trend|sensitiv(?:e|ity)|matters?|tune|tuning)\b", re.I)
CHOICE_WORD_RE = r"\b{}\b"
CLAUSE_WINDOW = 60      # characters: a number further than this from every factor phrase is not a value


@dataclass
class Mention:
    """What the question says about one factor."""
    factor: Factor
    phrase: str                     # the words that named it
    start: int                      # where in the question
    values: list[Any] = field(default_factory=list)      # explicit values, in the order written
    range: tuple[float, float] | None = None             # "between 8 and 64"
    multiplier: float | None = None                      # "twice as many" -> 2.0 (of the default)
    with_without: bool = False                           # "with and without" -> off vs on
    off: bool = False                                    # "without X", "turning X off"
    explicit: bool = False                               # from --x: the values are the x axis as given


@dataclass
class Reading:
    """The parse of one question."""
    question: str
    mentions: list[Mention]
    metric: str
    asks_sweep: bool                # a cue word says: how does y depend on x / which x is best
    notes: list[str] = field(default_factory=list)       # how each part was read, for the plan


def _span_free(taken: list[tuple[int, int]], a: int, b: int) -> bool:
    return all(b <= s or a >= e for s, e in taken)


def find_mentions(text: str, vocab: Vocabulary) -> list[Mention]:
    """Factor phrases in `text` (lower case), longest first, each span used once; one Mention per
    factor (at its first occurrence; later occurrences still attract numbers, see `anchors`)."""
    taken: list[tuple[int, int]] = []
    hits: list[tuple[int, int, str, Factor]] = []
    for phrase, factor in vocab.phrases():
        for m in re.finditer(rf"(?<![\w-]){re.escape(phrase)}(?![\w])", text):
            if _span_free(taken, m.start(), m.end()):
                taken.append((m.start(), m.end()))
                hits.append((m.start(), m.end(), phrase, factor))
    for m in MODEL_RE.finditer(text):                 # "b2c32" names the model option itself
        if _span_free(taken, m.start(), m.end()) and "model" in vocab.factors:
            hits.append((m.start(), m.end(), m.group(0), vocab.factors["model"]))
    hits.sort()
    mentions: dict[str, Mention] = {}
    for start, _end, phrase, factor in hits:
        if factor.key not in mentions:
            mentions[factor.key] = Mention(factor=factor, phrase=phrase, start=start)
    return list(mentions.values()), hits


def _nearest(pos_a: int, pos_b: int, hits: list[tuple[int, int, str, Any]]) -> tuple[str, int] | None:
    """The factor key of the phrase nearest to the span [pos_a, pos_b), and its distance."""
    best = None
    for start, end, _phrase, factor in hits:
        d = pos_a - end if end <= pos_a else (start - pos_b if start >= pos_b else 0)
        if best is None or d < best[1]:
            best = (factor.key, d)
    return best


def _number(text: str, factor: Factor) -> float:
    text = text.strip()
    if text.endswith("%"):
        value = float(text[:-1].strip())
        if not factor.percent:
            raise PlanRefused(f"'{text}' given for {factor.key}, which is not a fraction; "
                              f"give its value as a number (e.g. {factor.sweep[len(factor.sweep) // 2]})")
        return value / 100.0
    return float(text)


def read_question(question: str, vocab: Vocabulary | None = None) -> Reading:
    """Parse `question`; PlanRefused when it names nothing a node may vary."""
    vocab = vocab or load_vocabulary()
    text = question.lower()
    masked = BOARD_RE.sub(lambda m: " " * len(m.group(0)), text)    # "9x9" is the board, not a value
    mentions, hits = find_mentions(masked, vocab)
    if not mentions:
        raise PlanRefused(refusal(question, vocab))
    by_key = {m.factor.key: m for m in mentions}
    notes: list[str] = []
    used: list[tuple[int, int]] = [(s, e) for s, e, _p, _f in hits]

    def owner(a: int, b: int) -> Mention | None:
        near = _nearest(a, b, hits)
        if near is None or near[1] > CLAUSE_WINDOW:
            return None
        return by_key[near[0]]

    for m in RANGE_RE.finditer(masked):
        lo, hi = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        target = owner(m.start(), m.end())
        if target is not None:
            a, b = sorted((_number(lo, target.factor), _number(hi, target.factor)))
            target.range = (a, b)
            notes.append(f"'{m.group(0).strip()}' -> {target.factor.key} in [{a:g}, {b:g}]")
            used.append((m.start(), m.end()))
    for rx, fixed in MULTIPLIER_RES:
        for m in rx.finditer(masked):
            if not _span_free(used, m.start(), m.end()):
                continue
            target = owner(m.start(), m.end())
            if target is None or target.factor.type not in ("int", "float"):
                continue
            word = m.group(1).lower() if fixed is None else None
            factor_ = fixed if fixed is not None else float(WORD_NUMBERS.get(word, word))
            target.multiplier = factor_
            notes.append(f"'{m.group(0).strip()}' -> {factor_:g} x the default {target.factor.key}")
            used.append((m.start(), m.end()))
    for m in MODEL_RE.finditer(masked):
        if "model" in by_key:
            by_key["model"].values.append(m.group(0))
            used.append((m.start(), m.end()))
    for m in NUM_RE.finditer(masked):
        if not _span_free(used, m.start(), m.end()):
            continue
        target = owner(m.start(), m.end())
        if target is None:
            notes.append(f"'{m.group(0).strip()}' is not near any factor: ignored")
            continue
        if target.factor.type not in ("int", "float"):
            continue
        value = target.factor.coerce(_number(m.group(0), target.factor))
        target.factor.check(value)
        target.values.append(value)
        notes.append(f"'{m.group(0).strip()}' -> {target.factor.key}={value:g}")
    for mention in mentions:
        f = mention.factor
        if f.type == "choice" and f.key != "model":
            for choice in f.sweep:
                if re.search(CHOICE_WORD_RE.format(re.escape(str(choice))), masked):
                    mention.values.append(str(choice))
        if WITH_WITHOUT_RE.search(masked) and f.off is not None:
            mention.with_without = True
            notes.append(f"'with and without' -> {f.key} off ({f.off}) vs on")
        elif f.off is not None and not mention.values and mention.multiplier is None:
            before = masked[max(0, mention.start - 25):mention.start]
            if OFF_RE.search(before):
                mention.off = True
                notes.append(f"'{before.strip()} {mention.phrase}' -> {f.key} off ({f.off})")
        if not (mention.values or mention.range or mention.multiplier or mention.with_without
                or mention.off) and f.type in ("int", "float"):
            before = masked[max(0, mention.start - 20):mention.start]
            if MORE_RE.search(before):
                mention.multiplier = 2.0
                notes.append(f"'{before.strip()} {mention.phrase}' -> 2 x the default {f.key}")
            elif LESS_RE.search(before):
                mention.multiplier = 0.5
                notes.append(f"'{before.strip()} {mention.phrase}' -> 0.5 x the default {f.key}")
    return Reading(question=question, mentions=mentions, metric=read_metric(masked, vocab, hits),
                   asks_sweep=bool(SWEEP_RE.search(masked)), notes=notes)


def read_metric(text: str, vocab: Vocabulary, hits: list | None = None) -> str:
    """The y the question asks about; specific metrics (losses, speed) before plain strength."""
    ordered = sorted(vocab.metrics.values(), key=lambda m: m.name == vocab.default_metric)
    taken = [(s, e) for s, e, _p, _f in (hits or [])]
    for metric in ordered:
        for word in sorted(metric.words, key=len, reverse=True):
            for m in re.finditer(rf"(?<![\w-]){re.escape(word)}(?![\w])", text):
                if _span_free(taken, m.start(), m.end()):
                    return metric.name
    return vocab.default_metric


def refusal(question: str, vocab: Vocabulary) -> str:
    """Why the planner will not plan `question`, and what it could vary instead."""
    text = question.lower()
    for phrase, why in vocab.not_factors.items():
        if re.search(rf"\b{re.escape(phrase)}\b", text):
            return (f"The planner will not plan {question!r}: it asks about {phrase}, and {why}.\n"
                    f"Factors a node may vary:\n{vocab.listing()}")
    return (f"The planner found no factor it knows in {question!r}, and will not guess one. "
            f"Name what to vary (e.g. \"Does c_puct 2.5 beat 1.5 on 9x9?\"), give it with "
            f"--x KEY=v1,v2,v3, or ask for a search with --sweep NAME.\n"
            f"Factors a node may vary:\n{vocab.listing()}")
