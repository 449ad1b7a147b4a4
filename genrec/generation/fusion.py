"""Merging the per-modality candidate lists of one request into one ranking.

Each list is ``(rows, scores)``, best first, rows unique within a list. Ties of the fused score are
broken by catalogue row (ascending), so rankings are deterministic.

- ``macrec`` (MACRec's ensemble.py): an item in both lists scores the mean of its two scores + 1;
  an item in one list keeps its score. MACRec applies it to HF ``sequences_scores`` (sum of
  log-probs / ID length), so the pipeline hands it length-normalised scores.
- ``rrf``: reciprocal-rank fusion, sum over lists of 1 / (60 + rank), rank 1-based with equal
  scores sharing a rank (collided IDs); 60 is the constant of Cormack et al., SIGIR 2009.
- ``sum``: CombSUM of probabilities, sum over lists of exp(log-prob score); absent counts 0.

An item without an ID in some modality (``lacking``) could never appear in that modality's list; every
rule would count the absence against it (MACRec's +1 goes only to items both lists found). With
``lacking[row] = n`` the item counts as found in ``n`` more lists with the mean of its own values: it is
judged by the modalities it has.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

RRF_K = 60
FUSION_RULES = ("macrec", "rrf", "sum")

Ranked = tuple[Sequence[int], Sequence[float]]


def _competition_ranks(scores: Sequence[float]) -> list[int]:
    ranks, prev = [], None
    for pos, s in enumerate(scores):
        ranks.append(ranks[-1] if prev is not None and s == prev else pos + 1)
        prev = s
    return ranks


def fuse(lists: Sequence[Ranked], rule: str = "macrec", k: int | None = None,
         lacking: Mapping[int, int] | None = None) -> tuple[list[int], list[float]]:
    """Fused ``(rows, scores)`` of one request, best first, at most ``k`` items; ``lacking``: row -> the
    number of fused modalities it has no ID in."""
    if rule not in FUSION_RULES:
        raise ValueError(f"unknown fusion rule {rule!r}; choose from {FUSION_RULES}")
    seen: dict[int, list[float]] = {}
    for rows, scores in lists:
        values = _competition_ranks(scores) if rule == "rrf" else scores
        for row, v in zip(rows, values):
            seen.setdefault(int(row), []).append(float(v))
    if lacking:
        for row, vals in seen.items():
            vals += [sum(vals) / len(vals)] * lacking.get(row, 0)
    fused = {}
    for row, vals in seen.items():
        if rule == "macrec":
            fused[row] = sum(vals) / len(vals) + (len(vals) - 1)
        elif rule == "rrf":
            fused[row] = sum(1.0 / (RRF_K + r) for r in vals)
        else:
            fused[row] = sum(math.exp(v) for v in vals)
    order = sorted(fused, key=lambda r: (-fused[r], r))[:k]
    return order, [fused[r] for r in order]
