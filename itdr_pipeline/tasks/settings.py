"""Render settings: every knob of rendering (all of it goes into the published version id), and
the task groups and profile names they are checked against."""

from dataclasses import asdict, dataclass, replace
from typing import Any

from itdr_pipeline.errors import ItdrError
from itdr_pipeline.taskspec import ROOT_NAMES, tasks_where
from itdr_pipeline.templates import AUGMENTATIONS

# Task groups, from the task registry (itdr_pipeline.taskspec).
ROOTS = {root: tasks_where(root=root) for root in ROOT_NAMES}
ENTITY_TASKS = tasks_where(kind="entity")
INSTRUCTREC_TASKS = ROOTS["InstructRec"]
# Tasks rendered from a user's interaction sequence (render passes them the sequence table).
SEQUENCE_TASKS = tasks_where(kind="sequence")
PROFILES = ("temporal", "leave_one_out", "random_user", "global_temporal")
# Profiles whose test targets must come after the user's train targets (leakage is an ERROR).
TEMPORAL_PROFILES = ("temporal", "leave_one_out", "global_temporal")
NEGATIVE_MODES = ("uniform", "popularity")
INSTRUCTREC_NEGATIVES = ("uniform", "popularity", "retriever", "knn")  # hard negatives: BM25 or item-kNN
# Interactions that say the user wanted the item: everything but an impression that was not clicked.
_POSITIVE = "(event <> 'impression' OR coalesce(weight, 0) > 0)"
# InstructRec's grouped lists: a stage prompt's placeholder for its j-th candidate, filled at evaluation.
STAGE_SLOT = "⟦candidate {}⟧"


@dataclass(frozen=True)
class RenderSettings:
    """Every knob of rendering; all of it goes into the published version id."""

    profiles: tuple[str, ...] = ("temporal",)
    seed: int = 42
    cap: int = 6250  # records per (task, dataset, profile) cell, split 8:1:1 (ITDR's cap); 0 = no cap
    min_history: int = 5  # sequence tasks: a target needs this many earlier interactions
    max_eval_per_user: int = 5  # temporal: cap on a user's valid (and test) targets
    max_train_per_user: int = 40  # every profile: cap on a user's train targets (seeded sample)
    history_len: int = 10  # preference and rp: earlier interactions shown
    seq_history_len: int = 5  # tkr, nir, cdr: earlier interactions shown (per domain for cdr)
    tallrec_records: int = 10_000  # preference/tallrec: keep the last N windows
    negatives: str = "uniform"  # or "popularity": how tkr/nir/cdr negatives are drawn
    tkr_candidates: int = 10
    tkr_positives: int = 3  # tkr: the target plus the user's next interactions in the same split
    nir_candidates: int = 5
    cdr_candidates: int = 10
    cdr_source: str | None = None  # cdr: the source-domain dataset id (default: the registry's partner)
    cdr_min_source_history: int = 1  # cdr: source-domain interactions the user needs before the target
    cdr_min_history: int = 1  # cdr: target-domain interactions before the target (few users overlap)
    profile_len: int = 10  # uap, ir: the user's items (or reviews) shown
    tui_reviews: int = 3  # tui: customer reviews shown with the item
    review_chars: int = 200  # review excerpts are cut at a word boundary to about this many characters
    ir_min_liked: int = 2  # ir: liked items a user needs
    tui_min_likers: int = 3  # tui: users who liked the item
    fraction: float = 1.0  # ablation: keep this share of each cell's train records (nested by seed)
    descriptions: bool = True  # ablation: False renders every record without its task description
    root: str | None = None  # ablation: "UII" or "UIU" renders one root task's subtasks only
    unseen_template_test: bool = False  # test records use the held-out template (unseen-template eval)
    teacher_base_url: str | None = None  # ir/tui: an OpenAI-compatible endpoint that rewrites references
    teacher_model: str | None = None
    teacher_api_key_env: str = "ITDR_TEACHER_API_KEY"  # the key is read from this variable, never stored
    teacher_max_records: int = 0  # 0 = every ir/tui record; else only the first N per cell
    instructrec_candidates: int = 10  # seqrec, search, psearch: the target + N-1 negatives (the paper: 10; 100 for its large lists)
    instructrec_history_len: int = 10  # seqrec, psearch: earlier interactions shown (the paper: at most 20)
    instructrec_negatives: str = "uniform"  # uniform, popularity, retriever (BM25 hard negatives) or knn (item-kNN)
    instructrec_full_ranking: bool = False  # the output ranks every candidate, not just the target
    instructrec_augment: tuple[str, ...] = ()  # train-only extra records: "flip" (search, psearch), "consistency" (psearch)
    # The paper's large lists: valid and test records carry groups x instructrec_candidates candidates
    # (10 x 10 = 100), ranked in two stages (the best of each group, then the winners); train stays at 10.
    instructrec_groups: int = 1

    def __post_init__(self) -> None:
        bad = [p for p in self.profiles if p not in PROFILES]
        if bad or not self.profiles:
            raise ItdrError(f"unknown split profile(s) {bad}; known: {', '.join(PROFILES)}")
        if self.negatives not in NEGATIVE_MODES:
            raise ItdrError(f"negatives must be one of {NEGATIVE_MODES}, got {self.negatives!r}")
        if not 0.0 < self.fraction <= 1.0:
            raise ItdrError(f"fraction must be in (0, 1], got {self.fraction}")
        if self.root is not None and self.root not in ROOTS:
            raise ItdrError(f"root must be one of {', '.join(ROOTS)}, got {self.root!r}")
        if self.instructrec_negatives not in INSTRUCTREC_NEGATIVES:
            raise ItdrError(f"instructrec_negatives must be one of {INSTRUCTREC_NEGATIVES}, "
                            f"got {self.instructrec_negatives!r}")
        bad_aug = [a for a in self.instructrec_augment if a not in AUGMENTATIONS]
        if bad_aug:
            raise ItdrError(f"unknown instructrec_augment value(s) {bad_aug}; known: {', '.join(AUGMENTATIONS)}")
        if self.instructrec_candidates < 2 or self.instructrec_history_len < 1:
            raise ItdrError("instructrec_candidates must be >= 2 and instructrec_history_len >= 1")
        if self.instructrec_groups < 1:
            raise ItdrError(f"instructrec_groups must be >= 1, got {self.instructrec_groups}")
        if self.instructrec_groups > 1 and self.instructrec_full_ranking:
            raise ItdrError("instructrec_groups > 1 ranks in two stages, each naming one winner: it does not "
                            "combine with instructrec_full_ranking")
        for name in ("cap", "min_history", "max_eval_per_user", "max_train_per_user"):
            if getattr(self, name) < 0:
                raise ItdrError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.min_history < 1 or self.max_eval_per_user < 1:
            raise ItdrError("min_history and max_eval_per_user must be >= 1")
        if not (1 <= self.tkr_positives < self.tkr_candidates) or self.nir_candidates < 2 or self.cdr_candidates < 2:
            raise ItdrError("candidate lists need at least one negative (tkr_positives < tkr_candidates, "
                            "nir_candidates >= 2, cdr_candidates >= 2)")

    def with_(self, **changes: Any) -> "RenderSettings":
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["profiles"] = list(self.profiles)
        out["instructrec_augment"] = list(self.instructrec_augment)
        if self.instructrec_groups == 1:  # added later: at its default, earlier version ids stay as they were
            del out["instructrec_groups"]
        return out
