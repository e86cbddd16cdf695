"""What the candidate-list tasks (tkr, nir, cdr) share: each target with the history before it,
seeded candidate lists (the positives plus negatives from `NegativeSampler`, shuffled for the
prompt) and the records built from them.

Order of work, for speed: targets and histories come from one SQL query over the already capped
targets; negatives are drawn per record in Python (at most one cell cap of records); item rows
are then loaded in one query for every id a cell shows.
"""

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.tasks.base import (NegativeSampler, RecordBuilder, RenderSettings, choose_template, domain_vars,
                                      item_label, load_items, task_templates)


@dataclass(frozen=True)
class Candidates:
    positives: list[str]  # the target first, then the user's next interactions, by time
    shown: list[str]  # prompt order (seeded shuffle)
    ranking: list[str]  # the true order: positives by time, then negatives by popularity


class Catalogue:
    """Item rows of one dataset, loaded once per cell, and how prompts name them."""

    def __init__(self, con: duckdb.DuckDBPyConnection, dataset: str, noun: str, item_ids: Sequence[str]):
        self.noun = noun
        self.rows = load_items(con, dataset, item_ids)

    def label(self, item_id: str) -> str:
        row = self.rows.get(item_id)
        return item_label(row["title"] if row else None, item_id, self.noun)

    def category(self, item_id: str) -> str | None:
        """The first genre, else the first category, else None."""
        row = self.rows.get(item_id) or {}
        for column in ("genres", "categories"):
            if row.get(column):
                return row[column][0]
        return None

    def distinct_labels(self, item_ids: Sequence[str]) -> dict[str, str]:
        """Labels for a candidate list; two candidates with the same title (ml-100k has 18 such
        titles, Amazon gift cards several) get their item id appended, so an answer names one."""
        labels = {i: self.label(i) for i in item_ids}
        counts = Counter(labels.values())
        return {i: f"{text} [{i}]" if counts[text] > 1 else text for i, text in labels.items()}


def fetch_targets(con: duckdb.DuckDBPyConnection, *, seq: str, targets: str, history_len: int,
                  later: tuple[str, int] | None = None) -> list[dict[str, Any]]:
    """One dict per target (split, record_idx, user_id, item_id, ts, history: up to `history_len`
    earlier item ids, oldest first). `later = (table, k)` adds `later`: the user's next k
    interactions that `table` (an uncapped split assignment) puts in the target's split."""
    later_sql, params = "[]::VARCHAR[]", [history_len]
    if later is not None:
        later_sql = f"""coalesce((SELECT list(a.item_id ORDER BY a.pos) FROM {later[0]} a
                        WHERE a.user_id = t.user_id AND a.split = t.split
                          AND a.pos BETWEEN t.pos + 1 AND t.pos + ?), [])"""
        params.append(later[1])
    return con.sql(
        f"""SELECT t.split, t.record_idx, t.user_id, t.item_id, t.ts,
                   (SELECT list(h.item_id ORDER BY h.pos) FROM {seq} h
                    WHERE h.user_id = t.user_id AND h.pos BETWEEN t.pos - ? AND t.pos - 1) AS history,
                   {later_sql} AS later
            FROM {targets} t ORDER BY t.record_idx""",
        params=params,
    ).to_arrow_table().to_pylist()


def draw(sampler: NegativeSampler, user_id: str, key: object, positives: list[str], size: int) -> Candidates | None:
    negatives = sampler.sample(user_id, key, size - len(positives))
    if negatives is None:
        return None
    return Candidates(positives=positives, shown=sampler.shuffle(positives + negatives, key),
                      ranking=positives + sampler.by_popularity(negatives))


Context = Callable[[dict[str, Any], Candidates, Catalogue], dict[str, Any]]


def build_records(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, task: str, profile: str,
                  settings: RenderSettings, rows: list[dict[str, Any]], *, size: int, ranked: bool,
                  context: Context, columns: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> pa.Table:
    """Draw each row's candidates (positives = the target plus `row["later"]`), then render.
    `context(row, candidates, catalogue)` gives the template variables beyond the domain wording;
    `ranked` (tkr, cdr) keeps the whole true order as the ranking, else (nir) the target alone."""
    sampler = NegativeSampler(con, spec.id, settings.negatives, settings.seed, task)
    sampler.seen(sorted({r["user_id"] for r in rows}))
    out = RecordBuilder(spec, task, profile, settings)
    drawn = []
    for r in rows:
        # Keyed by (user, target) only: a target drawn under several profiles gets the same list.
        found = draw(sampler, r["user_id"], (r["user_id"], r["item_id"]), [r["item_id"], *r["later"]], size)
        if found is None:
            out.drop("too_few_negatives")
        else:
            drawn.append((r, found))
    words = domain_vars(spec)
    shown = {i for r, c in drawn for i in (*r["history"], *c.shown)}
    catalogue = Catalogue(con, spec.id, words["noun"], sorted(shown))
    templates, held_out = task_templates(task, profile)
    for r, c in drawn:
        labels = catalogue.distinct_labels(c.shown)
        template = choose_template(templates, held_out, settings, spec.id, task, r["split"],
                                   (profile, r["user_id"], r["item_id"]))
        answer = {"positives": c.positives, **({"ranking": c.ranking} if ranked else {})}
        out.add(template=template, context={**words, **context(r, c, catalogue)}, split=r["split"],
                record_idx=r["record_idx"], user_id=r["user_id"], target_item_id=r["item_id"],
                candidate_item_ids=c.shown, candidate_texts=[labels[i] for i in c.shown], ranking_item_ids=c.ranking if ranked else [r["item_id"]],
                answer_json=json.dumps(answer), history_item_ids=r["history"], target_ts=r["ts"],
                **(columns(r) if columns else {}))
    return out.table()


def ranked_context(r: dict[str, Any], c: Candidates, catalogue: Catalogue) -> dict[str, Any]:
    """tkr and cdr: history titles, candidates in prompt order, the answer in the true order."""
    labels = catalogue.distinct_labels(c.shown)
    return {"history": [catalogue.label(i) for i in r["history"]], "candidates": [labels[i] for i in c.shown],
            "ranking": [labels[i] for i in c.ranking], "k": len(c.shown)}
