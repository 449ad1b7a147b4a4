"""Merging the per-modality candidate lists of one request into one ranking.

Each list is ``(rows, scores)``, best first, rows unique within a list. Ties of the fused score are
broken by catalogue row (ascending), so rankings are deterministic.

- ``macrec`` (MACRec's ensemble.py): an item in both lists scores the mean of its two scores + 1;
  an item in one list keeps its score. MACRec applies it to HF ``sequences_scores`` (sum of
  log-probs / ID length): given ``id_lengths``, ``fuse`` normalises summed scores so.
- ``rrf``: reciprocal-rank fusion, sum over lists of 1 / (60 + rank), rank 1-based with equal
  scores sharing a rank (collided IDs); 60 is the constant of Cormack et al., SIGIR 2009.
- ``sum``: CombSUM of probabilities, sum over lists of exp(log-prob score); absent counts 0.

Missing modalities. An item without an ID in some modality could never appear in that modality's list;
every rule would count the absence against it (MACRec's +1 goes only to items both lists found). With
``lacking[row]`` = the indices of the lists it cannot appear in, it counts as found there too, with the
mean of its own values. ``weights`` (one per list, default 1) scale each list's part: in ``macrec`` a
weighted mean plus the found lists' summed weight over the largest weight, minus 1 (equal weights: the
rule above); in ``rrf`` and ``sum`` each term. A list of weight 0 is ignored. The pipeline weighs a
list by how much of the user's history it could read (``genrec.ranking.fuse``, ``impute_missing``).

With ``GenRecPipeline.rank(rescore=True)`` every list holds every candidate that has its modality's IDs
(``genrec.generation.scoring``), so with ``lacking`` each item is found or imputed in every list of weight
above 0: ``macrec`` then ranks by the weighted mean of its scores, ``rrf`` by the weighted sum of its
reciprocal ranks.
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


def fuse(
    lists: Sequence[Ranked],
    rule: str = "macrec",
    k: int | None = None,
    lacking: Mapping[int, Sequence[int]] | None = None,
    weights: Sequence[float] | None = None,
    id_lengths: Sequence[int] | None = None,
) -> tuple[list[int], list[float]]:
    """Fused ``(rows, scores)`` of one request, best first, at most ``k`` items. ``id_lengths`` (codes per ID of
    each list's modality): ``macrec`` first divides list j's summed log-probs by ``id_lengths[j] + 1`` (the
    EOS), which makes them HF ``sequences_scores``, the scores MACRec fused."""
    if rule not in FUSION_RULES:
        raise ValueError(f"unknown fusion rule {rule!r}; choose from {FUSION_RULES}")
    if rule == "macrec" and id_lengths is not None:
        lists = [(rows, [x / (n + 1) for x in scores]) for (rows, scores), n in zip(lists, id_lengths)]
    weights = [1.0] * len(lists) if weights is None else [float(w) for w in weights]
    top = max(weights, default=1.0)
    seen: dict[int, dict[int, float]] = {}  # row -> list index -> value
    for j, (rows, scores) in enumerate(lists):
        if weights[j] > 0:
            values = _competition_ranks(scores) if rule == "rrf" else scores
            for row, v in zip(rows, values):
                seen.setdefault(int(row), {})[j] = float(v)
    if lacking:
        for row, found in seen.items():
            own = sum(found.values()) / len(found)
            for j in lacking.get(row, ()):
                if weights[j] > 0:
                    found.setdefault(j, own)
    fused = {}
    for row, found in seen.items():
        if rule == "macrec":
            total = sum(weights[j] for j in found)
            fused[row] = sum(weights[j] * v for j, v in found.items()) / total + total / top - 1
        elif rule == "rrf":
            fused[row] = sum(weights[j] / (RRF_K + r) for j, r in found.items())
        else:
            fused[row] = sum(weights[j] * math.exp(v) for j, v in found.items())
    order = sorted(fused, key=lambda r: (-fused[r], r))[:k]
    return order, [fused[r] for r in order]
