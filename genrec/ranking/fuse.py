"""The final lists: each modality's list (rescored where it was), the history left out when asked, fused by
``genrec.generation.fusion`` with weights for what each list could read, then the cold-start slots."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import GenRecError
from ..generation import fuse
from .cold_start import cold_start
from .config import RankingConfig
from .decode import coverage
from .result import RankResult


def unzip(pairs: list[list[tuple[int, float]]]) -> tuple[list[list[int]], list[list[float]]]:
    """Per-user (row, score) pairs -> (rows per user, scores per user)."""
    return [[r for r, _ in user] for user in pairs], [[x for _, x in user] for user in pairs]


def drop_rows(lists: dict, drop: list[set]) -> dict:
    """Per-modality (rows, scores) lists without each user's ``drop`` rows."""
    return {
        m: unzip([[(r, x) for r, x in zip(rows[u], scores[u]) if r not in drop[u]] for u in range(len(rows))])
        for m, (rows, scores) in lists.items()
    }


def missing_ids(pipe, per_mod: dict) -> dict[int, list[int]]:
    """Rows lacking IDs in some fused modality (row -> the indices of those modalities' lists); an empty
    dict when every item has them all."""
    lacking: dict[int, list[int]] = {}
    for j, m in enumerate(per_mod):
        for r in np.flatnonzero(~pipe.tokenizer.catalog.has_ids(m)).tolist():
            lacking.setdefault(r, []).append(j)
    return lacking


def recombine(pipe, res: RankResult, histories: Sequence[Sequence[int]], config: RankingConfig) -> RankResult:
    """The final lists of ``res`` made from its per-modality lists with ``config``'s settings, without decoding
    again: the ``rescored`` lists where ``res`` has them, else the beams' lists. ``exclude_history`` drops each
    user's history items from every modality's list first.

    ``modality_weights`` (modality -> weight >= 0, default 1 each): each modality's part in the fusion; 0 leaves
    a list out. ``impute_missing``: an item without IDs in a modality (a row of -1: no image, say) is fused as if
    that modality's list had found it too, with its own score, and each list is weighted by the share of the
    user's history items with IDs in the modality it read, to the power ``coverage_power`` (inf: a list only
    counts for a user whose whole history has its IDs; 0: imputation alone), times ``cross_modal_weight`` for a
    list that read the other modality's IDs (``cross_modal_history``). Without missing IDs this is the plain
    rule; False keeps the plain rule always."""
    per_mod, rescored = res.per_modality, res.rescored
    if config.exclude_history:
        seen = [set(h) for h in histories]
        per_mod, rescored = (drop_rows(lists, seen) for lists in (per_mod, rescored))
    unknown = set(config.modality_weights) - set(pipe.tokenizer.modalities)
    weights = [config.modality_weights.get(m, 1.0) for m in per_mod]
    if unknown or not any(weights):
        raise GenRecError(
            f"modality_weights {config.modality_weights}: weights for modalities of "
            f"{pipe.tokenizer.modalities}, at least one of {list(per_mod)} above 0"
        )
    rows, scores = _combine(
        pipe, {m: rescored.get(m, lists) for m, lists in per_mod.items()}, config, histories, weights, res.read
    )
    added = cold_start(pipe, per_mod, rows, scores, histories, config)
    return RankResult(
        rows, scores, per_mod, res.invalid, res.beams, added, res.read, rescored, res.popularity_correction
    )


def _list_factors(pipe, per_mod: dict, histories, config: RankingConfig, read: dict[str, list[str]]):
    """Per user and list: the coverage factor (the share of the history the list read, to ``coverage_power``,
    times the cross-modal weight) and the cross-modal weight alone (used when no list covers the history)."""
    cover = {m: coverage(pipe, histories, m) for m in pipe.tokenizer.modalities}
    factor = [[1.0] * len(per_mod) for _ in histories]
    crossed = [[1.0] * len(per_mod) for _ in histories]
    for j, m in enumerate(per_mod):
        for u, source in enumerate(read.get(m) or [m] * len(histories)):
            crossed[u][j] = config.cross_modal_weight if source != m else 1.0
            factor[u][j] = cover[source][u] ** config.coverage_power * crossed[u][j]
    return factor, crossed


def _combine(
    pipe, per_mod: dict, config: RankingConfig, histories, base: list[float], read: dict[str, list[str]]
) -> tuple[list, list]:
    """Final top-``k`` per user: the one modality's list, or the modalities' lists fused (``base``: each
    list's weight; ``read``: the modality each list read where not its own)."""
    k = config.k
    rows, scores = [], []
    lacking = missing_ids(pipe, per_mod) if config.impute_missing and len(per_mod) > 1 else None
    if lacking:  # a list is as good as the history it could read
        factor, crossed = _list_factors(pipe, per_mod, histories, config, read)
    lengths = [pipe.tokenizer.num_levels(m) for m in per_mod]
    for u in range(len(next(iter(per_mod.values()))[0])):
        if len(per_mod) == 1:
            ((r, s),) = per_mod.values()
            rows.append(r[u][:k])
            scores.append(s[u][:k])
            continue
        weights = base
        if lacking:
            for fs in (factor[u], crossed[u]):  # no list covers the history: coverage left out
                scaled = [w * f for w, f in zip(base, fs)]
                if any(scaled):
                    weights = scaled
                    break
        r, s = fuse([(r[u], s[u]) for r, s in per_mod.values()], config.fusion, k, lacking, weights, lengths)
        rows.append(r)
        scores.append(s)
    return rows, scores
