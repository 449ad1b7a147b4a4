"""Where the target sits in each ranked list: the one piece of logic shared by the HR and NDCG modules."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


def parse_ks(k: int | Iterable[int]) -> list[int]:
    """``k`` as given to a metric (an int or a list of ints) -> sorted distinct positive ints."""
    ks = list(k) if isinstance(k, (list, tuple, set, range, np.ndarray)) else [k]
    if not ks or any(not isinstance(x, (int, np.integer)) or isinstance(x, bool) or x < 1 for x in ks):
        raise ValueError(f"k must be a positive int or a non-empty list of positive ints, got {k!r}")
    return sorted({int(x) for x in ks})


def target_ranks(predictions: Sequence[Sequence], references: Sequence) -> np.ndarray:
    """0-based position of each reference in its ranked list (first occurrence); -1 when absent."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} ranked lists but {len(references)} targets")
    ranks = np.full(len(references), -1, dtype=np.int64)
    for u, (ranked, target) in enumerate(zip(predictions, references)):
        for pos, item in enumerate(ranked):
            if item == target:
                ranks[u] = pos
                break
    return ranks
