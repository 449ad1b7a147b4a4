"""Most-popular baseline: every user gets the catalogue ordered by training interactions."""

from __future__ import annotations

import numpy as np

from ..eval.ranking import train_item_counts
from .base import Recommender


class PopularityRecommender(Recommender):
    """Most training interactions first (ties: lower row), the same list for every history.

    With ``exclude_history`` a history's items are dropped and the list is filled with the next most
    popular ones, so it still holds ``k`` items while the catalogue has them.
    """

    order: list[int]

    def _fit(self, data) -> None:
        self.order = np.argsort(-train_item_counts(data), kind="stable").tolist()

    def _rank(self, histories: list[list[int]], k: int, exclude_history: bool) -> list[list[int]]:
        if not exclude_history:
            return [self.order[:k] for _ in histories]
        ranked = []
        for hist in histories:
            seen = set(hist)  # the first k + len(history) popular items always hold k unseen ones
            ranked.append([i for i in self.order[: k + len(seen)] if i not in seen][:k])
        return ranked
