"""K-means for codebook initialisation and for MACRec's cross-modal pseudo-labels (scikit-learn)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

PSEUDO_LABELS_FILE = "pseudo_labels.npz"


# Large catalogues: k-means is fitted on a seeded sample of this many rows, then every row is assigned to
# its nearest centre in chunks (at 1M items a full fit would take minutes and gigabytes for no better
# centres). Catalogues up to this size are fitted whole, as before.
MAX_FIT_ROWS = 65_536
ASSIGN_CHUNK = 65_536


def sample_rows(n: int, seed: int, limit: int | None = None) -> np.ndarray:
    """Sorted indices of a seeded sample of at most ``limit`` (default ``MAX_FIT_ROWS``) of ``n`` rows
    (all of them when n <= limit)."""
    limit = MAX_FIT_ROWS if limit is None else limit
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def nearest_centre(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre of every row, in chunks (memory: one chunk x k distances)."""
    c2 = (centres**2).sum(1)
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), ASSIGN_CHUNK):
        chunk = np.asarray(x[start : start + ASSIGN_CHUNK], dtype=np.float32)
        out[start : start + len(chunk)] = (c2 - 2 * chunk @ centres.T).argmin(1)
    return out


def kmeans(x: np.ndarray, k: int, seed: int, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """(centres [k, d], labels [n]) of ``x``; deterministic per seed. With fewer rows than ``k``,
    the missing centres are copies of random rows (k-means cannot place more centres than points).
    More than ``MAX_FIT_ROWS`` rows: fitted on a sample, every row then labelled by its nearest centre."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    fit = np.asarray(x[sample_rows(len(x), seed)], dtype=np.float32)
    n_fit = min(k, len(np.unique(fit, axis=0)))
    # One BLAS thread: idle OpenBLAS workers otherwise keep spinning and starve torch's threads afterwards.
    with threadpool_limits(limits=1, user_api="blas"):
        km = KMeans(n_clusters=n_fit, n_init=1, max_iter=max_iter, random_state=seed).fit(fit)
    centres = km.cluster_centers_.astype(np.float32)
    if n_fit < k:
        extra = np.random.default_rng(seed).integers(0, len(fit), k - n_fit)
        centres = np.concatenate([centres, fit[extra]])
    labels = km.labels_.astype(np.int64) if fit.shape[0] == len(x) else nearest_centre(x, centres)
    return centres, labels


def id_prefix_labels(ids: np.ndarray, levels: int) -> np.ndarray:
    """One label per distinct prefix of ``levels`` codes (-1 for a row of -1: the item lacks the modality)."""
    ids = np.asarray(ids, dtype=np.int64)
    present = (ids >= 0).all(axis=1)
    labels = np.full(len(ids), -1, dtype=np.int64)
    if present.any():
        labels[present] = np.unique(ids[present, :levels], axis=0, return_inverse=True)[1].reshape(-1)
    return labels


def _fingerprint(x: np.ndarray, k: int, seed: int) -> str:
    h = hashlib.sha1(np.ascontiguousarray(x, dtype=np.float32).tobytes())
    h.update(f"{x.shape}|{k}|{seed}".encode())
    return h.hexdigest()


def pseudo_labels(
    embeddings: dict[str, np.ndarray], k: int, seed: int, cache_dir: str | Path | None = None
) -> dict[str, np.ndarray]:
    """Per modality, the K-means cluster of every item's embedding (-1 where the modality is missing).

    Computed once and cached in ``cache_dir/pseudo_labels.npz``, keyed by a fingerprint of the
    embeddings, K and seed, so resumed runs and re-runs on the same data skip the clustering.
    """
    cache = Path(cache_dir) / PSEUDO_LABELS_FILE if cache_dir is not None else None
    stored = dict(np.load(cache, allow_pickle=False)) if cache is not None and cache.is_file() else {}
    out, changed = {}, False
    for m, x in embeddings.items():
        present = ~np.isnan(x).any(axis=1)
        k_eff = min(k, max(2, int(present.sum()) // 2))
        if k_eff < k:
            logger.warning(
                "%s: %d items with embeddings, K-means pseudo-labels use K=%d instead of %d", m, present.sum(), k_eff, k
            )
        key = _fingerprint(x[present], k_eff, seed)
        if stored.get(f"{m}__key") is not None and str(stored[f"{m}__key"]) == key:
            out[m] = stored[m]
            continue
        labels = np.full(len(x), -1, dtype=np.int64)
        labels[present] = kmeans(x[present], k_eff, seed)[1]
        out[m], stored[m], stored[f"{m}__key"], changed = labels, labels, np.array(key), True
    if cache is not None and changed:
        from ..utils import atomic_write_file

        atomic_write_file(cache, lambda fh: np.savez(fh, **stored))
    return out
