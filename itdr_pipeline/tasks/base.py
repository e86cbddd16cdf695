"""What every task shares: settings, interaction sequences, split profiles and caps, negative
sampling, template choice and the record layout.

Sequence tasks (preference, rp, tkr, nir, cdr) turn one interaction of a user into one record:
the *target*, with the user's earlier interactions as history. Which targets go to which split is
the split profile's job (`assign_splits`):

- `temporal` (default): per user, the latest targets go to test, the ones before to valid, the
  rest to train, so every test target comes after all of that user's train targets.
- `leave_one_out`: per user, the last target to test, the one before to valid (P5, RecBole).
- `random_user`: users split 8:1:1 by a stable hash of (seed, dataset, user).
- `global_temporal`: one pair of cut points in time for everyone (the 80th and 90th percentile of
  target times): train before, valid between, test after.

InstructRec's seqrec and psearch are sequence tasks too; its product search (`search`) makes one
record per item and splits items like an entity task.

Entity tasks (uap and ir per user, tui per item) make one record per user or item; whatever the
profile, they split entities 8:1:1 by the same stable hash, so under `random_user` a user's
records of every task land in the same split.

Every sampling decision (per-user train cap, the per-cell cap, the data fraction, negatives,
template choice) is a pure function of the seed and the record's key, so the same inputs give the
same bytes and changing one record never reshuffles another.
"""

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import yaml

from itdr_pipeline.errors import ItdrError
from itdr_pipeline.records import RECORD_SCHEMA, SPLITS  # noqa: F401 (SPLITS: re-exported)
from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.taskspec import ROOT_NAMES, TASKS, tasks_where  # noqa: F401 (TASKS: re-exported)
from itdr_pipeline.templates import AUGMENTATIONS, TEMPLATE_DIR, Template, templates_for

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


def _used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """DuckDB refuses named parameters a statement does not use: keep the ones it does."""
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}


def split_caps(cap: int) -> dict[str, int]:
    """The 8:1:1 share of a cell cap per split (0 = uncapped)."""
    if cap == 0:
        return {"train": 0, "valid": 0, "test": 0}
    held = max(1, round(cap * 0.1))
    return {"train": cap - 2 * held, "valid": held, "test": held}


def stable_int(*parts: object) -> int:
    """A 64-bit integer from the parts: the seed of every per-record random choice."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def entity_split(seed: int, dataset: str, entity: str) -> str:
    """8:1:1 by a stable hash; the SQL twin is the `itdr_bucket` macro (same md5 prefix)."""
    bucket = int(hashlib.md5(f"{seed}:{dataset}:{entity}".encode()).hexdigest()[:8], 16) % 10
    return "test" if bucket == 9 else "valid" if bucket == 8 else "train"


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE OR REPLACE TEMP MACRO itdr_bucket(key) AS ('0x' || substr(md5(key), 1, 8))::BIGINT % 10")
    con.execute("""CREATE OR REPLACE TEMP MACRO itdr_split(key) AS
                   CASE itdr_bucket(key) WHEN 9 THEN 'test' WHEN 8 THEN 'valid' ELSE 'train' END""")


def require_filtered(con: duckdb.DuckDBPyConnection, dataset: str) -> None:
    if con.execute("SELECT count(*) FROM filter_runs WHERE dataset = ?", [dataset]).fetchall()[0][0] == 0:
        raise ItdrError(f"{dataset}: interactions not filtered yet (filtered_interactions is what tasks read); "
                        "run itdr_pipeline.filters.apply_filters or `itdr materialize`")


def build_sequence(con: duckdb.DuckDBPyConnection, dataset: str, *, rated: bool, name: str) -> str:
    """A temp table of each user's interactions in time order (ties: file order; no timestamp:
    file order), one row per (user, item): the first time the user met the item, so a target can
    never repeat an item of the user's history. `rated` keeps explicit ratings only, else every
    positive interaction (an unclicked impression is not one)."""
    where = "rating IS NOT NULL" if rated else _POSITIVE
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {name} AS
            WITH f AS (
                SELECT user_id, item_id, ts, rating, weight, event, src_row FROM filtered_interactions
                WHERE dataset = ? AND {where}
                QUALIFY row_number() OVER (PARTITION BY user_id, item_id ORDER BY ts NULLS LAST, src_row) = 1)
            SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY ts NULLS LAST, src_row) - 1 AS pos,
                   count(*) OVER (PARTITION BY user_id) AS n,
                   min(src_row) OVER (PARTITION BY user_id) AS first_row
            FROM f""",
        [dataset],
    )
    return name


def assign_splits(con: duckdb.DuckDBPyConnection, *, seq: str, dataset: str, task: str, profile: str,
                  settings: RenderSettings, out: str, every: str | None = None) -> str:
    """Choose the targets of a sequence task and their splits into temp table `out`:
    (user_id, item_id, ts, rating, pos, split, record_idx), ordered train, valid, test.

    Steps: eligible targets (pos >= min_history) -> profile's split -> per-user train cap
    -> the cell cap (8:1:1 shares) -> the data fraction of train. Each sample takes the records
    with the smallest seeded md5 of their key, so smaller samples nest inside larger ones.
    `every`, when given, names a temp table that also receives every eligible position with its
    split before any cap (tkr reads the split of a target's next interactions there)."""
    if profile not in PROFILES:
        raise ItdrError(f"unknown split profile {profile!r}; known: {', '.join(PROFILES)}")
    s = settings
    caps = split_caps(s.cap)
    params = {"min_h": s.min_history, "max_eval": s.max_eval_per_user, "max_train": s.max_train_per_user,
              "key": f"{s.seed}:{dataset}:{task}", "user_key": f"{s.seed}:{dataset}",
              "cap_train": caps["train"], "cap_valid": caps["valid"], "cap_test": caps["test"],
              "fraction": s.fraction}
    if profile == "temporal":
        n_eval = "least($max_eval, greatest(1, floor((n - $min_h) * 0.1)))::BIGINT"
    else:
        n_eval = "1"
    if profile in ("temporal", "leave_one_out"):
        eligible = "pos >= $min_h AND n - $min_h >= 3"
        split = f"""CASE WHEN pos - $min_h >= n - $min_h - {n_eval} THEN 'test'
                         WHEN pos - $min_h >= n - $min_h - 2 * {n_eval} THEN 'valid' ELSE 'train' END"""
        cuts = ""
    elif profile == "random_user":
        install_macros(con)
        eligible = "pos >= $min_h"
        split = "itdr_split(concat_ws(':', $user_key, user_id))"
        cuts = ""
    else:  # global_temporal
        if con.execute(f"SELECT count(*) FILTER (ts IS NULL) FROM {seq}").fetchall()[0][0]:
            raise ItdrError(f"{dataset} has interactions without timestamps: the global_temporal profile needs "
                            "them (use temporal, leave_one_out or random_user)")
        eligible = "pos >= $min_h"
        split = "CASE WHEN ts < c.t80 THEN 'train' WHEN ts < c.t90 THEN 'valid' ELSE 'test' END"
        cuts = (f", (SELECT quantile_disc(ts, 0.8) AS t80, quantile_disc(ts, 0.9) AS t90 "
                f"FROM {seq} WHERE pos >= $min_h) c")
    cap_clause = ("(split = 'train' AND ($cap_train = 0 OR r_cell <= $cap_train)) OR "
                  "(split = 'valid' AND ($cap_valid = 0 OR r_cell <= $cap_valid)) OR "
                  "(split = 'test' AND ($cap_test = 0 OR r_cell <= $cap_test))")
    eligible_sql = (f"SELECT {seq}.*, {split} AS split, md5(concat_ws(':', $key, user_id, pos)) AS draw "
                    f"FROM {seq}{cuts} WHERE {eligible}")
    if every is not None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {every} AS {eligible_sql}", _used(eligible_sql, params))
        eligible_sql = f"SELECT * FROM {every}"
    sql = f"""CREATE OR REPLACE TEMP TABLE {out} AS
            WITH e AS ({eligible_sql}),
            u AS (SELECT * FROM e QUALIFY split <> 'train' OR
                      row_number() OVER (PARTITION BY user_id, split ORDER BY draw, pos) <= $max_train),
            c AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY split ORDER BY md5(draw || ':cap'), user_id, pos) AS r_cell FROM u)
                  WHERE {cap_clause}),
            f AS (SELECT * FROM c QUALIFY split <> 'train' OR
                      row_number() OVER (PARTITION BY split ORDER BY md5(draw || ':fraction'), user_id, pos)
                      <= greatest(1, floor(count(*) OVER (PARTITION BY split) * $fraction)))
            SELECT user_id, item_id, ts, rating, pos, split, first_row,
                   row_number() OVER (ORDER BY CASE split WHEN 'train' THEN 0 WHEN 'valid' THEN 1 ELSE 2 END,
                                               first_row, user_id, pos) - 1 AS record_idx
            FROM f"""
    con.execute(sql, _used(sql, params))
    return out


def cap_entities(con: duckdb.DuckDBPyConnection, *, table: str, key: str, dataset: str, task: str,
                 settings: RenderSettings, out: str) -> str:
    """Entity tasks: split the rows of `table` (one per entity, identified by column `key`) 8:1:1
    by the stable hash, then apply the cell cap and the data fraction; adds split and record_idx."""
    install_macros(con)
    caps = split_caps(settings.cap)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {out} AS
            WITH e AS (SELECT t.*, itdr_split(concat_ws(':', $user_key, t.{key})) AS split,
                              md5(concat_ws(':', $key, t.{key})) AS draw FROM {table} t),
            c AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY split ORDER BY draw, {key}) AS r_cell FROM e)
                  WHERE (split = 'train' AND ($cap_train = 0 OR r_cell <= $cap_train))
                     OR (split = 'valid' AND ($cap_valid = 0 OR r_cell <= $cap_valid))
                     OR (split = 'test' AND ($cap_test = 0 OR r_cell <= $cap_test))),
            f AS (SELECT * FROM c QUALIFY split <> 'train' OR
                      row_number() OVER (PARTITION BY split ORDER BY md5(draw || ':fraction'), {key})
                      <= greatest(1, floor(count(*) OVER (PARTITION BY split) * $fraction)))
            SELECT * EXCLUDE (draw, r_cell),
                   row_number() OVER (ORDER BY CASE split WHEN 'train' THEN 0 WHEN 'valid' THEN 1 ELSE 2 END,
                                               {key}) - 1 AS record_idx
            FROM f""",
        {"user_key": f"{settings.seed}:{dataset}", "key": f"{settings.seed}:{dataset}:{task}",
         "cap_train": caps["train"], "cap_valid": caps["valid"], "cap_test": caps["test"],
         "fraction": settings.fraction},
    )
    return out


class NegativeSampler:
    """Negatives for candidate lists: items of the dataset the user never interacted with (any
    event, any time), drawn uniformly or in proportion to popularity (interaction count), each
    record from its own seeded generator."""

    def __init__(self, con: duckdb.DuckDBPyConnection, dataset: str, mode: str, seed: int, task: str,
                 universe_sql: str | None = None):
        self.mode, self.seed, self.dataset, self.task = mode, seed, dataset, task
        # The universe: items with a positive interaction (or a query's items), sorted by id.
        universe_sql = universe_sql or f"SELECT item_id, count(*) AS n FROM filtered_interactions WHERE dataset = $d AND {_POSITIVE} GROUP BY item_id"
        items = con.sql(f"SELECT item_id, n FROM ({universe_sql}) ORDER BY item_id",
                        params={"d": dataset}).to_arrow_table()
        self.items = np.asarray(items.column("item_id").to_pylist(), dtype=object)
        self.index = {item: i for i, item in enumerate(self.items)}
        counts = np.asarray(items.column("n").to_numpy(zero_copy_only=False), dtype=np.float64)
        self.cumulative = np.cumsum(counts) / counts.sum() if len(counts) else counts
        self.popularity = dict(zip(self.items, counts))
        self._seen: dict[str, set[str]] = {}
        self._con = con

    def seen(self, user_ids: Sequence[str]) -> None:
        """Load the interacted-item sets of these users (one query for all of them)."""
        missing = sorted(set(user_ids) - self._seen.keys())
        if not missing:
            return
        wanted = pa.table({"user_id": missing})
        rows = self._con.sql(
            """SELECT i.user_id, list(DISTINCT i.item_id) FROM filtered_interactions i
               JOIN wanted w USING (user_id) WHERE i.dataset = ? GROUP BY i.user_id""",
            params=[self.dataset]).fetchall()
        for user in missing:
            self._seen[user] = set()
        for user, items in rows:
            self._seen[user] = set(items)

    def interacted(self, user_id: str) -> set[str]:
        """Every item the user interacted with (any event, any time)."""
        if user_id not in self._seen:
            self.seen([user_id])
        return self._seen[user_id]

    def sample(self, user_id: str, key: object, k: int) -> list[str] | None:
        """k distinct negatives for the user, or None when the catalogue has fewer than k."""
        seen = self._seen.get(user_id)
        if seen is None:
            self.seen([user_id])
            seen = self._seen[user_id]
        rng = np.random.default_rng(stable_int(self.seed, self.dataset, self.task, "neg", key))
        picked: list[str] = []
        chosen: set[str] = set()
        for _ in range(20):
            draw = (rng.integers(0, len(self.items), size=4 * k) if self.mode == "uniform"
                    else np.searchsorted(self.cumulative, rng.random(4 * k), side="right"))
            for idx in draw:
                item = self.items[min(int(idx), len(self.items) - 1)]
                if item not in seen and item not in chosen:
                    chosen.add(item)
                    picked.append(item)
                    if len(picked) == k:
                        return picked
        # A user who has met most of the catalogue: draw from the explicit complement.
        rest = [i for i in self.items if i not in seen and i not in chosen]
        if len(rest) < k - len(picked):
            return None
        extra = rng.choice(len(rest), size=k - len(picked), replace=False)
        return picked + [rest[int(i)] for i in sorted(extra)]

    def shuffle(self, items: list[str], key: object) -> list[str]:
        rng = np.random.default_rng(stable_int(self.seed, self.dataset, self.task, "order", key))
        return [items[int(i)] for i in rng.permutation(len(items))]

    def by_popularity(self, items: list[str]) -> list[str]:
        """Negatives in their reference order: most popular first, ties by item id."""
        return sorted(items, key=lambda i: (-self.popularity.get(i, 0.0), i))


@cache
def _domains() -> dict[str, dict[str, str]]:
    return yaml.safe_load((TEMPLATE_DIR / "domains.yaml").read_text(encoding="utf-8"))["domains"]


def domain_vars(spec: DatasetSpec) -> dict[str, str]:
    """Domain wording for templates (noun, nouns, domain, verb, verb_past), keyed by the item noun."""
    domains = _domains()
    if spec.item_noun not in domains:
        raise ItdrError(f"templates/domains.yaml has no wording for item noun {spec.item_noun!r} ({spec.id})")
    return dict(domains[spec.item_noun])


def item_label(title: str | None, item_id: str, noun: str) -> str:
    """What a prompt calls an item: its title, or (no title in the source) the noun and its id."""
    return title if title else f"{noun} {item_id}"


def format_rating(value: float) -> str:
    """A rating in the source's own scale: 4 -> "4", 3.5 -> "3.5"."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def choose_template(templates: list[Template], held_out: Template | None, settings: RenderSettings,
                    dataset: str, task: str, split: str, key: object) -> Template:
    if split == "test" and settings.unseen_template_test:
        if held_out is None:
            raise ItdrError(f"unseen_template_test: task {task!r} has no held-out template")
        return held_out
    if len(templates) == 1:
        return templates[0]
    return templates[stable_int(settings.seed, dataset, task, "template", key) % len(templates)]


def task_templates(task: str, profile: str) -> tuple[list[Template], Template | None]:
    """The templates used for rendering and the task's held-out one (or None)."""
    seen = templates_for(task, profile)
    held = [t for t in templates_for(task, profile, include_held_out=True) if t.held_out]
    return seen, (held[0] if held else None)


class RecordBuilder:
    """Collects one cell's records and renders its templates (the description is left empty
    when the `descriptions` ablation is off)."""

    def __init__(self, spec: DatasetSpec, task: str, profile: str, settings: RenderSettings):
        self.spec, self.task, self.profile, self.settings = spec, task, profile, settings
        self.rows: list[dict[str, Any]] = []
        self.dropped: dict[str, int] = {}

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def add(self, *, template: Template, context: dict[str, Any], split: str, record_idx: int,
            reference_generator: str = "data", **columns: Any) -> None:
        description, text_in, text_out = template.render(context)
        self.rows.append({
            "dataset": self.spec.id, "task": self.task, "profile": self.profile, "split": split,
            "record_idx": record_idx, "template_id": template.id,
            "instruction": description if self.settings.descriptions else "",
            "input": text_in, "output": text_out, "reference_generator": reference_generator, **columns,
        })

    def table(self) -> pa.Table:
        defaults = {"candidate_item_ids": [], "candidate_texts": [], "history_labels": [], "ranking_item_ids": [], "history_item_ids": [],
                    "source_history_item_ids": []}
        rows = [{**defaults, **r} for r in self.rows]
        rows.sort(key=lambda r: r["record_idx"])
        unknown = {k for r in rows for k in r} - set(RECORD_SCHEMA.names)
        if unknown:
            raise ValueError(f"{self.task}: unknown record columns {sorted(unknown)}")
        table = pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
        # Why candidates left the cell travels with the table, for the render asset's metadata.
        return table.replace_schema_metadata({"dropped": json.dumps(self.dropped, sort_keys=True)})


def load_items(con: duckdb.DuckDBPyConnection, dataset: str, item_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Item rows (every column of `items`) for these ids, keyed by id."""
    wanted = pa.table({"item_id": sorted(set(item_ids))})
    rows = con.sql("SELECT i.* EXCLUDE (dataset) FROM items i JOIN wanted USING (item_id) WHERE i.dataset = ?",
                   params=[dataset]).to_arrow_table().to_pylist()
    return {r["item_id"]: r for r in rows}


def template_path(task: str) -> Path:
    return TEMPLATE_DIR / f"{task}.yaml"
