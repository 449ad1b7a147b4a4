"""Decoding: each user's history as the generator's next-item input per modality, and a trie-constrained
beam search per modality (MACRec / MQL4GRec), batched across users and modalities.

Functions take the pipeline for its model, tokenizer, catalogue and caches (``pipe._constraints``,
``pipe._penalties``); they hold no state of their own.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import ITEM_TASKS, SEQUENTIAL_TASK, TASK_MODALITIES
from ..errors import GenRecError
from ..generation import IDConstraint, constrained_beam_search
from ..layout import ITEM_PRIOR_FILE
from .config import RankingConfig

logger = logging.getLogger("genrec.pipeline")


def cross_task(source: str, target: str) -> str | None:
    """The sequential task that reads a history's ``source`` IDs and predicts the next item's ``target`` ID."""
    return next((t for t, io in TASK_MODALITIES.items() if io == (source, target) and t not in ITEM_TASKS), None)


def constraint(pipe, modalities: tuple[str, ...]) -> IDConstraint:
    """The decoding trie of ``modalities`` (built once per catalogue state), on the model's device."""
    if modalities not in pipe._constraints:
        pipe._constraints[modalities] = IDConstraint.from_tokenizer(pipe.tokenizer, modalities)
    return pipe._constraints[modalities].to(pipe.model.device)


def groups(pipe, modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Modalities decoded in one batch: those whose IDs have the same length."""
    by_len: dict[int, list[str]] = {}
    for m in modalities:
        by_len.setdefault(pipe.tokenizer.num_levels(m), []).append(m)
    return [tuple(g) for g in by_len.values()]


def coverage(pipe, histories: Sequence[Sequence[int]], modality: str) -> np.ndarray:
    """Per history: the share of its last ``max_history`` items that have ``modality`` IDs (the input
    skips the others and reaches further back); 1 for an empty history or ``max_history`` 0."""
    present = pipe.tokenizer.catalog.has_ids(modality)
    if present.all() or pipe.max_history <= 0:
        return np.ones(len(histories))
    read = [list(h)[-pipe.max_history :] for h in histories]
    return np.array([float(present[h].mean()) if h else 1.0 for h in read])


def history_readers(pipe, histories, modalities: Sequence[str]) -> dict[str, list[str]]:
    """Per modality whose list reads a history through the learned cross-modal task for some user: the
    modality each user's history is read in (the one covering more of it; its own on a tie)."""
    trained = pipe.train_config.get("tasks") or ()
    sources = {m: [s for s in pipe.tokenizer.modalities if s != m and cross_task(s, m) in trained] for m in modalities}
    if not any(sources.values()):
        return {}
    cover = {m: coverage(pipe, histories, m) for m in pipe.tokenizer.modalities}
    return {
        m: [max([m, *sources[m]], key=lambda s: (cover[s][u], s == m)) for u in range(len(histories))]
        for m in modalities
        if sources[m] and not (cover[m] == 1).all()
    }


def task_inputs(pipe, histories, modalities: Sequence[str], read: dict[str, list[str]]) -> dict:
    """(user, modality) -> the generator input of that modality's next-item request for that user."""
    inputs = {}
    for m in modalities:
        for u, history in enumerate(histories):
            source = read[m][u] if m in read else m
            task = SEQUENTIAL_TASK[m] if source == m else cross_task(source, m)
            inputs[u, m] = pipe.tokenizer.encode_task_input(task, history, source, max_items=pipe.max_history)
    return inputs


def penalty(pipe, group: tuple[str, ...], correction: float) -> torch.Tensor | None:
    """``correction * log P(code | prefix)`` per edge of ``group``'s trie (None when the correction is 0)."""
    if correction == 0:
        return None
    key = (group, correction)
    if key not in pipe._penalties:  # built once per ranking setting, not per batch
        counts = pipe.item_prior.get("counts")
        if counts is None:
            raise GenRecError(
                f"popularity_correction={correction} needs item counts ({ITEM_PRIOR_FILE} in the pipeline "
                "folder, written by `genrec train`); this pipeline has none"
            )
        # Items added after training (tokenizer.add_items) have no interactions: weight 1.
        weights = torch.ones(len(pipe.tokenizer.catalog), dtype=torch.float64)
        weights[: len(counts)] += torch.as_tensor(counts[: len(weights)], dtype=torch.float64)
        pipe._penalties[key] = correction * constraint(pipe, group).log_prior(weights)
    return pipe._penalties[key].to(pipe.model.device)  # a no-op unless the model moved


class BeamLists:
    """Per modality, each user's beam-search list (rows, scores), with invalid-ID and beam counts."""

    def __init__(self, modalities: Sequence[str], n: int):
        self.per_mod = {m: ([[] for _ in range(n)], [[] for _ in range(n)]) for m in modalities}
        self.invalid = dict.fromkeys(modalities, 0)
        self.beams = dict.fromkeys(modalities, 0)


def beam_lists(
    pipe,
    histories,
    modalities: Sequence[str],
    read: dict,
    config: RankingConfig,
    correction: float,
    progress: bool = False,
) -> BeamLists:
    """Every (user, modality) request decoded, batched by ID length and sorted by input length so padding
    stays small; a list that leaving out the history left short is decoded again with wider beams."""
    out = BeamLists(modalities, len(histories))
    decoded = [m for m in modalities if pipe.tokenizer.catalog.has_ids(m).any()]
    grouped = groups(pipe, decoded)
    group_of = {m: g for g in grouped for m in g}
    inputs = task_inputs(pipe, histories, decoded, read)
    requests = sorted(inputs, key=lambda r: (grouped.index(group_of[r[1]]), len(inputs[r])))
    bar = tqdm(total=len(requests), desc="ranking", unit="req", disable=not progress)
    for start in range(0, len(requests), config.batch_size):
        chunk = requests[start : start + config.batch_size]
        for group in dict.fromkeys(group_of[m] for _, m in chunk):
            part = [r for r in chunk if group_of[r[1]] == group]
            decode(pipe, part, inputs, group, config.num_beams, out, histories, config.exclude_history, correction)
        bar.update(len(chunk))
    bar.close()
    if config.exclude_history:
        _widen_short_lists(pipe, requests, inputs, group_of, config, out, histories, correction)
    return out


def decode(
    pipe, part, inputs, group, num_beams: int, out: BeamLists, histories, exclude_history: bool, correction: float
) -> None:
    """One batch of (user, modality) requests of one ID length: their beams appended to ``out``'s lists (the
    items behind each ID, the history's left out when asked)."""
    trie = constraint(pipe, group)
    batch = pipe.tokenizer.pad([{"input_ids": inputs[r]} for r in part], return_tensors="pt")
    device = pipe.model.device
    width = min(num_beams, trie.n_leaves)  # never more beams than IDs to find
    found = constrained_beam_search(
        pipe.model,
        batch["input_ids"].to(device),
        batch["attention_mask"].to(device),
        trie,
        torch.tensor([trie.modality_index(m) for _, m in part], device=device),
        num_beams=width,
        penalty=penalty(pipe, group, correction),
    )
    for (u, m), leaves, scores in zip(part, found.leaves.tolist(), found.scores.tolist()):
        seen = set(histories[u]) if exclude_history else ()
        rows, vals = out.per_mod[m]
        out.beams[m] += num_beams
        for leaf, score in zip(leaves, scores):
            if leaf < 0:
                out.invalid[m] += 1
                continue
            for row in trie.rows_of_leaf(leaf):
                if row not in seen:
                    rows[u].append(row)
                    vals[u].append(score)


def _widen_short_lists(
    pipe, requests, inputs, group_of, config: RankingConfig, out: BeamLists, histories, correction: float
) -> None:
    """Decode again, with as many more beams as the history has items, each list that leaving out the history
    left under ``k`` items while its modality has more items to offer (a history covering much of the
    catalogue fills the beams with items it already holds)."""
    has = {m: pipe.tokenizer.catalog.has_ids(m) for m in out.per_mod}
    short = [
        (u, m)
        for u, m in requests
        if len(out.per_mod[m][0][u]) < config.k
        and len(out.per_mod[m][0][u]) < int(has[m].sum()) - len({r for r in histories[u] if has[m][r]})
    ]
    if not short:
        return
    wide = config.num_beams + max(len(set(histories[u])) for u, _ in short)
    logger.info(
        "%d list(s) held fewer than k=%d items once the history was left out: decoded again with %d beams",
        len(short),
        config.k,
        wide,
    )
    for u, m in short:
        out.per_mod[m][0][u].clear()
        out.per_mod[m][1][u].clear()
    for group in dict.fromkeys(group_of[m] for _, m in short):
        part = [r for r in short if group_of[r[1]] == group]
        for start in range(0, len(part), config.batch_size):
            decode(pipe, part[start : start + config.batch_size], inputs, group, wide, out, histories, True, correction)
