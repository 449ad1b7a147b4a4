"""Cold-start slots: items added after training (``add_items``) were never a training target, so beam search
rarely reaches them. The last ``round(cold_start_share * k)`` places of each list go to the added items whose
IDs share the longest prefix (as a share of the ID) with a generated beam or, after the beams, with an item of
the history (most recent first); ties go to the better-ranked anchor, then the row. Each carries its anchor's
score (a history anchor: the lowest beam score). A list keeps its generated items when no added item shares at
least the first code; without added items nothing changes."""

from __future__ import annotations

import numpy as np

from .config import RankingConfig


def cold_start(pipe, per_mod, rows, scores, histories, config: RankingConfig) -> list[list[int]]:
    """Replace the tail of each list by added items sharing the longest ID prefix with its beams, or
    else with the history's items (most recent first): in place."""
    k, slots = config.k, round(config.cold_start_share * config.k)
    first_new = pipe.trained_rows
    catalog = pipe.tokenizer.catalog
    if slots <= 0 or first_new >= len(catalog):
        return [[] for _ in rows]
    new_codes = {m: catalog.codes[m][first_new:] for m in per_mod}
    lacking = {m: ~catalog.has_ids(m)[first_new:] for m in per_mod}
    added = []
    for u in range(len(rows)):
        best: dict[int, tuple] = {}  # new row -> (-shared share of the ID, anchor rank, score)
        for m, (beam_rows, beam_scores) in per_mod.items():
            new = new_codes[m]
            anchors = list(beam_rows[u]) + list(reversed(histories[u]))
            if not anchors:
                continue
            floor = min(beam_scores[u]) if beam_scores[u] else 0.0
            anchor_scores = list(beam_scores[u]) + [floor] * len(histories[u])
            codes = catalog.codes[m][anchors]  # [A, L]
            same = np.cumprod(codes[:, None, :] == new[None, :, :], axis=2).sum(2)  # shared prefix [A, N]
            same[:, lacking[m]] = 0
            rank = same.argmax(0)  # best-ranked anchor among those with the longest shared prefix
            depth = same[rank, np.arange(len(new))]
            for j in np.flatnonzero(depth > 0):
                key = (-int(depth[j]) / codes.shape[1], int(rank[j]), float(anchor_scores[rank[j]]))
                row = first_new + int(j)
                if row not in best or key < best[row]:
                    best[row] = key
        kept = k - slots  # generated items that keep their place (an added item among them stays too)
        skip = set(rows[u][:kept]) | (set(histories[u]) if config.exclude_history else set())
        picks = sorted((key, row) for row, key in best.items() if row not in skip)[:slots]
        kept = max(kept, k - len(picks))  # fewer candidates than slots: generated items fill the rest
        scores[u] = scores[u][:kept] + [key[2] for key, _ in picks]
        rows[u] = rows[u][:kept] + [row for _, row in picks]
        added.append([row for _, row in picks])
    return added
