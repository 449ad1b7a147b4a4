"""Ranking metrics for leave-one-out recommendation, computed by the ``evaluate`` modules in metrics/.

``ranking_metrics`` is the one entry point the evaluation CLI, the baselines and the benchmarks use, so
every number in this project comes from the same two metric scripts (``hit_rate``, ``ndcg``).
"""

from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..errors import GenRecError

METRICS_DIR = Path(__file__).resolve().parent / "metrics"
METRIC_NAMES = ("hit_rate", "ndcg", "beyond_accuracy")
DEFAULT_KS = (1, 5, 10)  # MACRec / MQL4GRec report HR@1/5/10 and NDCG@5/10
TOP_K = 10  # cut-off of the extras (coverage, long tail), as the headline HR/NDCG@10
HEAD_SHARE = 0.2  # long tail = items outside the most popular 20% (the usual 80/20 Pareto split; our choice)
MAIN_KEYS = ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10")


def load_metric(name: str, **kwargs):
    """Load a genrec metric (``hit_rate``, ``ndcg``, ``beyond_accuracy``) with ``evaluate.load`` from the
    installed package.

    The path is a local script, so ``evaluate`` never contacts the Hub (it works with HF_HUB_OFFLINE=1).
    ``keep_in_memory`` defaults to True: the inputs are small and need no Arrow cache files on disk.
    """
    import evaluate

    script = METRICS_DIR / name / f"{name}.py"
    if name not in METRIC_NAMES or not script.is_file():
        raise GenRecError(f"unknown genrec metric {name!r}; available: {', '.join(METRIC_NAMES)}")
    kwargs.setdefault("keep_in_memory", True)
    return evaluate.load(str(script.parent), **kwargs)


@functools.lru_cache(maxsize=None)
def _metric(name: str):
    # One loaded module per process: evaluate.load copies and imports the script, ~0.1 s each time.
    return load_metric(name)


def _as_lists(predictions) -> list[list]:
    return [p.tolist() if hasattr(p, "tolist") else list(p) for p in predictions]


def _core(predictions: list[list], targets: list, ks: Sequence[int]) -> dict:
    out = dict(_metric("hit_rate").compute(predictions=predictions, references=targets, k=list(ks)))
    ndcg_ks = [k for k in ks if k > 1]  # NDCG@1 == HR@1, so it is not reported (as in MACRec)
    if ndcg_ks:
        out.update(_metric("ndcg").compute(predictions=predictions, references=targets, k=ndcg_ks))
    out["n_users"] = len(targets)
    return out


def long_tail_mask(item_counts: np.ndarray, head_share: float = HEAD_SHARE) -> np.ndarray:
    """Boolean mask over catalogue rows: True for long-tail items.

    Head = the ceil(head_share * n_items) items with the most training interactions (ties broken by
    row order, so the split is deterministic); every other item, including never-seen ones, is tail.
    """
    counts = np.asarray(item_counts)
    head = np.argsort(-counts, kind="stable")[: math.ceil(head_share * len(counts))]
    mask = np.ones(len(counts), dtype=bool)
    mask[head] = False
    return mask


def ranking_metrics(
    predictions: Sequence[Sequence[int]],
    targets: Sequence[int],
    ks: Iterable[int] = DEFAULT_KS,
    *,
    n_items: int | None = None,
    item_counts: np.ndarray | None = None,
    train_items: Iterable[int] | None = None,
    invalid: int | None = None,
    generated: int | None = None,
    top_k: int = TOP_K,
    item_groups: Sequence[int] | None = None,
    item_embeddings: np.ndarray | None = None,
) -> dict:
    """HR@k for every k in ``ks``, NDCG@k for every k > 1, and ``n_users``; extras when their inputs are given.

    ``predictions``: ranked catalogue row indices per user (best first, any length); ``targets``: the
    held-out row per user. Extras (all at ``top_k``, default 10):

    * ``n_items`` -> ``coverage@10``: distinct items over all top-10 lists / catalogue size;
    * ``item_counts`` (training interactions per row, see ``train_item_counts``) -> ``long_tail@10``:
      share of the recommended top-10 slots holding a long-tail item (see ``long_tail_mask``), and the
      ``beyond_accuracy`` module's ``gini@10``, ``novelty@10``, ``popularity_percentile@10`` (plus
      ``diversity@10`` with ``item_groups``, ``embedding_diversity@10`` with ``item_embeddings``);
    * ``invalid``/``generated`` (counts from the decoder) -> ``invalid_id_rate``: share of generated
      candidates that map to no item;
    * ``train_items`` (rows seen in any training sequence) -> the core metrics again, prefixed
      ``cold_start/``, over the users whose target was never seen in training (``cold_start/n_users``).
    """
    predictions, targets, ks = _as_lists(predictions), list(targets), sorted(set(ks))
    if not targets:
        raise GenRecError("no users to score: the ranked lists and targets are empty")
    metrics = _core(predictions, targets, ks)
    top = [p[:top_k] for p in predictions]
    if n_items is not None:
        metrics[f"coverage@{top_k}"] = len({i for p in top for i in p}) / n_items
    if item_counts is not None:
        tail = long_tail_mask(item_counts)
        # rows past the counts (items added to the catalogue after training) were never trained on: tail
        slots = [bool(tail[i]) if i < len(tail) else True for p in top for i in p]
        metrics[f"long_tail@{top_k}"] = float(np.mean(slots)) if slots else 0.0
        size = max(n_items or 0, len(item_counts), 1 + max((i for p in top for i in p), default=-1))
        counts = np.pad(np.asarray(item_counts, dtype=np.int64), (0, size - len(item_counts)))
        extra = _metric("beyond_accuracy").compute(
            predictions=top, item_counts=counts, k=top_k, item_groups=item_groups, item_embeddings=item_embeddings
        )
        metrics.update({k: v for k, v in extra.items() if not k.startswith("coverage")})  # coverage: above
    if generated is not None:
        metrics["invalid_id_rate"] = (invalid or 0) / generated if generated else 0.0
    if train_items is not None:
        seen = set(train_items)
        cold = [u for u, t in enumerate(targets) if t not in seen]
        if cold:
            sub = _core([predictions[u] for u in cold], [targets[u] for u in cold], ks)
            metrics.update({f"cold_start/{k}": v for k, v in sub.items()})
        else:
            metrics["cold_start/n_users"] = 0
    return metrics


def train_sequences(data) -> dict[str, list[int]]:
    """Each user's training sequence (seq[:-2]) rebuilt from the train split alone.

    The split holds every prefix in time order, so a user's sequence is the first row's history
    followed by the targets of all of the user's rows. Users without a train row are absent.
    """
    seqs: dict[str, list[int]] = {}
    train = data.splits["train"]
    for user, hist, target in zip(train["user_id"], train["history"], train["target"]):
        if user not in seqs:
            seqs[user] = list(hist)
        seqs[user].append(target)
    return seqs


def train_item_counts(data) -> np.ndarray:
    """Training interactions per catalogue row (int64, length ``data.n_items``)."""
    rows = [i for s in train_sequences(data).values() for i in s]
    return np.bincount(np.asarray(rows, dtype=np.int64), minlength=data.n_items)


def catalogue_extras(data) -> dict:
    """The ``ranking_metrics`` extras that depend on the dataset only: ``n_items``, ``item_counts``,
    ``train_items`` (rows with at least one training interaction), ``item_groups`` (first level of the
    dataset's first semantic IDs, when it has some) and ``item_embeddings`` (its first embeddings)."""
    counts = train_item_counts(data)
    extras = dict(n_items=data.n_items, item_counts=counts, train_items=set(np.flatnonzero(counts).tolist()))
    if data.semantic_ids:
        extras["item_groups"] = next(iter(data.semantic_ids.values()))[:, 0]
    if data.embeddings:
        extras["item_embeddings"] = next(iter(data.embeddings.values()))
    return extras


def metrics_table(results: Mapping[str, Mapping], keys: Sequence[str] | None = None) -> str:
    """A Markdown table: one row per named result, one column per metric (default: every key seen)."""
    if keys is None:
        keys = list(dict.fromkeys(k for m in results.values() for k in m))
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    lines = ["| model | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    lines += [f"| {name} | " + " | ".join(fmt(m.get(k)) for k in keys) + " |" for name, m in results.items()]
    return "\n".join(lines)


def is_metrics_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a metrics JSON that ``write_metrics`` wrote (an object with ``n_users``)."""
    try:
        metrics = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(metrics, dict) and "n_users" in metrics


def write_metrics(metrics: Mapping, path: str | os.PathLike, name: str = "metrics", echo: bool = True) -> Path:
    """Write ``metrics`` as JSON atomically (temp file, then rename) and print them as a table."""
    from ..utils import atomic_write_file

    path = atomic_write_file(path, lambda fh: fh.write((json.dumps(dict(metrics), indent=2) + "\n").encode()))
    if echo:
        print(metrics_table({name: metrics}))
    return path
