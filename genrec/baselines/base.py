"""``Recommender``: the fit/rank interface every baseline implements.

``rank`` takes ``GenRecPipeline.rank``'s arguments (histories of catalogue rows, ``k``, ``exclude_history``),
so one evaluator (``genrec.eval.evaluation.evaluate_ranker``) scores the generator and every baseline alike.
"""

from __future__ import annotations

import abc
from typing import Sequence

from ..errors import GenRecError
from ..utils import check_history_rows


class Recommender(abc.ABC):
    """Fit on a ``genrec.data.GenRecData``, then rank histories of catalogue rows (oldest first).

    A subclass writes ``_fit`` and ``_rank``; ``fit`` and ``rank`` hold the checks they all need, so a
    ``_rank`` sees a valid ``k`` and histories of in-catalogue rows only.
    """

    n_items: int | None = None  # the fitted catalogue's size; None until ``fit``

    def fit(self, data) -> Recommender:
        """Learn from ``data`` (its train split; validation where the method early-stops); returns ``self``."""
        self._fit(data)
        self.n_items = data.n_items
        return self

    def rank(self, histories: Sequence[Sequence[int]], k: int = 10, exclude_history: bool = False) -> list[list[int]]:
        """Top-``k`` catalogue rows per history, best first (shorter when the catalogue is);
        ``exclude_history`` leaves each history's own items out."""
        if k < 1:
            raise GenRecError(f"k must be >= 1, got {k}")
        if self.n_items is None:
            raise GenRecError(f"{type(self).__name__} is not fitted: call fit(data) before rank")
        histories = [list(h) for h in histories]
        check_history_rows(histories, self.n_items)
        return self._rank(histories, k, exclude_history)

    @abc.abstractmethod
    def _fit(self, data) -> None:
        """Learn whatever ``_rank`` needs from ``data``."""

    @abc.abstractmethod
    def _rank(self, histories: list[list[int]], k: int, exclude_history: bool) -> list[list[int]]:
        """``rank`` after its checks."""
