"""Evaluation: HR@K / NDCG@K as ``evaluate`` modules (metrics/), ranking metrics with extras, pipeline evaluation."""

from .ranking import (
    DEFAULT_KS,
    MAIN_KEYS,
    METRIC_NAMES,
    catalogue_extras,
    load_metric,
    long_tail_mask,
    metrics_table,
    ranking_metrics,
    train_item_counts,
    train_sequences,
    write_metrics,
)

__all__ = [
    "catalogue_extras",
    "DEFAULT_KS",
    "MAIN_KEYS",
    "METRIC_NAMES",
    "load_metric",
    "long_tail_mask",
    "metrics_table",
    "ranking_metrics",
    "train_item_counts",
    "train_sequences",
    "write_metrics",
]
