"""The generator's loss normalised over legal codes (``GenRecT5Config.id_softmax == "prefix"``).

T5's loss spreads each step's softmax over the whole vocabulary, so part of what the model learns is
that a level-2 text code never follows ``<seqrec>``'s first step, or that image codes never appear in
a text ID: knowledge constrained decoding already enforces. Here each code of the target ID is scored
by a softmax over the codes that may legally follow its prefix (the decoding trie), so all the
probability mass is spent on choosing among real items. Decoding must use the same normalisation
(``genrec.generation.beam_search``); the forced EOS is not scored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import GenRecError
from ..generation.constraints import IDConstraint, gather_code_logits


def prefix_softmax_loss(logits: torch.Tensor, labels: torch.Tensor, constraint: IDConstraint) -> torch.Tensor:
    """Mean cross-entropy of the target IDs' codes, each over the legal codes after its prefix.

    ``logits`` [B, T, V] and ``labels`` [B, T] as in T5's forward; every label row starts with a full
    semantic ID of one of ``constraint``'s modalities (what every genrec task predicts).
    """
    levels, width = constraint.levels, constraint.width
    if labels.shape[1] < levels:
        raise GenRecError(f"labels hold {labels.shape[1]} tokens; a semantic ID needs {levels}")
    ids = labels[:, :levels]
    mod = constraint.modality_of_ids(ids[:, 0])
    if (mod < 0).any():
        raise GenRecError("id_softmax='prefix': a label does not start with a semantic ID of "
                          f"{constraint.modalities}; this loss serves ID-prediction tasks only")
    legal = constraint.legal_codes(ids, mod)  # [B, L, W]
    columns = torch.stack([constraint.code_tokens(mod, t) for t in range(levels)], 1)  # [B, L, W]
    scores = gather_code_logits(logits[:, :levels].float(), columns).masked_fill(~legal, float("-inf"))
    target = ids - constraint.token_start[mod]
    return F.cross_entropy(scores.reshape(-1, width), target.reshape(-1))
