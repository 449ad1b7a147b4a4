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
from torch import nn

from ..errors import GenRecError
from ..generation.constraints import IDConstraint, gather_code_logits


def _id_modalities(ids: torch.Tensor, constraint: IDConstraint) -> torch.Tensor:
    mod = constraint.modality_of_ids(ids[:, 0])
    if (mod < 0).any():
        raise GenRecError(
            "id_softmax='prefix': a label does not start with a semantic ID of "
            f"{constraint.modalities}; this loss serves ID-prediction tasks only"
        )
    return mod


def _legal_code_loss(
    scores: torch.Tensor, ids: torch.Tensor, mod: torch.Tensor, constraint: IDConstraint, smoothing: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy of ``ids`` [N, L] given their code scores [N, L, W], each level over its legal codes;
    ``smoothing`` e: the target distribution is 1 - e on the code and e spread evenly over the legal codes."""
    legal = constraint.legal_codes(ids, mod)
    logp = scores.float().masked_fill(~legal, float("-inf")).log_softmax(-1)
    target = (ids - constraint.token_start[mod]).unsqueeze(-1)
    nll = -logp.gather(-1, target).squeeze(-1)
    if not smoothing:
        return nll.mean()
    uniform = -logp.masked_fill(~legal, 0.0).sum(-1) / legal.sum(-1)
    return ((1 - smoothing) * nll + smoothing * uniform).mean()


def prefix_softmax_loss(
    logits: torch.Tensor, labels: torch.Tensor, constraint: IDConstraint, smoothing: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy of the target IDs' codes, each over the legal codes after its prefix (``smoothing``:
    as ``_legal_code_loss``).

    ``logits`` [B, T, V] and ``labels`` [B, T] as in T5's forward; every label row starts with a full
    semantic ID of one of ``constraint``'s modalities (what every genrec task predicts).
    """
    levels = constraint.levels
    if labels.shape[1] < levels:
        raise GenRecError(f"labels hold {labels.shape[1]} tokens; a semantic ID needs {levels}")
    ids = labels[:, :levels]
    mod = _id_modalities(ids, constraint)
    columns = torch.stack([constraint.code_tokens(mod, t) for t in range(levels)], 1)  # [B, L, W]
    return _legal_code_loss(gather_code_logits(logits[:, :levels], columns), ids, mod, constraint, smoothing)


def packed_id_loss(
    states: torch.Tensor, labels: torch.Tensor, head: nn.Module, constraint: IDConstraint | None, smoothing: float = 0.0
) -> torch.Tensor:
    """The ID loss of a one-pass forward (``GenRecSeq2SeqLMOutput.target_states`` [B, Q, D], ``labels``
    [B, Q], -100 off targets), equal to the row model's loss on the same targets.

    ``constraint`` None: T5's mean cross-entropy over every label token (the EOS included). Else the prefix
    softmax: the labels hold each target's ``levels`` codes (no EOS), and only the code columns of each
    level are computed from ``head`` (a fifth of T5's full-vocabulary logits on two modalities), unless
    ``head`` is not a plain linear layer (a PEFT wrapper), which is asked for every column.
    """
    if constraint is None:
        return F.cross_entropy(head(states[labels != -100]).float(), labels[labels != -100])
    levels = constraint.levels
    ids = labels[labels != -100].view(-1, levels)
    hidden = states[labels != -100].view(-1, levels, states.shape[-1])
    mod = _id_modalities(ids, constraint)
    if type(head) is not nn.Linear or head.bias is not None:
        columns = torch.stack([constraint.code_tokens(mod, t) for t in range(levels)], 1)
        return _legal_code_loss(gather_code_logits(head(hidden), columns), ids, mod, constraint, smoothing)
    scores = hidden.new_full((len(ids), levels, constraint.width), float("-inf"))
    for m in range(len(constraint.modalities)):
        rows = torch.nonzero(mod == m, as_tuple=True)[0]
        for level in range(levels if len(rows) else 0):
            start = int(constraint.token_start[m, level])
            weight = head.weight[start : min(start + constraint.width, constraint.vocab_size)]
            scores[rows, level, : len(weight)] = hidden[rows, level] @ weight.T
    return _legal_code_loss(scores, ids, mod, constraint, smoothing)
