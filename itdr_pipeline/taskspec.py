"""The task registry: one TaskSpec per task, read by rendering, the checks, evaluation, the
baselines, `itdr tasks` and the docs test (tests/test_registry_contracts.py checks that every
task has a renderer, templates, a scorer, baselines that exist and a section in docs/tasks.md).

Adding a task is one renderer module under itdr_pipeline/tasks/, one template file, one entry
here, its tests and its docs (docs/how-to-add.md). No heavy import: training reads this too.
"""

from dataclasses import dataclass

ROOT_NAMES = ("UII", "UIU", "InstructRec")
KINDS = ("windows", "sequence", "entity")
ANSWERS = ("yes_no", "generate", "generate+likelihood")
METRICS = ("auc", "rating", "ranking", "choice", "attributes", "text", "instructrec")
BASELINES = ("random", "popularity", "item-kNN", "BM25", "logistic regression")


@dataclass(frozen=True)
class TaskSpec:
    id: str
    root: str  # the root task it belongs to (ROOT_NAMES); preference is TALLRec's, filed under UII
    title: str
    # windows: TALLRec-style preference windows; sequence: rendered from a user's interaction
    # sequence (render passes the sequence table); entity: one record per user or item.
    kind: str
    renderer: str  # "module:function" under itdr_pipeline.tasks
    # How a model answers at evaluation: P(Yes) vs P(No); greedy generation; or generation plus
    # likelihood scoring of every candidate (reported as "(likelihood)").
    answer: str
    metric: str  # the scorer family of training.metrics
    baselines: tuple[str, ...]  # in report order
    candidates: bool = False  # renders a candidate list (soundness and never-interacted checks)

    def __post_init__(self) -> None:
        for name, value, allowed in (("root", self.root, ROOT_NAMES), ("kind", self.kind, KINDS),
                                     ("answer", self.answer, ANSWERS), ("metric", self.metric, METRICS)):
            if value not in allowed:
                raise ValueError(f"task {self.id}: {name} must be one of {allowed}, got {value!r}")
        unknown = set(self.baselines) - set(BASELINES)
        if unknown or "random" not in self.baselines:
            raise ValueError(f"task {self.id}: baselines must include random and be among {BASELINES}")


_RANKERS = ("random", "popularity", "item-kNN")
TASK_SPECS = (
    TaskSpec("preference", "UII", "Yes/No preference (TALLRec)", "windows", "preference:render_preference",
             "yes_no", "auc", ("random", "popularity", "logistic regression")),
    # preference's windows, labels and splits, the input stating train-split like rates (issue 12's
    # collaborative hints); a config of its own so the plain TALLRec records stay exact.
    TaskSpec("preference_hints", "UII", "Yes/No preference with collaborative hints", "windows",
             "preference:render_preference_hints", "yes_no", "auc", ("random", "popularity", "logistic regression")),
    TaskSpec("rp", "UII", "rating prediction", "sequence", "rp:render_rp", "generate", "rating", _RANKERS),
    TaskSpec("tkr", "UII", "top-k recommendation", "sequence", "tkr:render_tkr", "generate", "ranking", _RANKERS,
             candidates=True),
    TaskSpec("cdr", "UII", "cross-domain recommendation", "sequence", "cdr:render_cdr", "generate", "ranking",
             _RANKERS, candidates=True),
    TaskSpec("nir", "UII", "next item recommendation", "sequence", "nir:render_nir", "generate+likelihood",
             "choice", _RANKERS, candidates=True),
    TaskSpec("uap", "UIU", "user attribute prediction", "entity", "uap:render_uap", "generate", "attributes",
             ("random", "popularity")),
    TaskSpec("ir", "UIU", "interest recognition", "entity", "ir:render_ir", "generate", "text", ("random",)),
    TaskSpec("tui", "UIU", "target user identification", "entity", "tui:render_tui", "generate", "text",
             ("random",)),
    TaskSpec("seqrec", "InstructRec", "sequential recommendation (InstructRec)", "sequence",
             "instructrec:render_seqrec", "generate+likelihood", "instructrec", _RANKERS, candidates=True),
    # Product search: queries (items) split 8:1:1, so no test item is in a train record and train
    # popularity would rank every target last; text match is the baseline that applies.
    TaskSpec("search", "InstructRec", "product search (InstructRec)", "sequence", "instructrec:render_search",
             "generate+likelihood", "instructrec", ("random", "BM25"), candidates=True),
    TaskSpec("psearch", "InstructRec", "personalized search (InstructRec)", "sequence",
             "instructrec:render_psearch", "generate+likelihood", "instructrec", (*_RANKERS, "BM25"),
             candidates=True),
)
TASKS = tuple(s.id for s in TASK_SPECS)
_BY_ID = {s.id: s for s in TASK_SPECS}


def task_spec(task: str) -> TaskSpec:
    try:
        return _BY_ID[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}") from None


def tasks_where(**fields: object) -> tuple[str, ...]:
    """Task ids whose spec has these field values, in registry order: tasks_where(kind="entity")."""
    return tuple(s.id for s in TASK_SPECS if all(getattr(s, k) == v for k, v in fields.items()))
