"""InstructRec's three tasks (Zhang et al. 2023, "Recommendation as Instruction Following"), each a
combination of its axes: preference P (P0 none, P1 past items, P2 a description of the user),
intention I (I0 none, I1 vague, I2 specific), task form T (T3: re-rank a candidate list).

- `seqrec` <P1|P2, I0, T3>: the user's next item among N candidates (10 by default: the target and
  9 negatives the user never interacted with), from the user's history (P1) or its summary (P2).
- `psearch` <P1|P2, I2, T3>: the same, with the user's intention for the target stated.
- `search` <P0, I2|I1, T3>: product search: the intention alone, no user context. One record per
  item (its query), the user who bought it drawn by a seeded hash; items split 8:1:1, as the paper.

Intentions and explicit preferences are grounded in the data (generator `grounded-instructrec-v1`),
deterministic and always available where the item has metadata:
- I2 (specific): the target's category path (genres elsewhere), its brand (or creator) and price band.
- I1 (vague): the coarsest informative category plus a purpose ("for my son", "for a birthday")
  read off the target's reviews, when one is said.
- P2 (explicit): the user's most frequent history categories and brands, with what the user rated
  low where ratings exist.
No intention ever names the target: a part that contains its title or id is left out, and
`render.check_records` blocks any record whose intention still does (`intention_free_of_target`).

Negatives: `instructrec_negatives` = uniform, popularity, or hard negatives from a retriever, the
top hits the user never touched: `retriever` (BM25 over item text for the query; bm25s) or `knn`
(item-kNN: cosine over co-interacting users, summed over the user's history, or the target's
neighbours for product search, which has no history). Where fewer items than needed score above
zero, the rest are drawn uniformly, so no fixed low-id items fill every list.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from itdr_pipeline.registry import DatasetSpec
from itdr_pipeline.tasks.base import (STAGE_SLOT, NegativeSampler, RecordBuilder, RenderSettings, assign_splits,
                                      cap_entities, choose_template, domain_vars, item_label, load_items, stable_int,
                                      task_templates)
from itdr_pipeline.tasks.candidates import Catalogue
from itdr_pipeline.tasks.intentions import (explicit_preference, item_document, names_target, specific_intention,
                                            vague_intention)
from itdr_pipeline.tasks.retrieval import KnnRetriever, Retriever
from itdr_pipeline.teacher import Teacher, generator_name, instructrec_messages
from itdr_pipeline.templates import Template, augmentation_templates

TASKS = ("seqrec", "search", "psearch")
GENERATOR = "grounded-instructrec-v1"


@dataclass(frozen=True)
class Target:
    split: str
    record_idx: int
    user_id: str
    item_id: str
    ts: Any
    history: list[str]
    ratings: list[float | None]


def _sequence_targets(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, task: str, profile: str,
                      settings: RenderSettings, seq: str) -> list[Target]:
    targets = assign_splits(con, seq=seq, dataset=spec.id, task=task, profile=profile, settings=settings,
                            out=f"{task}_targets")
    rows = con.sql(
        f"""SELECT t.split, t.record_idx, t.user_id, t.item_id, t.ts,
                   (SELECT list(h.item_id ORDER BY h.pos) FROM {seq} h
                    WHERE h.user_id = t.user_id AND h.pos BETWEEN t.pos - $n AND t.pos - 1) AS history,
                   (SELECT list(h.rating ORDER BY h.pos) FROM {seq} h
                    WHERE h.user_id = t.user_id AND h.pos BETWEEN t.pos - $n AND t.pos - 1) AS ratings
            FROM {targets} t ORDER BY t.record_idx""",
        params={"n": settings.instructrec_history_len}).fetchall()
    return [Target(*r) for r in rows]


def _search_targets(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, settings: RenderSettings,
                    seq: str) -> list[Target]:
    """One query per item: the item with one of its users (the smallest seeded hash), whose
    interactions the negatives avoid; items split 8:1:1 by the stable hash."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE search_items AS
            SELECT item_id, user_id, ts FROM {seq}
            QUALIFY row_number() OVER (PARTITION BY item_id
                                       ORDER BY md5(concat_ws(':', $key, item_id, user_id)), user_id) = 1""",
        {"key": f"{settings.seed}:{spec.id}:search:user"})
    out = cap_entities(con, table="search_items", key="item_id", dataset=spec.id, task="search",
                       settings=settings, out="search_targets")
    rows = con.execute(f"SELECT split, record_idx, user_id, item_id, ts FROM {out} ORDER BY record_idx").fetchall()
    return [Target(*r, history=[], ratings=[]) for r in rows]


def _reviews(con: duckdb.DuckDBPyConnection, dataset: str, item_ids: Sequence[str]) -> dict[str, list[str]]:
    wanted = pa.table({"item_id": sorted(set(item_ids))})
    rows = con.sql("""SELECT r.item_id, list(concat_ws(' ', r.summary, r.text) ORDER BY r.src_row)
                      FROM reviews r JOIN wanted USING (item_id) WHERE r.dataset = ? GROUP BY r.item_id""",
                   params=[dataset]).fetchall()
    return dict(rows)


def _needs_met(template: Template, preference: str | None, intentions: dict[str, str | None]) -> bool:
    p, i, _ = template.axes
    return (p != "P2" or preference is not None) and (i == "I0" or intentions.get(i) is not None)


def _render(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, task: str, profile: str, settings: RenderSettings,
            targets: list[Target]) -> pa.Table:
    out = RecordBuilder(spec, task, profile, settings)
    words = domain_vars(spec)
    hard = settings.instructrec_negatives in ("retriever", "knn")
    sampler = NegativeSampler(con, spec.id, "uniform" if hard else settings.instructrec_negatives, settings.seed, task)
    sampler.seen(sorted({t.user_id for t in targets}))
    needed = {i for t in targets for i in (*t.history, t.item_id)}
    rows = load_items(con, spec.id, sorted(needed))
    reviews = _reviews(con, spec.id, sorted({t.item_id for t in targets})) if task != "seqrec" else {}
    retriever = (Retriever(con, spec.id, words["noun"], list(sampler.items))
                 if settings.instructrec_negatives == "retriever" else
                 KnnRetriever(con, spec.id, list(sampler.items)) if settings.instructrec_negatives == "knn" else None)
    templates, held_out = task_templates(task, profile)
    size = settings.instructrec_candidates
    teacher = Teacher(con, settings) if settings.teacher_base_url else None
    drawn = []
    for t in targets:
        row = rows.get(t.item_id)
        intentions = {"I2": specific_intention(row, t.item_id),
                      "I1": vague_intention(row, t.item_id, reviews.get(t.item_id, []))} if task != "seqrec" else {}
        preference = (explicit_preference([rows.get(i) for i in t.history], t.ratings, spec.like_threshold)
                      if task != "search" else None)
        usable = [x for x in templates if _needs_met(x, preference, intentions)]
        if not usable:
            out.drop("no_item_metadata")
            continue
        key = (t.user_id, t.item_id)
        query = intentions.get("I2") or intentions.get("I1") or " ".join(
            item_document(rows.get(i), item_label((rows.get(i) or {}).get("title"), i, words["noun"]))
            for i in t.history)
        count = size * (settings.instructrec_groups if t.split != "train" else 1)
        if retriever is not None:
            by = query if isinstance(retriever, Retriever) else t.history or [t.item_id]  # knn: items, not text
            negatives = retriever.hard_negatives(by, sampler.interacted(t.user_id) | {t.item_id}, count - 1)
            if len(negatives) < count - 1:  # too few hits above zero: the rest uniformly
                extra = sampler.sample(t.user_id, key, count - 1)
                negatives = None if extra is None else [
                    *negatives, *[i for i in extra if i not in negatives]][:count - 1]
        else:
            negatives = sampler.sample(t.user_id, key, count - 1)
        if negatives is None:
            out.drop("too_few_negatives")
            continue
        drawn.append((t, usable, intentions, preference, negatives))
    catalogue = Catalogue(con, spec.id, words["noun"], sorted({i for t, *_, n in drawn for i in (*t.history, t.item_id, *n)}))
    documents: dict[tuple[str, str], str] = {}  # an item recurs in many lists: its text is built once per label

    def document(item_id: str, label: str) -> str:
        if (item_id, label) not in documents:
            documents[item_id, label] = item_document(catalogue.rows.get(item_id), label)
        return documents[item_id, label]

    rendered = []
    for t, usable, intentions, preference, negatives in drawn:
        key = (t.user_id, t.item_id)
        shown = sampler.shuffle([t.item_id, *negatives], key)
        # The true order: the target, then negatives as the retriever ranked them, else by popularity.
        ranking = [t.item_id, *(negatives if hard else sampler.by_popularity(negatives))]
        labels = catalogue.distinct_labels(shown)
        held = held_out if held_out is not None and _needs_met(held_out, preference, intentions) else None
        if held is None and held_out is not None and settings.unseen_template_test and t.split == "test":
            out.drop("held_out_template_needs_missing_text")  # e.g. an I2 template for an item with only I1
            continue
        template = choose_template(usable, held, settings, spec.id, task, t.split, (profile, t.user_id, t.item_id))
        level = template.axes[1]
        intention = intentions.get(level) if level != "I0" else None
        shown_preference = preference if template.axes[0] == "P2" else None
        generator = GENERATOR if level != "I0" or shown_preference else "data"
        if teacher is not None and (settings.teacher_max_records == 0 or len(rendered) < settings.teacher_max_records) \
                and (intention or shown_preference):
            title = (catalogue.rows.get(t.item_id) or {}).get("title")
            rewritten = {kind: teacher.complete(instructrec_messages(kind, text)).strip()
                         for kind, text in (("intention", intention), ("preference", shown_preference)) if text}
            if any(names_target(v, title, t.item_id) for v in rewritten.values()):
                out.drop("teacher_named_target")  # the grounded text stays: it never names the target
            else:
                intention = rewritten.get("intention", intention)
                shown_preference = rewritten.get("preference", shown_preference)
                generator = generator_name(teacher.model)
        full = settings.instructrec_full_ranking
        context = {
            **words, "history": [catalogue.label(i) for i in t.history],
            "preference": shown_preference, "intention": intention,
            "candidates": [labels[i] for i in shown], "k": len(shown),
            "ask": (f"Rank all {len(shown)} candidates from most to least likely, one title per line."
                    if full else "Answer with the title of the top candidate only."),
            "answer": "\n".join(labels[i] for i in ranking) if full else labels[t.item_id],
        }
        answer = {"positives": [t.item_id], **({"ranking": ranking} if full else {}),
                  "axes": template.axes_label, "intention": intention, "intention_level": level,
                  "preference": shown_preference, "generator": generator,
                  # Prompt-side text the BM25 baseline may read: the query shown and each candidate's item text.
                  "query": intention, "candidate_docs": [document(i, labels[i]) for i in shown]}
        if len(shown) > size:  # a grouped list: the prompt of one stage, with a slot per candidate
            answer["stages"] = stage_prompt(template, context, size, len(shown) // size, settings.descriptions)
        out.add(template=template, context=context, split=t.split, record_idx=t.record_idx,
                reference_generator=generator,
                user_id=t.user_id, target_item_id=t.item_id, candidate_item_ids=shown,
                candidate_texts=[labels[i] for i in shown], ranking_item_ids=ranking if full else [t.item_id],
                answer_json=json.dumps(answer), history_item_ids=t.history, target_ts=t.ts)
        rendered.append((t, intentions, shown))
    _augment(out, spec, task, profile, settings, words, catalogue, rendered,
             first_idx=max((t.record_idx for t in targets), default=-1) + 1)
    return out.table()


def stage_prompt(template: Template, context: dict[str, Any], size: int, groups: int,
                 descriptions: bool) -> dict[str, Any]:
    """InstructRec's large lists (the paper: 100 candidates, 10 groups of 10, since Flan-T5 reads
    512 tokens): the record's candidates, in prompt order, are `groups` consecutive groups of
    `size`. Evaluation asks for the best of each group, then for the best of the winners; both
    stages use this prompt: the record's own template rendered for `size` candidates, each a
    slot (STAGE_SLOT.format(j)) that evaluation fills. Stored in answer_json["stages"], so evaluation
    needs the published record only."""
    slots = [STAGE_SLOT.format(j) for j in range(size)]
    description, text_in, _ = template.render({**context, "candidates": slots, "k": size, "answer": ""})
    description = description if descriptions else ""
    for slot in slots:
        if (description + text_in).count(slot) != 1:
            raise ValueError(f"template {template.id}: a stage prompt must show each candidate once ({slot!r})")
    return {"groups": groups, "size": size, "slot": STAGE_SLOT, "instruction": description, "input": text_in}


def _augment(out: RecordBuilder, spec: DatasetSpec, task: str, profile: str, settings: RenderSettings,
             words: dict[str, str], catalogue: Catalogue, rendered: list[tuple[Target, dict, list[str]]],
             first_idx: int) -> None:
    """InstructRec's augmentations, as extra train records after the task's own (record_idx from
    `first_idx` on): `flip` (search, psearch) writes the target's intention from the item;
    `consistency` (psearch) asks whether an intention fits the user's history: Yes for the
    target's own, No for the first negative (in prompt order) whose intention differs, a seeded
    coin per record choosing which."""
    kinds = [k for k in settings.instructrec_augment
             if (k == "flip" and task in ("search", "psearch")) or (k == "consistency" and task == "psearch")]
    idx = first_idx
    for kind in kinds:
        templates = augmentation_templates(task, kind)
        for t, intentions, shown in rendered:
            if t.split != "train" or intentions.get("I2") is None:
                continue
            key = (profile, t.user_id, t.item_id, kind)
            intention, answer, label = intentions["I2"], None, None
            if kind == "consistency":
                consistent = stable_int(settings.seed, spec.id, task, "consistency", t.user_id, t.item_id) % 2 == 0
                if not consistent:
                    title = (catalogue.rows.get(t.item_id) or {}).get("title")
                    others = (specific_intention(catalogue.rows.get(i), i) for i in shown if i != t.item_id)
                    intention = next((x for x in others if x and x != intentions["I2"]
                                      and not names_target(x, title, t.item_id)), None)
                    if intention is None:
                        out.drop("no_contrasting_intention")
                        continue
                answer, label = ("Yes." if consistent else "No."), float(consistent)
            template = choose_template(templates, None, settings, spec.id, task, "train", key)
            context = {**words, "history": [catalogue.label(i) for i in t.history], "item": catalogue.label(t.item_id),
                       "intention": intention, "answer": answer}
            meta = {"augmentation": kind, "positives": [], "axes": template.axes_label, "intention": intention,
                    "intention_level": "I2", "generator": GENERATOR,
                    **({"consistent": bool(label)} if kind == "consistency" else {})}
            out.add(template=template, context=context, split="train", record_idx=idx, reference_generator=GENERATOR,
                    user_id=t.user_id, target_item_id=t.item_id, answer_json=json.dumps(meta),
                    history_item_ids=t.history, target_ts=t.ts, label=label)
            idx += 1


def render_seqrec(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, profile: str, settings: RenderSettings,
                  seq: str) -> pa.Table:
    return _render(con, spec, "seqrec", profile, settings, _sequence_targets(con, spec, "seqrec", profile, settings, seq))


def render_psearch(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, profile: str, settings: RenderSettings,
                   seq: str) -> pa.Table:
    return _render(con, spec, "psearch", profile, settings,
                   _sequence_targets(con, spec, "psearch", profile, settings, seq))


def render_search(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, profile: str, settings: RenderSettings,
                  seq: str) -> pa.Table:
    return _render(con, spec, "search", profile, settings, _search_targets(con, spec, settings, seq))
