"""What the classic baselines learn from a cell's train split, and from it alone: item popularity
and labels (TrainStats), item-item cosine similarity over train records' item sets
(ItemSimilarity), and TALLRec's three logistic-regression features (lr_features).
"""

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.preprocessing import normalize


class TrainStats:
    """Item popularity and (item, label) pairs from train targets and histories."""

    def __init__(self, train: Sequence[dict]) -> None:
        self.popularity: Counter[str] = Counter()
        self.labels: dict[str, list[float]] = defaultdict(list)
        for r in train:
            history = list(r.get("history_item_ids") or [])
            targets = [] if r.get("target_item_id") is None else [r["target_item_id"]]
            self.popularity.update(history + targets)
            history_labels = list(r.get("history_labels") or [])
            if history_labels and len(history_labels) != len(history):
                raise ValueError(f"record {r.get('record_idx')}: {len(history)} history items "
                                 f"but {len(history_labels)} history labels")
            pairs = list(zip(history, history_labels))
            if targets and r.get("label") is not None:
                pairs.append((targets[0], float(r["label"])))
            for item, label in pairs:
                self.labels[item].append(float(label))
        all_labels = [x for values in self.labels.values() for x in values]
        self.global_mean = float(np.mean(all_labels)) if all_labels else math.nan

    def item_mean(self, item: str) -> float:
        """The item's mean train label, else the global mean."""
        labels = self.labels.get(item)
        return float(np.mean(labels)) if labels else self.global_mean

    def by_popularity(self, ids: Sequence[str]) -> list[int]:
        """Indices of `ids`, most popular first, ties in prompt order."""
        return sorted(range(len(ids)), key=lambda i: (-self.popularity[ids[i]], i))


class ItemSimilarity:
    """Cosine similarity between items over train records' item sets (history + target), self-similarity 0."""

    def __init__(self, train: Sequence[dict]) -> None:
        rows, cols = [], []
        self.index: dict[str, int] = {}
        for k, r in enumerate(train):
            items = set(r.get("history_item_ids") or []) | ({r["target_item_id"]} - {None})
            for item in sorted(items):
                rows.append(k)
                cols.append(self.index.setdefault(item, len(self.index)))
        occurrence = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(train), len(self.index)))
        vectors = normalize(occurrence.T.tocsr(), norm="l2", axis=1)  # one unit row per item
        self.sim = (vectors @ vectors.T).tocsr()
        self.sim.setdiag(0)  # every item co-occurs with itself, so this changes stored entries only
        self.sim.eliminate_zeros()

    def between(self, items: Sequence[str], others: Sequence[str]) -> np.ndarray:
        """len(items) x len(others) similarities; items unseen in train have 0 everywhere."""
        out = np.zeros((len(items), len(others)))
        rows = [(i, self.index[x]) for i, x in enumerate(items) if x in self.index]
        cols = [(j, self.index[y]) for j, y in enumerate(others) if y in self.index]
        if rows and cols:
            block = self.sim[[m for _, m in rows]][:, [m for _, m in cols]].toarray()
            out[np.ix_([i for i, _ in rows], [j for j, _ in cols])] = block
        return out


def lr_features(records: Sequence[dict], stats: TrainStats) -> np.ndarray:
    """Per record: history like-ratio (0.5 if none), item like-rate (likes+1)/(n+2), log1p(popularity)."""
    rows = []
    for r in records:
        history_labels = r.get("history_labels") or []
        item_labels = stats.labels.get(r["target_item_id"], [])
        rows.append((float(np.mean(history_labels)) if len(history_labels) else 0.5,
                     (sum(item_labels) + 1) / (len(item_labels) + 2),
                     math.log1p(stats.popularity[r["target_item_id"]])))
    return np.array(rows, dtype=float).reshape(len(records), 3)
