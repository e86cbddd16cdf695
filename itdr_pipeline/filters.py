"""Interaction filters as configuration: time window, rating threshold, iterative k-core, minimum
history. They turn a dataset's `interactions` into `filtered_interactions`, which every task
renders from and the RecBole export writes, so LLM and classic recommenders see the same data.

Order (RecBole's): time window -> minimum rating -> iterative k-core (users and items, repeated
until no row is removed) -> minimum history per user. Each step reports how many interactions it
removed as `dropped_<reason>`. The default removes nothing, so published designs (TALLRec) that
use the raw data stay exact.
"""

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import duckdb

from itdr_pipeline.errors import ItdrError
from itdr_pipeline.hashing import canonical_json
from itdr_pipeline.transactions import rollback

MAX_K_CORE_ROUNDS = 1000


@dataclass(frozen=True)
class FilterConfig:
    since: str | None = None  # keep interactions at or after this ISO date/time (UTC)
    until: str | None = None  # keep interactions before this ISO date/time (UTC)
    min_rating: float | None = None  # keep explicit ratings >= this (rows without a rating are kept)
    user_core: int = 0  # iterative k-core: every kept user has >= this many interactions
    item_core: int = 0  # ... and every kept item >= this many
    min_history: int = 0  # finally drop users with fewer interactions than this

    def __post_init__(self) -> None:
        for name in ("user_core", "item_core", "min_history"):
            if getattr(self, name) < 0:
                raise ItdrError(f"filter {name} must be >= 0, got {getattr(self, name)}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                try:
                    datetime.fromisoformat(value)
                except ValueError:
                    raise ItdrError(f"filter {name}={value!r} is not an ISO date (e.g. 2015-01-01)") from None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_identity(self) -> bool:
        return self == FilterConfig()


@dataclass(frozen=True)
class FilterReport:
    kept: int
    dropped: dict[str, int]  # dropped_<reason> -> interactions removed by that step
    k_core_rounds: int


def _count(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT count(*) FROM f_work").fetchone()[0]


def _step(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> int:
    before = _count(con)
    con.execute(f"DELETE FROM f_work WHERE NOT ({where})", params)
    return before - _count(con)


def _k_core(con: duckdb.DuckDBPyConnection, user_core: int, item_core: int) -> tuple[int, int]:
    removed, rounds = 0, 0
    while rounds < MAX_K_CORE_ROUNDS:
        rounds += 1
        n = _step(con, """user_id NOT IN (SELECT user_id FROM f_work GROUP BY user_id HAVING count(*) < $u)
                          AND item_id NOT IN (SELECT item_id FROM f_work GROUP BY item_id HAVING count(*) < $i)""",
                  {"u": user_core, "i": item_core})
        removed += n
        if n == 0:
            return removed, rounds
    raise ItdrError(f"k-core did not converge in {MAX_K_CORE_ROUNDS} rounds")


def apply_filters(con: duckdb.DuckDBPyConnection, dataset: str, cfg: FilterConfig) -> FilterReport:
    """Replace the dataset's partition of `filtered_interactions`; record the config in `filter_runs`."""
    con.execute("CREATE OR REPLACE TEMP TABLE f_work AS SELECT * FROM interactions WHERE dataset = ?", [dataset])
    dropped: dict[str, int] = {}
    if cfg.since is not None or cfg.until is not None:
        dropped["dropped_time_window"] = _step(
            con, "ts IS NOT NULL AND ts >= coalesce($since::TIMESTAMP, ts) AND ts < coalesce($until::TIMESTAMP, ts + INTERVAL 1 SECOND)",
            {"since": cfg.since, "until": cfg.until})
    if cfg.min_rating is not None:
        dropped["dropped_min_rating"] = _step(con, "rating IS NULL OR rating >= ?", [cfg.min_rating])
    rounds = 0
    if cfg.user_core > 1 or cfg.item_core > 1:
        dropped["dropped_k_core"], rounds = _k_core(con, cfg.user_core, cfg.item_core)
    if cfg.min_history > 1:
        dropped["dropped_min_history"] = _step(
            con, "user_id NOT IN (SELECT user_id FROM f_work GROUP BY user_id HAVING count(*) < ?)", [cfg.min_history])
    kept = _count(con)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM filtered_interactions WHERE dataset = ?", [dataset])
        con.execute("INSERT INTO filtered_interactions BY NAME SELECT * FROM f_work ORDER BY src_row")
        con.execute("DELETE FROM filter_runs WHERE dataset = ?", [dataset])
        con.execute("INSERT INTO filter_runs VALUES (?, ?, ?, ?)",
                    [dataset, canonical_json(cfg.as_dict()), kept, canonical_json(dropped)])
        # Records rendered from the previous filtered table are stale now: every task renders anew.
        con.execute("DELETE FROM instruction_records WHERE dataset = ?", [dataset])
        con.execute("DELETE FROM render_runs WHERE dataset = ?", [dataset])
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    con.execute("DROP TABLE f_work")
    return FilterReport(kept, dropped, rounds)
