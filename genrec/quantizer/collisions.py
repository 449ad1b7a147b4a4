"""Collision resolution: every item gets a unique full ID, deterministically.

Items that share a full ID keep it in order of their last-level residual distance (closest first);
each other item moves, on the last level, to the nearest code (by residual distance) whose full ID
is unused. When the prefix has no free code left, one extra *disambiguation level* is appended to
every ID: 0 for the first holder of an ID, 1, 2, ... for the others.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..errors import GenRecError


def collision_rate(codes: np.ndarray) -> float:
    """(items - distinct IDs) / items over rows that have this modality (MACRec / LC-Rec definition)."""
    rows = codes[(codes >= 0).all(axis=1)]
    if len(rows) == 0:
        return 0.0
    return float(len(rows) - len(np.unique(rows, axis=0))) / len(rows)


def resolve_collisions(
    codes: np.ndarray, last_dists: np.ndarray, existing: np.ndarray | None = None
) -> tuple[np.ndarray, dict]:
    """Unique IDs for ``codes`` [n, L] (-1 rows = modality missing, left as -1).

    ``last_dists`` [n, M]: each item's distance from its last-level residual to every last-level
    code. ``existing`` [n0, L or L+1]: IDs already handed out (cold start); they never change and new
    items avoid them. Returns (ids [n, L or L+1], report).
    """
    codes = np.asarray(codes, dtype=np.int64).copy()
    levels = codes.shape[1]
    present = (codes >= 0).all(axis=1)
    taken, used_extra, has_extra = _taken_ids(existing, levels)
    order, movers = _keep_closest_holders(codes, last_dists, present, taken)
    moved, overflow = _move_to_free_codes(codes, last_dists, movers, taken)

    if overflow and existing is not None and not has_extra:
        raise GenRecError(
            f"{len(overflow)} new item(s) fall under an ID prefix whose last-level codes are all taken, and the "
            "existing IDs have no disambiguation level to extend; re-run `genrec quantize` on the full catalogue"
        )
    spread = []
    if overflow or has_extra:
        extra, spread = _disambiguation_level(codes, order, used_extra, last_dists)
        codes = np.concatenate([codes, extra], axis=1)
    report = {
        "n_items": int(present.sum()),
        "n_missing": int((~present).sum()),
        "n_moved": len(moved),
        "n_prefix_full": len(overflow),
        "n_spread": len(spread),  # moved again because their ID's disambiguation values were all taken
        "extra_level_appended": bool(overflow) and not has_extra,
        "moved": moved + spread,
    }
    return codes, report


def _taken_ids(existing: np.ndarray | None, levels: int) -> tuple[set[tuple], dict[tuple, set[int]], bool]:
    """What existing IDs reserve: their codes, the extra-level values used under each, and whether they have one."""
    taken: set[tuple] = set()
    used_extra: dict[tuple, set[int]] = defaultdict(set)
    has_extra = False
    if existing is not None:
        existing = np.asarray(existing, dtype=np.int64)
        if existing.shape[1] not in (levels, levels + 1):
            raise GenRecError(f"existing IDs have {existing.shape[1]} levels; expected {levels} or {levels + 1}")
        has_extra = existing.shape[1] == levels + 1
        for row in existing[(existing >= 0).all(axis=1)]:
            key = tuple(row[:levels].tolist())
            taken.add(key)
            used_extra[key].add(int(row[levels]) if has_extra else 0)
    return taken, used_extra, has_extra


def _keep_closest_holders(
    codes: np.ndarray, last_dists: np.ndarray, present: np.ndarray, taken: set[tuple]
) -> tuple[np.ndarray, list]:
    """Hand each free ID to its closest item; returns the items in that order and those left to move."""
    rows = np.flatnonzero(present)
    own = last_dists[rows, codes[rows, -1]]
    order = rows[np.lexsort((rows, own))]  # closest to its own code first; row index breaks ties
    movers = []
    for i in order:
        key = tuple(codes[i].tolist())
        if key in taken:
            movers.append(i)
        else:
            taken.add(key)
    return order, movers


def _move_to_free_codes(
    codes: np.ndarray, last_dists: np.ndarray, movers: list, taken: set[tuple]
) -> tuple[list[list[int]], list[int]]:
    """Move each mover, in place, to its nearest free last-level code; returns the moves and the prefix-full items."""
    moved, overflow = [], []
    for i in movers:
        prefix = tuple(codes[i, :-1].tolist())
        for c in np.argsort(last_dists[i], kind="stable"):
            if prefix + (int(c),) not in taken:
                moved.append([int(i), int(codes[i, -1]), int(c)])
                codes[i, -1] = c
                taken.add(prefix + (int(c),))
                break
        else:
            overflow.append(int(i))
    return moved, overflow


def _disambiguation_level(
    codes: np.ndarray, order: np.ndarray, used_extra: dict[tuple, set[int]], last_dists: np.ndarray
) -> tuple[np.ndarray, list[list[int]]]:
    """The extra last column: per ID, the smallest value its earlier holders (existing ones first) left free.
    An item whose ID has all ``M`` values taken moves, in place, to its nearest last-level code that still
    has one, so a prefix holds ``M * M`` items (a poorly trained quantizer can put thousands under one ID).
    Returns the column and those moves."""
    m = last_dists.shape[1]
    extra = np.full((len(codes), 1), -1, dtype=np.int64)
    spread = []
    for i in order:
        key = tuple(codes[i].tolist())
        if len(used_extra[key]) >= m:
            for c in np.argsort(last_dists[i], kind="stable"):
                if len(used_extra[key[:-1] + (int(c),)]) < m:
                    spread.append([int(i), key[-1], int(c)])
                    codes[i, -1] = c
                    key = key[:-1] + (int(c),)
                    break
            else:
                raise GenRecError(
                    f"more than {m * m} items share the ID prefix {key[:-1]}; the last level and the "
                    "disambiguation level cannot hold them (use more levels or a larger codebook, or "
                    "train longer)"
                )
        e = next(v for v in range(len(used_extra[key]) + 1) if v not in used_extra[key])
        used_extra[key].add(e)
        extra[i, 0] = e
    return extra, spread
