"""MACRec's generator tasks, built lazily from a leave-one-out split.

The dataset holds one small *recipe* row per training unit (``unit``: which task(s), ``index``: the
split row or catalogue row, ``length``: input items, for length-grouped batching); ``with_transform``
turns recipes into token ids only when a batch is read, so no per-task copy of the histories is
materialised, whatever the catalogue size.

A unit yields one example, or for ``seqrec+seqimage`` two: the text-ID and image-ID views of the same
(user, position), text first. The collator keeps them in one batch and marks them with a shared
``pair_ids`` value for the implicit alignment loss.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from datasets import ClassLabel, Dataset, Features, Value

from . import ITEM_TASKS, TASK_MODALITIES, TASKS
from .data.loading import DEFAULT_MAX_HISTORY
from .errors import GenRecError

PAIRED_TASKS = ("seqrec", "seqimage")  # the two views the implicit loss aligns
PAIR_UNIT = "+".join(PAIRED_TASKS)


class TaskConfigError(GenRecError, ValueError):
    """An unknown task, or a task the tokenizer or data cannot serve."""


def check_tasks(tasks: Sequence[str], tokenizer=None) -> tuple[str, ...]:
    """Validate task names (against ``TASKS`` and the tokenizer's task tokens and modalities)."""
    tasks = tuple(dict.fromkeys(tasks))
    if not tasks:
        raise TaskConfigError(f"no tasks selected; choose from {list(TASKS)}")
    for t in tasks:
        if t not in TASK_MODALITIES:
            raise TaskConfigError(f"unknown task {t!r}; choose from {list(TASKS)}")
        if tokenizer is not None:
            if t not in tokenizer.tasks:
                raise TaskConfigError(f"task {t!r} has no task token in this tokenizer ({tokenizer.tasks})")
            missing = [m for m in TASK_MODALITIES[t] if m not in tokenizer.modalities]
            if missing:
                raise TaskConfigError(
                    f"task {t!r} needs {missing} semantic IDs; the tokenizer has only {tokenizer.modalities}"
                )
    return tasks


def tasks_the_ids_allow(tasks: Sequence[str], tokenizer) -> tuple[list[str], list[str]]:
    """``tasks`` split into those the tokenizer can serve (its task tokens and modalities) and the others."""
    kept = [t for t in tasks if t in tokenizer.tasks and set(TASK_MODALITIES[t]) <= set(tokenizer.modalities)]
    return kept, [t for t in tasks if t not in kept]


def _unit_names(tasks: Sequence[str], pair_views: bool) -> list[str]:
    paired = pair_views and all(t in tasks for t in PAIRED_TASKS)
    units = [PAIR_UNIT] if paired else []
    return units + [t for t in tasks if not (paired and t in PAIRED_TASKS)]


def build_task_dataset(
    split: Dataset,
    tokenizer,
    tasks: Sequence[str] = TASKS,
    max_history: int = DEFAULT_MAX_HISTORY,
    pair_views: bool = True,
    item_rows: Sequence[int] | None = None,
    history_dropout: float = 0.0,
    seed: int = 0,
) -> Dataset:
    """Task samples of a split (columns ``history``, ``target``: catalogue rows), read lazily.

    Each read row has ``input_ids`` and ``labels`` (lists of 1 or 2 token sequences) and ``paired``.
    History tasks use every split row whose target has the target modality and whose history has at
    least one item with the input modality; item tasks use ``item_rows`` (default: every catalogue item
    with both modalities). ``pair_views`` puts seqrec and seqimage of one sample in one unit.
    ``history_dropout`` q: each time a sample is read, every history item is left out of each task's input
    with probability q, drawn anew per task (the last item stays when all would go): the model learns to
    read histories in which a modality is missing for some items, as serving meets them when items lack an
    image or a text (SiBraR's modality dropout, per item). Draws come from a generator seeded with ``seed``.
    """
    if not 0 <= history_dropout < 1:
        raise TaskConfigError(f"history_dropout must be in [0, 1), got {history_dropout}")
    tasks = check_tasks(tasks, tokenizer)
    if max_history < 1:
        raise TaskConfigError(f"max_history must be >= 1, got {max_history}")
    for col in ("history", "target"):
        if col not in split.column_names:
            raise TaskConfigError(f"split has no {col!r} column (columns: {split.column_names})")
    units = _unit_names(tasks, pair_views)
    recipes = _recipe_table(split, tokenizer, units, max_history, item_rows)
    return recipes.with_transform(_token_transform(split, tokenizer, units, max_history, history_dropout, seed))


def _recipe_table(
    split: Dataset, tokenizer, units: list[str], max_history: int, item_rows: Sequence[int] | None
) -> Dataset:
    """The recipe rows: per unit, the split or catalogue rows it trains on and their input length in items."""
    codes = tokenizer.catalog.codes
    has = {m: np.asarray(codes[m])[:, 0] >= 0 for m in tokenizer.modalities}
    histories = split["history"]
    if item_rows is None:
        item_rows = np.flatnonzero(np.logical_and.reduce([has[m] for m in ("text", "image") if m in has]))
    history_items = np.minimum([len(h) for h in histories], max_history)
    unit_col, index_col, length_col = [], [], []
    for u, name in enumerate(units):
        task_names = name.split("+")
        item_task = task_names[0] in ITEM_TASKS
        rows = np.asarray(item_rows, dtype=np.int64) if item_task else _history_rows(split, histories, has, task_names)
        unit_col.append(np.full(len(rows), u, dtype=np.int64))
        index_col.append(rows)
        length_col.append(np.ones(len(rows), dtype=np.int64) if item_task else history_items[rows])
    return Dataset.from_dict(
        {"unit": np.concatenate(unit_col), "index": np.concatenate(index_col), "length": np.concatenate(length_col)},
        features=Features({"unit": ClassLabel(names=units), "index": Value("int64"), "length": Value("int64")}),
    )


def _history_rows(split: Dataset, histories: list, has: dict[str, np.ndarray], task_names: list[str]) -> np.ndarray:
    """Split rows on which every one of ``task_names`` has an input and a target."""
    ok = np.ones(len(split), dtype=bool)
    targets = np.asarray(split["target"], dtype=np.int64)
    for t in task_names:
        src, dst = TASK_MODALITIES[t]
        ok &= has[dst][targets]
        if not has[src].all():
            ok &= np.array([bool(has[src][h].any()) for h in histories], dtype=bool)
    return np.flatnonzero(ok)


def _token_transform(split: Dataset, tokenizer, units: list[str], max_history: int, history_dropout: float, seed: int):
    """The ``with_transform`` function: turns a batch of recipes into token ids when it is read."""
    rng = np.random.default_rng(seed)

    def encode(task: str, history: list[int] | None, item: int) -> tuple[list[int], list[int]]:
        src, dst = TASK_MODALITIES[task]
        rows = [item] if history is None else history
        if history is not None and history_dropout > 0:
            kept = rng.random(len(rows)) >= history_dropout
            rows = [r for r, k in zip(rows, kept) if k] or rows[-1:]
        source = tokenizer.encode_task_input(task, rows, src, max_items=max_history)
        return source, tokenizer.encode_rows([item], dst) + [tokenizer.eos_token_id]

    def transform(batch: dict) -> dict:
        hist_idx = [i for u, i in zip(batch["unit"], batch["index"]) if units[u].split("+")[0] not in ITEM_TASKS]
        fetched = split[hist_idx] if hist_idx else {"history": [], "target": []}
        lookup = dict(zip(hist_idx, zip(fetched["history"], fetched["target"])))
        out = {"input_ids": [], "labels": [], "paired": []}
        for u, i in zip(batch["unit"], batch["index"]):
            names = units[u].split("+")
            history, item = (None, i) if names[0] in ITEM_TASKS else lookup[i]
            pairs = [encode(t, history, item) for t in names]
            out["input_ids"].append([p[0] for p in pairs])
            out["labels"].append([p[1] for p in pairs])
            out["paired"].append(len(names) == 2)
        return out

    return transform
