"""Evaluate a ranker on a leave-one-out split: every user, the whole catalogue ranked.

``evaluate_ranker`` scores anything with ``rank(histories, k=, exclude_history=)`` (the baselines'
``Recommender`` and ``GenRecPipeline``); ``evaluate_pipeline`` is the generator's evaluation, the same
scoring plus a generator's own checks and extras.

The generator's protocol (MACRec / MQL4GRec): each user's history (last 20 items) -> constrained beam
search with 20 beams per modality -> fused top-10 -> HR@1/5/10, NDCG@5/10 from ``genrec.eval.ranking_metrics``.
No user is dropped (a user whose history lacks a modality's IDs still gets that modality's task
token) and the beam width is what the caller asked for. Extras (``genrec.eval.ranking_metrics``):
coverage@10, long-tail share of the top 10, invalid-ID rate (beams mapping to no item), and the same
metrics restricted to *cold-start* targets, items never seen in the train split.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

KS = (1, 5, 10)  # MACRec reports HR@1/5/10 and NDCG@5/10
TOP_K = 10


def check_catalogue(pipe, data) -> None:
    """The tokenizer's catalogue rows must be the dataset's rows (the splits hold row indices)."""
    from ..errors import GenRecError

    ids = pipe.tokenizer.item_ids
    if len(ids) < data.n_items or [str(i) for i in ids[: data.n_items]] != [str(i) for i in data.item_ids]:
        raise GenRecError(
            f"the model's catalogue ({len(ids)} items) does not list the dataset's {data.n_items} items of "
            f"{data.path} in the same order; evaluate a model trained on this dataset"
        )


def evaluation_rows(data, split: str = "test", max_users: int | None = None):
    """The rows of ``split`` an evaluation scores: all, or the first ``max_users``."""
    from ..errors import GenRecError

    if split not in data.splits:
        raise GenRecError(f"no split {split!r} in {data.path}; it has {list(data.splits)}")
    rows = data.splits[split]
    return rows if max_users is None else rows.select(range(min(max_users, len(rows))))


def _score(ranked, targets, data, **extras) -> dict:
    """``ranking_metrics`` at ``KS`` with ``data``'s catalogue extras (``extras`` add to or override them):
    every evaluation here scores through this one call, so a baseline's figures compare with a generator's."""
    from . import catalogue_extras, ranking_metrics

    return ranking_metrics(ranked, targets, ks=KS, **{**catalogue_extras(data), **extras})


def evaluate_ranker(
    ranker,
    data,
    split: str = "test",
    k: int = TOP_K,
    exclude_history: bool = False,
    max_users: int | None = None,
    **rank_kwargs,
) -> tuple[dict, list[list[int]]]:
    """Metrics dict and ranked rows for anything with ``rank(histories, k=, exclude_history=)``: a
    ``genrec.baselines.Recommender``, or a ``GenRecPipeline`` (its ``RankResult``'s ``.rows``; ``rank_kwargs``
    such as ``modality`` and ``num_beams`` pass through). ``max_users``: the first N users of the split only.

    A ranker with an ``n_items`` (a fitted ``Recommender``) must have been fit on a catalogue of the dataset's
    size: the splits hold row indices. ``evaluate_pipeline`` adds a generator's own checks and extras.
    """
    from ..errors import GenRecError

    fitted = getattr(ranker, "n_items", None)
    if fitted is not None and fitted != data.n_items:
        raise GenRecError(
            f"the {type(ranker).__name__} scores {fitted} items but {data.path} has {data.n_items}; "
            "evaluate it on the dataset it was fit on"
        )
    rows = evaluation_rows(data, split, max_users)
    ranked = ranker.rank(rows["history"], k=k, exclude_history=exclude_history, **rank_kwargs)
    ranked = getattr(ranked, "rows", ranked)
    return _score(ranked, rows["target"], data), ranked


def evaluate_pipeline(
    pipe, data, split: str = "test", max_users: int | None = None, **overrides
) -> tuple[dict, "RankResult"]:  # noqa: F821
    """Metrics dict (flat, numeric: ready for metrics.json and the model card) and the rankings.

    Ranked with the pipeline's ``ranking_config`` and ``overrides`` of its fields (``modality``, ``num_beams``,
    ...; None keeps the saved value), always ``k`` = ``TOP_K``. ``evaluate_ranker``'s scoring plus what only
    a generator has: its catalogue checked against the dataset's, coverage and ID groups over the model's own
    catalogue (items added after training too), the invalid-ID rate, and users sharded across processes under
    ``accelerate launch`` / ``torchrun`` (``genrec.distributed.rank_sharded``): every process returns the same,
    complete result. ``max_users``: evaluate the first N users of the split only (``n_users`` says so).
    """
    from ..distributed import rank_sharded

    rows = evaluation_rows(data, split, max_users)
    check_catalogue(pipe, data)
    config = pipe.ranking_config.with_overrides(**overrides, k=TOP_K)
    logger.info(
        "ranking %d users of %s/%s (%s, %d beams)", len(rows), data.path.name, split, config.modality, config.num_beams
    )
    res = rank_sharded(pipe, rows["history"], config=config, progress=True)
    tok = pipe.tokenizer
    metrics = _score(
        res.rows,
        rows["target"],
        data,
        n_items=len(tok.item_ids),
        item_groups=tok.catalog.codes[tok.modalities[0]][:, 0],  # the model's own IDs, new items too
        invalid=sum(res.invalid.values()),
        generated=sum(res.beams.values()),
    )
    return metrics, res
