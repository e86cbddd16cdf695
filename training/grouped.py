"""InstructRec's large candidate lists, ranked in two stages, as the paper does (100 candidates in 10
groups of 10: its Flan-T5 reads 512 tokens).

A grouped record (rendered with `instructrec_groups` > 1) lists its candidates, in prompt order, as
consecutive groups of `size`; answer_json["stages"] holds one stage prompt with a slot per candidate.
Stage 1 asks for the best of each group; stage 2 asks for the best of the group winners, in group
order. The final ranking is the stage-2 order of the winners, then the rest by their rank within
their group (ties: the rank of their group's winner). HR@k and NDCG@k for k up to the number of
groups read the winners only.

Pointwise rankers (the baselines) go through the same two stages with one score per candidate,
so every row of a grouped cell is ranked the same way.
"""

import json
import re
from collections.abc import Sequence
from typing import Any


def stages(record: dict[str, Any]) -> dict[str, Any] | None:
    """The record's stage prompt, or None for a plain (one-stage) record."""
    try:
        return json.loads(record["answer_json"]).get("stages")
    except (KeyError, TypeError, json.JSONDecodeError):
        return None


def groups(record: dict[str, Any]) -> list[list[int]]:
    """Candidate indices of each group, in prompt order."""
    st = stages(record)
    if st is None:
        raise ValueError(f"record {record.get('record_idx')} is not grouped")
    size, count = int(st["size"]), int(st["groups"])
    if len(record["candidate_texts"]) != size * count:
        raise ValueError(f"record {record.get('record_idx')}: {len(record['candidate_texts'])} candidates are not "
                         f"{count} groups of {size}")
    return [list(range(g * size, (g + 1) * size)) for g in range(count)]


def stage_record(record: dict[str, Any], shown: Sequence[int]) -> dict[str, Any]:
    """The record as one stage shows it: its stage prompt with these candidates in the slots."""
    st = stages(record)
    if st is None or len(shown) != int(st["size"]):
        raise ValueError(f"record {record.get('record_idx')}: a stage shows {st and st['size']} candidates, "
                         f"got {len(shown)}")
    before, after = str(st["slot"]).split("{}")
    pattern = re.compile(re.escape(before) + r"(\d+)" + re.escape(after))
    texts = [record["candidate_texts"][i] for i in shown]

    def fill(text: str) -> str:  # one pass, so a title can never be read as a slot
        return pattern.sub(lambda m: texts[int(m.group(1))], text)

    return {**record, "instruction": fill(st["instruction"]), "input": fill(st["input"]),
            "candidate_texts": texts, "candidate_item_ids": [record["candidate_item_ids"][i] for i in shown]}


def combine(group_orders: Sequence[Sequence[int]], winner_order: Sequence[int]) -> list[int]:
    """The full ranking from each group's order (candidate indices, best first) and the stage-2
    order of the winners (indices into the groups)."""
    rank_of_group = {g: r for r, g in enumerate(winner_order)}
    out = [group_orders[g][0] for g in winner_order]
    rest = sorted(((pos, rank_of_group[g], c) for g, order in enumerate(group_orders) for pos, c in enumerate(order)
                   if pos > 0))
    return out + [c for *_, c in rest]


def two_stage(record: dict[str, Any], order: Sequence[int]) -> list[int]:
    """A pointwise ranker's order (every candidate index, best first) through the two stages: each
    group keeps its order, and the winners meet in the order the ranker gives them."""
    position = {c: p for p, c in enumerate(order)}
    if len(position) != len(record["candidate_texts"]):
        raise ValueError(f"record {record.get('record_idx')}: a ranking must name every candidate once")
    group_orders = [sorted(g, key=position.__getitem__) for g in groups(record)]
    winner_order = sorted(range(len(group_orders)), key=lambda g: position[group_orders[g][0]])
    return combine(group_orders, winner_order)
