"""The generator's tasks as whole sequences (``training_mode="sequences"``), built lazily like ``genrec.tasks``.

One unit is a window of a user's training sequence (every item but the validation and test targets) with
every next-item target in it: the encoder reads the window once under causal history attention
(``genrec.modeling.causal_history``) and each target reads the items before it. A sequence of at most
``max_history + 1`` items is one window whose targets see 1 .. ``max_history`` items, as the per-row
split's do. A longer one is cut into windows of ``max_history + 1`` items; each later window trains only
the targets the one before did not, and starts early enough that each of them reads at least
``max_history // 2`` items (the last window is aligned with the sequence's end, so most read more); the
per-row split gives every target the full ``max_history`` items.

An item task unit (``item2image``, ``image2item``) is one item read as a one-item history with one target.
As in ``genrec.tasks``, ``seqrec+seqimage`` is one unit of two views; a target the two views share (same
window position) is one pair of the implicit alignment loss.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from datasets import ClassLabel, Dataset, Features, Value

from . import ITEM_TASKS, TASK_MODALITIES
from .tasks import TaskConfigError, _unit_names, check_tasks


def sequence_windows(n: int, max_history: int) -> list[tuple[int, int, int]]:
    """(start, first target, end) of each window of a sequence of ``n`` items: targets are positions
    [first, end), each reading the items from ``start`` up to it."""
    windows, first, size = [], 1, max_history + 1
    while first < n:
        start = max(0, min(first - max(1, max_history // 2), n - size))
        end = min(n, start + size)
        windows.append((start, first, end))
        first = end
    return windows


def build_sequence_dataset(
    sequences: Sequence[Sequence[int]],
    tokenizer,
    tasks: Sequence[str],
    max_history: int,
    pair_views: bool = True,
    item_rows: Sequence[int] | None = None,
) -> Dataset:
    """Sequence units of the training sequences (catalogue rows, oldest first), read lazily.

    Recipe columns: ``unit``, ``index`` (sequence or catalogue row), ``start``/``first``/``end`` (the
    window), ``length`` (items in the window, for length-grouped batching) and ``targets`` (how many
    targets the unit trains). A read row has, per view, ``input_ids`` (``<task> IDs </s>``), ``targets``
    (each target's ID tokens), ``history_items`` (how many of the view's history items each target reads)
    and ``positions`` (each target's place in the window, which pairs the two views).
    """
    tasks = check_tasks(tasks, tokenizer)
    if max_history < 1:
        raise TaskConfigError(f"max_history must be >= 1, got {max_history}")
    units = _unit_names(tasks, pair_views)
    has = {m: np.asarray(tokenizer.catalog.codes[m])[:, 0] >= 0 for m in tokenizer.modalities}
    if item_rows is None:
        item_rows = np.flatnonzero(np.logical_and.reduce([has[m] for m in ("text", "image") if m in has]))
    cols: dict[str, list[int]] = {k: [] for k in ("unit", "index", "start", "first", "end", "length", "targets")}

    def add(u, index, start, first, end, targets):
        for key, value in zip(cols, (u, index, start, first, end, end - start, targets)):
            cols[key].append(value)

    for u, name in enumerate(units):
        names = name.split("+")
        if names[0] in ITEM_TASKS:
            for row in item_rows:
                add(u, int(row), 0, 1, 1, 1)
            continue
        for s, seq in enumerate(sequences):
            seq = np.asarray(seq, dtype=np.int64)
            for start, first, end in sequence_windows(len(seq), max_history):
                count = max(len(_targets(seq[start:end], first - start, has, t)[0]) for t in names)
                if count:
                    add(u, s, start, first, end, count)
    recipes = Dataset.from_dict(
        cols, features=Features({k: ClassLabel(names=units) if k == "unit" else Value("int64") for k in cols})
    )
    return recipes.with_transform(_token_transform(sequences, tokenizer, units, has))


def _targets(window: np.ndarray, first: int, has: dict[str, np.ndarray], task: str):
    """Window positions >= ``first`` that are targets of ``task`` (the item has the target modality and
    some item before it has the input modality), and how many input-modality items each reads."""
    src, dst = TASK_MODALITIES[task]
    before = np.concatenate([[0], np.cumsum(has[src][window])[:-1]])
    pos = np.flatnonzero(has[dst][window] & (before > 0))
    pos = pos[pos >= first]
    return pos, before[pos]


def _token_transform(sequences, tokenizer, units: list[str], has: dict[str, np.ndarray]):
    """The ``with_transform`` function: recipes -> token ids per view, when a batch is read."""

    def view(task: str, rows: np.ndarray, targets: np.ndarray, reads: np.ndarray, positions: np.ndarray) -> dict:
        src, dst = TASK_MODALITIES[task]
        return {
            "input_ids": tokenizer.encode_task_input(task, rows.tolist(), src),
            "targets": [tokenizer.encode_rows([int(r)], dst) for r in targets],
            "history_items": reads.tolist(),
            "positions": positions.tolist(),
        }

    def transform(batch: dict) -> dict:
        out = {"views": [], "paired": []}
        for u, i, start, first, end in zip(batch["unit"], batch["index"], batch["start"], batch["first"], batch["end"]):
            names = units[u].split("+")
            views = []
            for task in names:
                if task in ITEM_TASKS:
                    views.append(view(task, np.array([i]), np.array([i]), np.array([1]), np.array([0])))
                    continue
                window = np.asarray(sequences[i][start:end], dtype=np.int64)
                pos, reads = _targets(window, first - start, has, task)
                if len(pos):
                    views.append(view(task, window[:-1], window[pos], reads, pos))
            out["views"].append(views)
            out["paired"].append(len(views) == 2)
        return out

    return transform
