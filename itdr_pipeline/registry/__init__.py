"""The one dataset registry: ids, official files and checksums, terms, formats and tasks.

Everything else (Dagster partitions, the CLI, docs, the checksum policy) is driven from here.
One module per source family holds that family's entries (`SPECS`), as plain data.
"""

import importlib

from itdr_pipeline.errors import ItdrError
from itdr_pipeline.registry.spec import (
    DATASET_ID,
    FEEDBACK,
    ITDR_TASKS,
    LABEL_RULES,
    USER_ATTRIBUTES,
    DatasetSpec,
    Download,
    RawFile,
    category_slug,
)

# Listing order in the CLI and the Dagster UI.
_FAMILIES = ("movielens", "bookcrossing", "amazon", "amazon_books", "steam", "yelp", "anime", "lastfm", "mind",
             "microlens", "pixelrec")


def _load() -> dict[str, DatasetSpec]:
    registry: dict[str, DatasetSpec] = {}
    for family in _FAMILIES:
        for spec in importlib.import_module(f"itdr_pipeline.registry.{family}").SPECS:
            if spec.id in registry:
                raise ValueError(f"registry: duplicate dataset id {spec.id!r} in {family}")
            registry[spec.id] = spec
    return registry


REGISTRY: dict[str, DatasetSpec] = _load()


def dataset_ids() -> list[str]:
    return list(REGISTRY)


def sources() -> dict[str, list[DatasetSpec]]:
    """Source folder -> its partitions (one, or one per category)."""
    out: dict[str, list[DatasetSpec]] = {}
    for spec in REGISTRY.values():
        out.setdefault(spec.folder, []).append(spec)
    return out


def get_dataset(dataset_id: str) -> DatasetSpec:
    """Look a dataset up by id, refusing malformed ids before they reach a path or a query."""
    if not DATASET_ID.match(dataset_id):
        raise ItdrError(
            f"invalid dataset id {dataset_id!r}: use lower-case letters, digits and '-' "
            "(and one '.' before a category, e.g. amazon-reviews-2018.gift-cards)"
        )
    try:
        return REGISTRY[dataset_id]
    except KeyError:
        if dataset_id in sources():
            parts = ", ".join(s.id for s in sources()[dataset_id][:5])
            raise ItdrError(f"{dataset_id} is published per category: name one, e.g. {parts}") from None
        known = ", ".join(sorted(sources()))
        raise ItdrError(f"unknown dataset {dataset_id!r}; known sources: {known} (`itdr datasets` lists all)") from None


def get_category(source: str, category: str) -> DatasetSpec:
    """`amazon-reviews-2018`, `Gift_Cards` (or `gift-cards`) -> that category's entry."""
    specs = sources().get(source)
    if specs is None:
        get_dataset(source)  # raises the right error for a malformed or unknown id
        raise ItdrError(f"unknown source {source!r}")
    if all(s.category is None for s in specs):
        raise ItdrError(f"{source} is not published per category; drop --category")
    for spec in specs:
        if category in (spec.category, category_slug(spec.category or "")):
            return spec
    shown = ", ".join(s.category or "" for s in specs)
    raise ItdrError(f"{source} has no category {category!r}; its categories: {shown}")


def parse_dataset_list(text: str | None) -> list[str]:
    """`a,b` -> validated ids, in the order given, without repeats."""
    if not text:
        return ["demo"]
    ids: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if part and part not in ids:
            ids.append(get_dataset(part).id)
    if not ids:
        raise ItdrError("no dataset given")
    return ids


__all__ = [
    "DATASET_ID", "FEEDBACK", "ITDR_TASKS", "LABEL_RULES", "REGISTRY", "USER_ATTRIBUTES", "DatasetSpec", "Download",
    "RawFile", "category_slug", "dataset_ids", "get_category", "get_dataset", "parse_dataset_list", "sources",
]
