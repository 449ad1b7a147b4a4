"""Most-popular baseline: every user gets the catalogue ordered by training interactions."""

from __future__ import annotations

import numpy as np

from ..eval.ranking import train_item_counts
from ..errors import GenRecError


def popularity_rank(data, split: str = "test", k: int = 10, exclude_history: bool = False) -> list[list[int]]:
    """Top-``k`` catalogue rows per user of ``split``, most training interactions first (ties: lower row).

    ``exclude_history`` drops the items already in the user's history (the loader's history, at most
    ``data.max_history`` items), so the list is filled with the next most popular ones.
    """
    if split not in data.splits:
        raise GenRecError(f"no split {split!r} in {data.path}; it has {list(data.splits)}")
    if k < 1:
        raise GenRecError(f"k must be >= 1, got {k}")
    order = np.argsort(-train_item_counts(data), kind="stable").tolist()
    histories = data.splits[split]["history"]
    if not exclude_history:
        return [order[:k] for _ in histories]
    ranked = []
    for hist in histories:
        seen = set(hist)  # the first k + len(history) popular items always hold k unseen ones
        ranked.append([i for i in order[: k + len(seen)] if i not in seen][:k])
    return ranked
