"""InstructRec's grounded texts, read off item metadata and reviews (generator
`grounded-instructrec-v1`): specific (I2) and vague (I1) intentions, the explicit preference (P2),
and the item document the retrievers and the BM25 baseline match against. Pure functions of the
rows they are given; no intention ever names its target (a part with the title or id is left out).
"""

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

PRICE_BANDS = ((10, "under $10"), (25, "$10 to $25"), (50, "$25 to $50"), (100, "$50 to $100"))
RECIPIENTS = ("son", "daughter", "wife", "husband", "mom", "mother", "dad", "father", "friend", "kids",
              "children", "grandson", "granddaughter", "grandkids", "niece", "nephew", "sister", "brother",
              "family", "boss", "coworker", "teacher", "boyfriend", "girlfriend", "parents", "cousin", "teen")
OCCASIONS = ("birthday", "christmas", "wedding", "anniversary", "graduation", "holiday", "travel", "office",
             "school", "work")
_PLACEHOLDERS = ("unknown", "(no genres listed)", "n/a", "none")  # MovieLens' stand-ins for "no genre"
_PURPOSE = re.compile(r"\bfor (?:my|our|a|an|the) (%s)s?\b" % "|".join(RECIPIENTS + OCCASIONS))


def clean_labels(row: dict[str, Any] | None) -> list[str]:
    """The item's category path (genres where it has no categories), deduplicated. Amazon 2018
    category lists carry feature sentences too ("No expiration, no fees."): a label is kept when
    it is short (at most 6 words, 50 characters) and not a sentence; MovieLens' "unknown" genre is
    no label."""
    row = row or {}
    out: list[str] = []
    for value in [*(row.get("categories") or []), *(row.get("genres") or [])]:
        text = " ".join(str(value).split())
        if (not text or text.casefold() in _PLACEHOLDERS or len(text) > 50 or len(text.split()) > 6 or text.endswith((".", "!", "?"))
                or ":" in text or "http" in text.casefold()):
            continue
        if text.casefold() not in {o.casefold() for o in out}:
            out.append(text)
    return out


def price_band(price: float | None) -> str | None:
    if price is None or not np.isfinite(price) or price <= 0:
        return None
    return next((band for limit, band in PRICE_BANDS if price < limit), "over $100")


def names_target(text: str, title: str | None, item_id: str) -> bool:
    folded = text.casefold()
    return item_id.casefold() in folded or bool(title and title.strip() and title.strip().casefold() in folded)


def _join(parts: list[str], title: str | None, item_id: str) -> str | None:
    kept = [p for p in parts if not names_target(p, title, item_id)]
    text = ", ".join(kept)
    return text if kept and not names_target(text, title, item_id) else None


def specific_intention(row: dict[str, Any] | None, item_id: str) -> str | None:
    """I2: the category path, then `from <brand>` (or `by <creator>`), then the price band."""
    row = row or {}
    labels = clean_labels(row)
    if not labels:
        return None
    parts = list(labels)
    if row.get("brand"):
        parts.append(f"from {row['brand']}")
    elif row.get("creator"):
        parts.append(f"by {row['creator']}")
    if band := price_band(row.get("price")):
        parts.append(band)
    return _join(parts, row.get("title"), item_id) if _join(labels, row.get("title"), item_id) else None


def purpose(texts: Sequence[str]) -> str | None:
    """The purpose the target's reviews name most often ("for my son" -> "for my son"; ties: A-Z)."""
    found = Counter(m.group(1) for text in texts for m in _PURPOSE.finditer(text.casefold()))
    if not found:
        return None
    word = min(found, key=lambda w: (-found[w], w))
    return f"for my {word}" if word in RECIPIENTS else f"for {'an' if word[0] in 'aeiou' else 'a'} {word}"


def vague_intention(row: dict[str, Any] | None, item_id: str, reviews: Sequence[str]) -> str | None:
    """I1: the coarsest informative category (the second level of a path: the first is the whole
    store) and, when the target's reviews name one, a purpose."""
    labels = clean_labels(row)
    if not labels:
        return None
    coarse = labels[1] if len(labels) > 1 and (row or {}).get("categories") else labels[0]
    said = purpose(reviews)
    return _join([f"something in {coarse}" + (f", {said}" if said else "")], (row or {}).get("title"), item_id)


def explicit_preference(rows: Sequence[dict[str, Any] | None], ratings: Sequence[float | None],
                        like_threshold: float) -> str | None:
    """P2: the history's most frequent specific categories (the last label of each path) and
    brands, then the categories of what the user rated at or under the like threshold."""
    cats: Counter[str] = Counter()
    low: Counter[str] = Counter()
    brands: Counter[str] = Counter()
    for row, rating in zip(rows, ratings):
        labels = clean_labels(row)
        if labels:
            cats[labels[-1]] += 1
            if rating is not None and rating <= like_threshold:
                low[labels[-1]] += 1
        if row and row.get("brand"):
            brands[row["brand"]] += 1
    if not cats:
        return None
    top = sorted(cats, key=lambda c: (-cats[c], c))[:3]
    text = "Often chooses " + _and(top)
    fav = [b for b in sorted(brands, key=lambda b: (-brands[b], b)) if brands[b] >= 2][:2]
    if fav:
        text += "; returns to " + _and(fav)
    disliked = [c for c in sorted(low, key=lambda c: (-low[c], c)) if low[c] * 2 > cats[c]][:2]
    if disliked:
        text += "; rated " + _and(disliked) + " low"
    return text + "."


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def item_document(row: dict[str, Any] | None, label: str) -> str:
    """What the retriever and the BM25 baseline match a query against: label, categories, brand."""
    row = row or {}
    parts = [label, *clean_labels(row), row.get("brand") or "", row.get("creator") or ""]
    return " ".join(p for p in parts if p)
