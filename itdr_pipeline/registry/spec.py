"""The types of the dataset registry: what a source is, which files it has, and how it is judged."""

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from itdr_pipeline.taskspec import TASKS, tasks_where

# A partition id: a source id (`ml-1m`), or `<source>.<category>` for sources published per
# category (`amazon-reviews-2018.gift-cards`). No dots elsewhere, no slashes: safe in paths.
DATASET_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}(\.[a-z0-9][a-z0-9-]{0,63})?$")

FEEDBACK = ("explicit", "implicit")
# How a binary preference label is read off an interaction (see docs/sources.md).
LABEL_RULES = {
    "rating_above": "liked when rating > like_threshold (TALLRec's rule; 1-5 stars: 4 and 5 are liked)",
    "weight_above_user_median": "liked when the play count / playtime is above the user's own median",
    "clicked": "liked when the impression was clicked (weight 1), disliked when shown and not clicked (weight 0)",
    "positive_only": "every interaction is a positive; negatives must be sampled from unseen items",
}
ITDR_TASKS = tuple(t for t in (*tasks_where(root="UII"), *tasks_where(root="UIU"))
                   if t not in tasks_where(kind="windows"))  # TALLRec's preference (and its hints variant)
INSTRUCTREC_TASKS = tasks_where(root="InstructRec")  # Zhang et al. 2023; need item text
USER_ATTRIBUTES = ("age", "age_group", "gender", "occupation", "zip_code", "location", "country", "birth_date")


@dataclass(frozen=True)
class RawFile:
    """One file of a dataset's official layout, relative to the dataset's folder."""

    name: str
    sha256: str | None  # the official file's hash; None where none is published
    required: bool = True
    # Other official spellings of the same file (e.g. `X.jsonl` for `X.jsonl.gz`), tried in order.
    alternatives: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.alternatives)


@dataclass(frozen=True)
class Download:
    """An official download and where it lands: an archive (.zip, .tar.gz) is unpacked, any other
    file (e.g. Amazon's per-category .json.gz) is placed in the source folder as it is."""

    url: str
    filename: str
    sha256: str | None  # None where the publisher gives none: then md5, else recorded `unverified`
    strip_prefix: str = ""  # folder inside the archive that holds the dataset files
    md5: str | None = None  # some publishers (GroupLens' large releases) publish only an MD5
    target: str = ""  # subfolder of the source folder that receives an archive's files (e.g. "train")

    @property
    def is_archive(self) -> bool:
        return self.filename.endswith((".zip", ".tar.gz", ".tgz", ".tar"))


@dataclass(frozen=True)
class DatasetSpec:
    id: str
    name: str
    description: str
    homepage: str
    terms: str
    citation: str
    format: str  # parser: `<module>` or `<module>:<function>` under itdr_pipeline.sources
    files: tuple[RawFile, ...]
    downloads: tuple[Download, ...] = ()
    source: str = ""  # the folder under ITDR_RAW_DIR (default: the id); shared by a source's categories
    category: str | None = None  # the official category name, for sources published per category
    feedback: str = "explicit"
    label_rule: str = "rating_above"
    tasks: tuple[str, ...] = ("preference",)  # ITDR subtasks (ITDR_TASKS), "preference" and INSTRUCTREC_TASKS
    rating_min: float = 1.0
    rating_max: float = 5.0
    like_threshold: float = 3.0  # label = rating > like_threshold (TALLRec's rule for 1-5 stars)
    item_noun: str = "movie"
    synthetic: bool = False
    preference_profiles: tuple[str, ...] = ("temporal",)
    user_attributes: tuple[str, ...] = ()  # demographic columns of `users` this source fills
    # Source-specific expectations added to a canonical contract: (table, expectation as in the YAML).
    expectations: tuple[tuple[str, dict[str, Any]], ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
    # The collection period the publisher documents (first day, last day; ISO dates, UTC), checked
    # as a warning on event times; None where the publisher states none.
    collected: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if not DATASET_ID.match(self.id):
            raise ValueError(f"registry: invalid dataset id {self.id!r}")
        if self.feedback not in FEEDBACK:
            raise ValueError(f"registry {self.id}: feedback must be one of {FEEDBACK}")
        if self.label_rule not in LABEL_RULES:
            raise ValueError(f"registry {self.id}: unknown label_rule {self.label_rule!r}")
        unknown = set(self.user_attributes) - set(USER_ATTRIBUTES)
        if unknown:
            raise ValueError(f"registry {self.id}: unknown user attributes {sorted(unknown)}")
        if self.collected is not None:
            first, last = (date.fromisoformat(d) for d in self.collected)
            if first > last:
                raise ValueError(f"registry {self.id}: collected period {self.collected} ends before it starts")
        unknown = set(self.tasks) - set(TASKS)
        if unknown:
            raise ValueError(f"registry {self.id}: unknown tasks {sorted(unknown)}")

    @property
    def folder(self) -> str:
        """The folder name under ITDR_RAW_DIR (and the fetch cache) that holds the raw files."""
        return self.source or self.id

    def file(self, name: str) -> RawFile:
        for raw in self.files:
            if name in raw.names:
                return raw
        raise KeyError(name)


def category_slug(category: str) -> str:
    """`Magazine_Subscriptions` -> `magazine-subscriptions` (the partition id suffix)."""
    return category.lower().replace("_", "-")
