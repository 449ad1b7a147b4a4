"""Codebook statistics of semantic IDs (``quantizer_metrics.json``) and their table."""

from __future__ import annotations

import itertools

import numpy as np

from .collisions import collision_rate

__all__ = ["collision_rate", "utilization", "entropy", "cross_modal_agreement", "first_level_ami", "format_table"]


def _present(codes: np.ndarray) -> np.ndarray:
    return codes[(codes >= 0).all(axis=1)]


def utilization(codes: np.ndarray, codebook_size: int) -> list[float]:
    """Per level: distinct codes used / codebook size."""
    rows = _present(codes)
    return [len(np.unique(rows[:, lv])) / codebook_size for lv in range(codes.shape[1])]


def entropy(codes: np.ndarray, codebook_size: int) -> list[float]:
    """Per level: entropy of the code distribution / log(codebook size) (1 = perfectly even)."""
    rows, out = _present(codes), []
    for lv in range(codes.shape[1]):
        p = np.bincount(rows[:, lv], minlength=codebook_size) / max(len(rows), 1)
        p = p[p > 0]
        out.append(float(-(p * np.log(p)).sum() / np.log(codebook_size)))
    return out


def _pairs(counts: np.ndarray) -> float:
    return float((counts * (counts - 1) / 2).sum())


def cross_modal_agreement(codes: dict[str, np.ndarray]) -> float | None:
    """Of the item pairs that share a first-level code in one modality, the share that also share
    it in another; averaged over ordered modality pairs, items having both. None for one modality."""
    scores = []
    for a, b in itertools.permutations(codes, 2):
        both = (codes[a] >= 0).all(axis=1) & (codes[b] >= 0).all(axis=1)
        ca, cb = codes[a][both, 0], codes[b][both, 0]
        same_a = _pairs(np.unique(ca, return_counts=True)[1])
        same_ab = _pairs(np.unique(np.stack([ca, cb], 1), axis=0, return_counts=True)[1])
        if same_a:
            scores.append(same_ab / same_a)
    return float(np.mean(scores)) if scores else None


def first_level_ami(codes: np.ndarray, labels: np.ndarray) -> float:
    """Adjusted mutual information between first-level codes and ground-truth labels (items present)."""
    from sklearn.metrics import adjusted_mutual_info_score

    keep = (codes >= 0).all(axis=1)
    return float(adjusted_mutual_info_score(labels[keep], codes[keep, 0]))


def format_table(metrics: dict) -> str:
    """The per-modality metrics as an aligned text table."""
    mods = [m for m, v in metrics.items() if isinstance(v, dict)]

    def fmt(v):
        if isinstance(v, list):
            return " ".join(f"{x:.2f}" for x in v)
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    keys = [
        "n_items",
        "n_missing",
        "levels",
        "recon_loss",
        "collision_rate_before",
        "collision_rate_after",
        "utilization",
        "entropy",
    ]
    rows = [["metric", *mods]] + [[k, *(fmt(metrics[m].get(k, "")) for m in mods)] for k in keys]
    if metrics.get("cross_modal_agreement") is not None:
        rows.append(["cross_modal_agreement", fmt(metrics["cross_modal_agreement"])] + [""] * (len(mods) - 1))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
