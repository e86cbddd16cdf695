"""An optional teacher model that rewrites the grounded ir/tui references into fluent text.

Any OpenAI-compatible chat-completions endpoint works (a hosted API, vLLM, llama.cpp's server):
settings.teacher_base_url (e.g. `http://127.0.0.1:8000/v1`), teacher_model, and the API key read
from the environment variable named by teacher_api_key_env (absent: no Authorization header, as
local servers need none). The request is deterministic (temperature 0, the render seed) and the
model is told to use only the grounded facts. Answers are cached in the warehouse table
`teacher_cache` under sha256(model, base URL, messages), so a re-render is byte-identical and
calls nothing. Failures raise ItdrError naming the URL: a record never falls back silently.
"""

import hashlib
import json
import os
import time
from typing import Any

import duckdb
import requests

from itdr_pipeline.errors import ItdrError
from itdr_pipeline.tasks.base import RecordBuilder, RenderSettings

TIMEOUT_S = (10, 120)  # connect, read
RETRY_DELAYS_S = (1.0, 4.0)  # waits before the 2nd and 3rd attempt
_RETRY_STATUS = {429, 500, 502, 503, 504}
SYSTEM_PROMPT = (
    "You write reference answers for a recommendation dataset. Rewrite the facts you are given as a "
    "short, fluent answer to the task, in two to four sentences. Use only those facts and the input: "
    "invent nothing, keep every count and name exact, and do not mention that you were given facts."
)


# InstructRec: the grounded intention or preference, rewritten as a user would say it.
INSTRUCTREC_PROMPT = (
    "You rewrite facts about what a user wants into one short sentence in the user's own voice. Use only "
    "those facts: keep every category, brand and price range, add nothing, and never name a specific "
    "product, title or model."
)


def instructrec_messages(kind: str, text: str) -> list[dict[str, str]]:
    """`kind`: "intention" or "preference"."""
    ask = ("what the user is looking for now" if kind == "intention" else "the user's usual taste")
    return [{"role": "system", "content": INSTRUCTREC_PROMPT},
            {"role": "user", "content": f"Rewrite {ask}.\n\nFacts from the data:\n{text}"}]


def generator_name(model: str) -> str:
    return f"teacher:{model}"


def messages_for(description: str, text_in: str, facts: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Task:\n{description}\n\nInput:\n{text_in}\n\nFacts from the data:\n{facts}"}]


def cache_key(model: str, base_url: str, messages: list[dict[str, str]]) -> str:
    payload = json.dumps({"model": model, "base_url": base_url, "messages": messages}, sort_keys=True,
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def ensure_cache(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE TABLE IF NOT EXISTS teacher_cache (
                       key VARCHAR PRIMARY KEY, model VARCHAR NOT NULL, base_url VARCHAR NOT NULL,
                       response VARCHAR NOT NULL)""")


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> str:
    """One completion, with retries on connection errors, timeouts, 429 and 5xx."""
    problem = ""
    for attempt in range(len(RETRY_DELAYS_S) + 1):
        if attempt:
            time.sleep(RETRY_DELAYS_S[attempt - 1])
        try:
            response = requests.post(url, json=body, headers=headers, timeout=TIMEOUT_S)
        except requests.RequestException as error:
            problem = f"{type(error).__name__}: {error}"
            continue
        if response.status_code in _RETRY_STATUS:
            problem = f"HTTP {response.status_code}: {response.text[:200]}"
            continue
        if response.status_code != 200:
            raise ItdrError(f"teacher request to {url} failed: HTTP {response.status_code}: {response.text[:200]}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ItdrError(f"teacher at {url} sent no chat completion: {response.text[:200]}") from None
        if not isinstance(content, str) or not content.strip():
            raise ItdrError(f"teacher at {url} returned an empty answer")
        return content.strip()
    raise ItdrError(f"teacher request to {url} failed after {len(RETRY_DELAYS_S) + 1} attempts: {problem}")


class Teacher:
    """A cached client for one endpoint and model."""

    def __init__(self, con: duckdb.DuckDBPyConnection, settings: RenderSettings):
        if not settings.teacher_base_url or not settings.teacher_model:
            raise ItdrError("the teacher needs both teacher_base_url and teacher_model")
        self.con, self.model, self.seed = con, settings.teacher_model, settings.seed
        self.base_url = settings.teacher_base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        key = os.environ.get(settings.teacher_api_key_env)
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.calls = 0
        ensure_cache(con)

    def complete(self, messages: list[dict[str, str]]) -> str:
        key = cache_key(self.model, self.base_url, messages)
        hit = self.con.execute("SELECT response FROM teacher_cache WHERE key = ?", [key]).fetchall()
        if hit:
            return hit[0][0]
        body = {"model": self.model, "messages": messages, "temperature": 0, "seed": self.seed}
        text = _post(self.url, body, self.headers)
        self.calls += 1
        self.con.execute("INSERT OR REPLACE INTO teacher_cache VALUES (?, ?, ?, ?)",
                         [key, self.model, self.base_url, text])
        return text


def apply_teacher(con: duckdb.DuckDBPyConnection, settings: RenderSettings, builder: RecordBuilder,
                  descriptions: dict[int, str]) -> None:
    """Rewrite the outputs of a cell's records in place (the first teacher_max_records by record_idx,
    or all); `descriptions` holds each record's task description (kept even when the descriptions
    ablation leaves the instruction empty). Does nothing when no teacher is configured."""
    if not settings.teacher_base_url:
        return
    teacher = Teacher(con, settings)
    rows = sorted(builder.rows, key=lambda r: r["record_idx"])
    if settings.teacher_max_records > 0:
        rows = rows[:settings.teacher_max_records]
    for row in rows:
        messages = messages_for(descriptions[row["record_idx"]], row["input"], row["output"])
        row["output"] = teacher.complete(messages)
        row["reference_generator"] = generator_name(teacher.model)
