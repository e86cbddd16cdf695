"""Published splits in, token ids out: chat prompts, the truncation policy, prompt masking, K-shot.

A record becomes one user turn (records.user_message: task description, a newline, the input, as
LLaMA-Factory joins an exported record; just the input when the description was ablated) in the
model's own chat template, and the reference answer becomes the
assistant turn ending with the template's end-of-turn token. Records are read from the published
Parquet files, so training needs no warehouse and runs anywhere the version folder is.
"""

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from itdr_pipeline.records import config_name, user_message

IGNORE_INDEX = -100  # label value the loss skips (prompt tokens when masking, padding)


class DataError(ValueError):
    pass


def load_split(version_dir: Path, task: str, profile: str, split: str) -> list[dict[str, Any]]:
    """One split of one cell as dicts, in record order."""
    cell_dir = Path(version_dir) / "data" / config_name(task, profile)
    files = sorted(cell_dir.glob(f"{split}-*.parquet"))
    if not files:
        have = sorted(p.name for p in (Path(version_dir) / "data").glob("*")) if Path(version_dir).is_dir() else []
        raise DataError(f"no {split} split for {task}-{profile} in {version_dir} (published cells: {have or 'none'})")
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    if not rows:
        raise DataError(f"{cell_dir}: the {split} split is empty")
    return sorted(rows, key=lambda r: r["record_idx"])


def sample(records: list[dict[str, Any]], k: int, seed: int) -> list[dict[str, Any]]:
    """K records drawn with `seed` (K-shot training, evaluation limits); k <= 0 or k >= len keeps all.
    Nested: the 16 records of K=16 are among the 64 of K=64 for the same seed."""
    if k <= 0 or k >= len(records):
        return list(records)
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    return [records[i] for i in sorted(order[:k])]


def mix_cells(cells: list[tuple[list[dict[str, Any]], float]], seed: int) -> list[dict[str, Any]]:
    """Several cells' train records interleaved by weight (a mixed run). The mix holds as many
    examples as the cells together; cell i supplies the share w_i / sum(w) of them (largest
    remainders settle the rounding), its records in a seeded order, cycled if the share exceeds
    them, and the whole mix is shuffled with `seed`. One cell comes back as it is."""
    if len(cells) == 1:
        return list(cells[0][0])
    total, weights = sum(len(r) for r, _ in cells), sum(w for _, w in cells)
    exact = [total * w / weights for _, w in cells]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(cells)), key=lambda i: (-(exact[i] - counts[i]), i))[:total - sum(counts)]:
        counts[i] += 1
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for (records, _), n in zip(cells, counts):
        order = list(range(len(records)))
        rng.shuffle(order)
        out += [records[order[k % len(order)]] for k in range(n)]
    rng.shuffle(out)
    return out


class PromptEncoder:
    """Chat-templated prompts cut to `max_length` under the stated truncation policy."""

    def __init__(self, tokenizer: Any, max_length: int):
        self.tokenizer, self.max_length = tokenizer, max_length
        if tokenizer.eos_token_id is None:
            raise DataError("the tokenizer has no end-of-turn (eos) token")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    def prompt_text(self, record: dict[str, Any], budget: int | None = None) -> str:
        """The templated prompt, ending with the assistant header; its input is cut from the left
        until the prompt fits `budget` tokens (default max_length)."""
        budget = self.max_length if budget is None else budget
        text = self._template(user_message(record))
        overflow = len(self._ids(text)) - budget
        if overflow <= 0:
            return text
        input_ids = self._ids(record["input"])
        keep = len(input_ids) - overflow - 2  # 2 spare for the ellipsis and re-tokenisation at the cut
        if keep <= 0:
            raise DataError(f"record {record['record_idx']} ({record['task']}): the chat template, the task "
                            f"description and the answer alone exceed max_length {self.max_length}; raise max_length")
        cut = "…" + self.tokenizer.decode(input_ids[-keep:])
        text = self._template(user_message({**record, "input": cut}))
        if len(self._ids(text)) > budget:
            raise DataError(f"record {record['record_idx']}: could not fit the prompt into {budget} tokens")
        return text

    def prompt_ids(self, record: dict[str, Any], budget: int | None = None) -> list[int]:
        return self._ids(self.prompt_text(record, budget))

    def train_example(self, record: dict[str, Any], mask_prompt: bool) -> dict[str, list[int]]:
        answer = self._ids(record["output"])[: self.max_length // 2] + [self.tokenizer.eos_token_id]
        prompt = self.prompt_ids(record, self.max_length - len(answer))
        labels = ([IGNORE_INDEX] * len(prompt) if mask_prompt else list(prompt)) + answer
        return {"input_ids": prompt + answer, "labels": labels}

    def _template(self, message: str) -> str:
        return self.tokenizer.apply_chat_template([{"role": "user", "content": message}], tokenize=False,
                                                  add_generation_prompt=True)

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


def encode_for_training(encoder: PromptEncoder, records: Sequence[dict[str, Any]],
                        mask_prompt: bool) -> list[dict[str, list[int]]]:
    return [encoder.train_example(r, mask_prompt) for r in records]
