"""Rescoring: every item some modality's beams proposed, scored under each other modality it has IDs in, by
teacher forcing (``genrec.generation.scoring``), so the fusion never has to guess a score a list missed."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..generation.scoring import score_ids
from .config import DEFAULT_BATCH_SIZE, DEFAULT_NUM_BEAMS
from .decode import constraint, groups, penalty, task_inputs
from .fuse import unzip
from .result import RankResult


def candidate_batches(
    cands: list[list[int]], budget: int = DEFAULT_BATCH_SIZE * DEFAULT_NUM_BEAMS, users: int = DEFAULT_BATCH_SIZE
) -> list[list[int]]:
    """Users with candidates, in batches of at most ``users`` users and ``budget`` decoder rows: each user's
    candidates are padded to the batch's largest count (``genrec.generation.scoring``), so a user with many
    (IDs that several items share) does not widen everyone's."""
    batches: list[list[int]] = []
    widest = 0
    for u, c in enumerate(cands):
        if not c:
            continue
        if batches and len(batches[-1]) < users and (len(batches[-1]) + 1) * max(widest, len(c)) <= budget:
            batches[-1].append(u)
            widest = max(widest, len(c))
        else:
            batches.append([u])
            widest = len(c)
    return batches


def rescore(pipe, res: RankResult, histories: Sequence[Sequence[int]], progress: bool = False) -> RankResult:
    """``res`` (from ``rank(..., rescore=False)`` on ``histories``) with ``rescored``: per decoded modality,
    each user's candidates (the rows any modality's list holds) that have its IDs, with the score its beam
    search gave them or, for the rows its beams missed, would have given them (``genrec.generation.scoring``:
    the same history reading and ``res.popularity_correction``), best first. The final lists are left empty:
    ``recombine`` makes them."""
    correction = res.popularity_correction
    decoded = [m for m in res.per_modality if pipe.tokenizer.catalog.has_ids(m).any()]
    inputs = task_inputs(pipe, histories, decoded, res.read)
    union = [
        list(dict.fromkeys(r for rows, _ in res.per_modality.values() for r in rows[u])) for u in range(len(histories))
    ]
    rescored = {}
    for group in groups(pipe, decoded):
        for m in group:
            has, (beam_rows, beam_scores) = pipe.tokenizer.catalog.has_ids(m), res.per_modality[m]
            found = [dict(zip(r, s)) for r, s in zip(beam_rows, beam_scores)]
            missed = [[r for r in rows if has[r] and r not in f] for rows, f in zip(union, found)]
            scores = _score_candidates(pipe, group, m, missed, inputs, correction, progress)
            rescored[m] = unzip(
                [
                    sorted([*f.items(), *zip(c, s)], key=lambda pair: (-pair[1], pair[0]))
                    for f, c, s in zip(found, missed, scores)
                ]
            )
    return replace(res, rescored=rescored, rows=[], scores=[], cold_start=[])


def _score_candidates(pipe, group, modality, cands, inputs, correction, progress) -> list[list[float]]:
    """Per user u, the ``modality`` scores of the rows ``cands[u]`` given its input ``inputs[u, modality]``.
    Rows sharing an ID (unresolved collisions) are scored once per user."""
    device = pipe.model.device
    trie = constraint(pipe, group)
    index = trie.modality_index(modality)
    codes = pipe.tokenizer.catalog.codes[modality]
    id_tokens = trie.token_start[index] + torch.as_tensor(codes, device=device).clamp(min=0)  # -1: not asked
    keys = [[codes[r].tobytes() for r in c] for c in cands]
    distinct = [dict(zip(k, c)) for k, c in zip(keys, cands)]  # ID -> one of its rows
    cands = [list(d.values()) for d in distinct]
    scores: list[list[float]] = [[] for _ in cands]
    for users in tqdm(candidate_batches(cands), desc=f"rescoring {modality}", disable=not progress):
        batch = pipe.tokenizer.pad([{"input_ids": inputs[u, modality]} for u in users], return_tensors="pt")
        owner = torch.tensor([j for j, u in enumerate(users) for _ in cands[u]], device=device)
        flat = score_ids(
            pipe.model,
            batch["input_ids"].to(device),
            batch["attention_mask"].to(device),
            trie,
            torch.full((len(users),), index, device=device),
            id_tokens[torch.tensor([r for u in users for r in cands[u]], device=device)],
            owner,
            penalty(pipe, group, correction),
        ).tolist()
        ends = np.cumsum([len(cands[u]) for u in users]).tolist()
        for u, a, b in zip(users, [0, *ends], ends):
            scores[u] = flat[a:b]
    by_id = [dict(zip(d, s)) for d, s in zip(distinct, scores)]
    return [[ids[k] for k in user_keys] for ids, user_keys in zip(by_id, keys)]
