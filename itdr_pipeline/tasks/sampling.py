"""Negative sampling for candidate lists, seeded per record."""

from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa

from itdr_pipeline.tasks.settings import _POSITIVE
from itdr_pipeline.tasks.splits import stable_int

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
