"""Hard-negative retrievers for InstructRec's candidate lists: BM25 over item text (bm25s) for a
query, item-kNN over co-interacting users for a history. Both rank the sampler's universe and
break ties by item id order, so the same tables give the same lists.
"""

import logging
from collections.abc import Sequence

import bm25s
import duckdb
import numpy as np
import pyarrow as pa
from scipy import sparse
from sklearn.preprocessing import normalize

from itdr_pipeline.tasks.base import _POSITIVE, item_label, load_items
from itdr_pipeline.tasks.intentions import item_document

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs each index build at INFO


class Retriever:
    """BM25 (bm25s, Lucene scoring) over every item of the sampler's universe; hard negatives are
    its top hits for a query that the user never interacted with (ties: item id order)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, dataset: str, noun: str, items: Sequence[str]):
        self.items = list(items)
        rows = load_items(con, dataset, self.items)
        docs = [item_document(rows.get(i), item_label((rows.get(i) or {}).get("title"), i, noun)) for i in self.items]
        self.model = bm25s.BM25()
        self.model.index(bm25s.tokenize(docs, stopwords="en", show_progress=False), show_progress=False)

    def hard_negatives(self, query: str, exclude: set[str], k: int) -> list[str]:
        tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
        scores = self.model.get_scores(tokens) if tokens else np.zeros(len(self.items))
        return _top(self.items, np.asarray(scores), exclude, k)


class KnnRetriever:
    """Item-kNN over the universe: cosine similarity of items' user sets (positive interactions);
    a query is a set of items and an item's score the sum of its similarities to them."""

    def __init__(self, con: duckdb.DuckDBPyConnection, dataset: str, items: Sequence[str]):
        self.items = list(items)
        index = {item: i for i, item in enumerate(self.items)}
        wanted = pa.table({"item_id": self.items})
        pairs = con.sql(f"""SELECT DISTINCT i.item_id, i.user_id FROM filtered_interactions i
                            JOIN wanted w USING (item_id) WHERE i.dataset = ? AND {_POSITIVE}
                            ORDER BY ALL""", params=[dataset]).fetchall()
        users: dict[str, int] = {}
        rows = [index[item] for item, _ in pairs]
        cols = [users.setdefault(user, len(users)) for _, user in pairs]
        matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(self.items), max(len(users), 1)))
        self.vectors = normalize(matrix, norm="l2", axis=1)  # one unit row per item
        self.index = index

    def hard_negatives(self, query_items: Sequence[str], exclude: set[str], k: int) -> list[str]:
        rows = [self.index[i] for i in query_items if i in self.index]
        if not rows:
            return []
        profile = self.vectors[rows].sum(axis=0)  # 1 x users
        scores = np.asarray(self.vectors @ np.asarray(profile).ravel()).ravel()
        return _top(self.items, scores, exclude, k)


def _top(items: list[str], scores: np.ndarray, exclude: set[str], k: int) -> list[str]:
    """Up to k best-scoring items above zero, not in exclude; ties by item id order."""
    order = np.lexsort((np.arange(len(items)), -scores))
    return [items[int(i)] for i in order if scores[int(i)] > 0 and items[int(i)] not in exclude][:k]
