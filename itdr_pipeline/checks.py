"""Leakage and soundness checks over a dataset's rendered records (the render assets' blocking
`leakage` check): one Finding per check and cell; clean profiles block on failure, tallrec
(a published design reproduced as it is) only reports."""

import json
from dataclasses import dataclass

import duckdb

from itdr_pipeline.tasks.base import ENTITY_TASKS, INSTRUCTREC_TASKS, STAGE_SLOT, TEMPORAL_PROFILES
from itdr_pipeline.taskspec import task_spec


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str  # ERROR blocks publishing, WARN is reported
    passed: bool
    detail: str


def check_records(con: duckdb.DuckDBPyConnection, dataset: str, tasks: list[str] | None = None) -> list[Finding]:
    """Leakage and soundness checks over the rendered records of one dataset. Clean profiles
    (every one but tallrec, which reproduces a published design as it is) block on failure."""
    findings = []
    cells = con.execute("SELECT DISTINCT task, profile FROM instruction_records WHERE dataset = ? ORDER BY ALL",
                        [dataset]).fetchall()
    for task, profile in cells:
        if tasks is not None and task not in tasks:
            continue
        severity = "WARN" if profile == "tallrec" else "ERROR"
        where = "dataset = ? AND task = ? AND profile = ?"
        args = [dataset, task, profile]
        name = f"{task}/{profile}"
        dupes = con.execute(
            f"""SELECT count(*) FROM (
                   SELECT user_id, target_item_id, history_item_ids, source_history_item_ids
                   FROM instruction_records WHERE {where} GROUP BY ALL HAVING count(DISTINCT split) > 1)""",
            args).fetchall()[0][0]
        findings.append(Finding(f"{name}: no_cross_split_duplicates", severity, dupes == 0,
                                f"{dupes} record(s) appear in more than one split"))
        if task in ENTITY_TASKS or task == "search":  # search splits its queries (items) 8:1:1
            key = "user_id" if task in ("uap", "ir") else "target_item_id"
            shared = con.execute(
                f"""SELECT count(*) FROM (SELECT {key} FROM instruction_records WHERE {where}
                    GROUP BY {key} HAVING count(DISTINCT split) > 1)""", args).fetchall()[0][0]
            findings.append(Finding(f"{name}: entity_in_one_split", severity, shared == 0,
                                    f"{shared} {key.split('_')[0]}(s) in more than one split"))
            if task in ENTITY_TASKS:
                continue
        elif profile in TEMPORAL_PROFILES or profile == "tallrec":
            late = con.execute(
                f"""SELECT count(DISTINCT user_id) FROM (
                       SELECT user_id, max(target_ts) FILTER (split = 'train') AS last_train,
                              min(target_ts) FILTER (split = 'test') AS first_test
                       FROM instruction_records WHERE {where} GROUP BY user_id)
                   WHERE last_train > first_test""", args).fetchall()[0][0]
            findings.append(Finding(f"{name}: test_after_train", severity, late == 0,
                                    f"{late} user(s) have a train target later than one of their test targets"))
            reused = con.execute(
                f"""SELECT count(*) FROM instruction_records t JOIN instruction_records r
                    ON r.dataset = t.dataset AND r.task = t.task AND r.profile = t.profile AND r.split = 'train'
                    AND r.user_id = t.user_id AND r.target_item_id = t.target_item_id
                    WHERE t.dataset = ? AND t.task = ? AND t.profile = ? AND t.split = 'test'""", args).fetchall()[0][0]
            findings.append(Finding(f"{name}: test_target_not_a_train_target", severity, reused == 0,
                                    f"{reused} test target(s) are also a train target of the same user"))
        if profile == "random_user" and task != "search":
            shared = con.execute(
                f"""SELECT count(*) FROM (SELECT user_id FROM instruction_records WHERE {where}
                    GROUP BY user_id HAVING count(DISTINCT split) > 1)""", args).fetchall()[0][0]
            findings.append(Finding(f"{name}: user_in_one_split", severity, shared == 0,
                                    f"{shared} user(s) in more than one split"))
        if task_spec(task).candidates:
            # nir: the ranking is the target; InstructRec: the target, or (full ranking) every
            # candidate with the target first; tkr, cdr: every candidate.
            bad = con.execute(
                f"""SELECT count(*) FROM instruction_records WHERE {where}
                    AND json_extract_string(answer_json, '$.augmentation') IS NULL AND NOT (
                        len(list_distinct(candidate_item_ids)) = len(candidate_item_ids)
                        AND len(list_filter(candidate_item_ids, lambda c: c = target_item_id)) = 1
                        AND CASE WHEN task = 'nir' THEN ranking_item_ids = [target_item_id]
                                 WHEN task IN ('seqrec', 'search', 'psearch') THEN ranking_item_ids[1] = target_item_id
                                      AND (len(ranking_item_ids) = 1
                                           OR list_sort(ranking_item_ids) = list_sort(candidate_item_ids))
                                 ELSE list_sort(ranking_item_ids) = list_sort(candidate_item_ids) END
                        AND len(list_filter(candidate_item_ids, lambda c: list_contains(history_item_ids, c))) = 0)""",
                args).fetchall()[0][0]
            findings.append(Finding(f"{name}: candidates_sound", severity, bad == 0,
                                    f"{bad} record(s) with duplicate candidates, a target not present exactly once, "
                                    "a ranking that is not a permutation of the candidates, or a history item "
                                    "among the candidates"))
            # Negatives = candidates that are not positives; candidates are items of this dataset (for
            # cdr, the target domain), so the user's interactions here are what they must avoid.
            touched = con.execute(
                f"""WITH neg AS (
                        SELECT r.dataset, r.user_id, unnest(list_filter(r.candidate_item_ids, lambda c: NOT list_contains(
                            CAST(json_extract_string(r.answer_json, '$.positives[*]') AS VARCHAR[]), c))) AS item_id
                        FROM instruction_records r WHERE {where})
                    SELECT count(*) FROM neg SEMI JOIN filtered_interactions i
                    ON i.dataset = neg.dataset AND i.user_id = neg.user_id AND i.item_id = neg.item_id""",
                args).fetchall()[0][0]
            findings.append(Finding(f"{name}: negatives_never_interacted", severity, touched == 0,
                                    f"{touched} negative candidate(s) the user interacted with"))
        if task in INSTRUCTREC_TASKS:
            leaks = con.execute(
                f"""SELECT count(*) FROM (
                        SELECT lower(json_extract_string(r.answer_json, '$.intention')) AS intention,
                               lower(r.target_item_id) AS id, lower(trim(i.title)) AS title
                        FROM instruction_records r LEFT JOIN items i
                        ON i.dataset = r.dataset AND i.item_id = r.target_item_id 
                        WHERE r.dataset = ? AND r.task = ? AND r.profile = ?)
                    WHERE intention IS NOT NULL AND (contains(intention, id) OR (title <> '' AND contains(intention, title)))""",
                args).fetchall()[0][0]
            findings.append(Finding(f"{name}: intention_free_of_target", "ERROR", leaks == 0,
                                    f"{leaks} record(s) whose intention names the target's title or id"))
            stray = con.execute(
                f"""SELECT count(*) FROM instruction_records WHERE {where} AND split <> 'train'
                    AND json_extract_string(answer_json, '$.augmentation') IS NOT NULL""", args).fetchall()[0][0]
            findings.append(Finding(f"{name}: augmentations_in_train_only", severity, stray == 0,
                                    f"{stray} augmentation record(s) outside the train split"))
            # Grouped lists (instructrec_groups): valid and test only, groups x size candidates, and a
            # stage prompt that shows each of `size` slots once (filled at evaluation).
            groups = con.execute(
                f"""SELECT count(*) FILTER (split = 'train'), count(*) FILTER (
                        len(candidate_item_ids) <> g * n OR n < 2 OR g < 2 OR
                        len(string_split(concat(instruction_s, input_s), ?)) <> n + 1)
                    FROM (SELECT split, candidate_item_ids,
                                 CAST(json_extract(answer_json, '$.stages.groups') AS INTEGER) AS g,
                                 CAST(json_extract(answer_json, '$.stages.size') AS INTEGER) AS n,
                                 json_extract_string(answer_json, '$.stages.instruction') AS instruction_s,
                                 json_extract_string(answer_json, '$.stages.input') AS input_s
                          FROM instruction_records WHERE {where} AND json_exists(answer_json, '$.stages'))""",
                [STAGE_SLOT.split("{}")[0], *args]).fetchall()[0]
            findings.append(Finding(f"{name}: groups_sound", severity, groups == (0, 0),
                                    f"{groups[0]} grouped train record(s), {groups[1]} grouped record(s) whose "
                                    "candidates are not groups x size or whose stage prompt lacks a slot"))
    return findings
