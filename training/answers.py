"""Reading a model's answer text: lenient about presentation (case, spacing, surrounding quotes,
list numbering), strict about content. An answer that names no candidate or holds no number gets
None or an invalid flag, never a guess; `training.metrics` counts those as invalid or unparseable.

No dagster import: this runs out of process.
"""

import math
import re

from itdr_pipeline.records import UAP_ATTRIBUTES, parse_attributes

# Any finite number in [0, 10] counts as a rating: it covers every source's scale (1-5 stars,
# BookCrossing's 1-10, Yelp's 1-5, halves included) without knowing which one the record uses.
RATING_RANGE = (0.0, 10.0)
NUMERIC_ATTRIBUTES = ("age", "birth year")  # uap attributes scored as numbers (RMSE), the rest by accuracy
# uap attribute names as the output text spells them, in the output's fixed order.
ATTRIBUTE_NAMES = tuple(name for name, _key in UAP_ATTRIBUTES.values())

_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_MARKER = re.compile(r"^(?:\d{1,3}[.)]\s+|[-*•]\s*)")  # "1. ", "2) ", "- ", "* ", "•"
_QUOTES = "\"'“”‘’«»`"
# A separator (comma, semicolon, newline) before a known attribute name, any spacing around it.
_UAP_SEPARATOR = re.compile(r"\s*[,;\n]\s*(%s)\s*:" % "|".join(re.escape(a) for a in ATTRIBUTE_NAMES))


def normalize(text: str) -> str:
    """Casefolded, whitespace collapsed, one list marker and surrounding quote pairs removed."""
    s = _MARKER.sub("", " ".join(text.split()).casefold(), count=1)
    while len(s) >= 2 and s[0] in _QUOTES and s[-1] in _QUOTES:
        s = s[1:-1].strip()
    return s


def parse_rating(text: str) -> float | None:
    """The first number in the answer, if it is a finite value in RATING_RANGE, else None."""
    match = _NUMBER.search(text)
    if match is None:
        return None
    value = float(match.group())
    return value if math.isfinite(value) and RATING_RANGE[0] <= value <= RATING_RANGE[1] else None


def named_order(text: str, candidate_texts: list[str]) -> list[int]:
    """The candidates an answer names, in its order: one per line (as parse_ranking), else, for
    an answer whose lines name none, the single candidate match_choice finds in it (or none)."""
    named, _ = _lines_named(text, candidate_texts)
    if named:
        return named
    choice = match_choice(text, candidate_texts)
    return [] if choice is None else [choice]


def _lines_named(text: str, candidate_texts: list[str]) -> tuple[list[int], bool]:
    """Candidate indices in the order the answer's lines name them; False when a non-empty line
    names no new candidate. Candidates that normalize alike go in prompt order, one per line."""
    slots: dict[str, list[int]] = {}
    for i, candidate in enumerate(candidate_texts):
        slots.setdefault(normalize(candidate), []).append(i)
    order: list[int] = []
    valid = True
    for line in text.splitlines():
        key = normalize(line)
        if not key:
            continue
        free = slots.get(key)
        if not free:  # unknown line, or a candidate already named
            valid = False
            continue
        order.append(free.pop(0))
    return order, valid


def parse_ranking(text: str, candidate_texts: list[str]) -> tuple[list[int], bool]:
    """Candidate indices in the order the answer's lines name them (a repeat counts once), then
    the unnamed ones in prompt order; valid = every non-empty line names a new candidate and all
    are named. Candidates that normalize alike are taken in prompt order, one per naming line."""
    order, valid = _lines_named(text, candidate_texts)
    named = set(order)
    rest = [i for i in range(len(candidate_texts)) if i not in named]
    return order + rest, valid and not rest


def match_choice(text: str, candidate_texts: list[str]) -> int | None:
    """The candidate an answer names: the one equal to its first non-empty line, else the one
    contained in the answer (the longest if several); None when none or ambiguous."""
    keys = [normalize(c) for c in candidate_texts]
    first = next((normalize(line) for line in text.splitlines() if normalize(line)), "")
    equal = [i for i, k in enumerate(keys) if k and k == first]
    if equal:
        return equal[0] if len(equal) == 1 else None
    answer = normalize(text)
    contained = [i for i, k in enumerate(keys) if k and k in answer]
    if not contained:
        return None
    longest = max(len(keys[i]) for i in contained)
    best = [i for i in contained if len(keys[i]) == longest]
    return best[0] if len(best) == 1 else None


def parse_uap(text: str) -> dict[str, str]:
    """Attribute name -> value text (names casefolded), tolerant of spaces, ";" or newlines
    between pairs; `parse_attributes` does the splitting (values may hold commas)."""
    canonical = _UAP_SEPARATOR.sub(lambda m: "," + m.group(1) + ":", text.casefold().strip())
    return {name: value for name, value in parse_attributes(canonical).items() if value}


def first_number(text: str) -> float | None:
    value = float(match.group()) if (match := _NUMBER.search(text)) else math.nan
    return value if math.isfinite(value) else None
