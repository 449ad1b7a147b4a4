"""Evaluate a ``GenRecPipeline`` on a leave-one-out split: every user, the whole catalogue ranked.

Protocol (MACRec / MQL4GRec): each user's history (last 20 items) -> constrained beam search with 20
beams per modality -> fused top-10 -> HR@1/5/10, NDCG@5/10 from ``genrec.eval.ranking_metrics``.
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
    """The rows of ``split`` that ``evaluate_pipeline`` scores: all, or the first ``max_users``."""
    from ..errors import GenRecError

    if split not in data.splits:
        raise GenRecError(f"no split {split!r} in {data.path}; it has {list(data.splits)}")
    rows = data.splits[split]
    return rows if max_users is None else rows.select(range(min(max_users, len(rows))))


def evaluate_pipeline(pipe, data, split: str = "test", modality: str = "fused", fusion: str = "macrec",
                      num_beams: int = 20, exclude_history: bool = False, batch_size: int = 64,
                      max_users: int | None = None) -> tuple[dict, "RankResult"]:  # noqa: F821
    """Metrics dict (flat, numeric: ready for metrics.json and the model card) and the rankings.

    ``max_users``: evaluate the first N users of the split only (for quick looks; ``n_users`` says so).
    Under ``accelerate launch`` / ``torchrun`` the users are sharded across the processes and gathered
    (``genrec.distributed.rank_sharded``): every process returns the same, complete result.
    """
    from ..distributed import rank_sharded
    from . import catalogue_extras, ranking_metrics

    rows = evaluation_rows(data, split, max_users)
    check_catalogue(pipe, data)
    histories, targets = rows["history"], rows["target"]
    logger.info("ranking %d users of %s/%s (%s, %d beams)", len(targets), data.path.name, split, modality, num_beams)
    res = rank_sharded(pipe, histories, modality=modality, k=TOP_K, num_beams=num_beams, fusion=fusion,
                       exclude_history=exclude_history, batch_size=batch_size, progress=True)
    # coverage over what was ranked: the model's catalogue may extend the dataset's (items added later)
    codes = pipe.tokenizer.catalog.codes
    extras = {**catalogue_extras(data), "n_items": len(pipe.tokenizer.item_ids),
              "item_groups": codes[pipe.tokenizer.modalities[0]][:, 0]}  # the model's own IDs, new items too
    metrics = ranking_metrics(res.rows, targets, ks=KS, **extras, invalid=sum(res.invalid.values()),
                              generated=sum(res.beams.values()))
    return metrics, res
