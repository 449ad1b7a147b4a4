"""Scoring given semantic IDs under the generator by teacher forcing, the way beam search scores them.

Beam search only scores the IDs it keeps. To fuse two modalities' lists on equal terms, each candidate
item needs its score in every modality it has IDs in, also where that modality's beams missed it
(``GenRecPipeline.rank(rescore=True)``). ``score_ids`` gives exactly the beam score
(``constrained_beam_search``): the same normalisation (``config.id_softmax``), EOS term and penalty.
"""

from __future__ import annotations

import torch
from transformers.modeling_outputs import BaseModelOutput

from .beam_search import _shared_cross_attention, decoder_start_token
from .constraints import IDConstraint, gather_code_logits, uses_prefix_softmax


@torch.no_grad()
def score_ids(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    constraint: IDConstraint,
    modality_index: torch.Tensor,
    id_tokens: torch.Tensor,
    owner: torch.Tensor,
    penalty: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scores [N] of full IDs ``id_tokens`` [N, levels] (code token ids, each a real ID of modality index
    ``modality_index`` [R] of its request), ``owner`` [N] the request (row of ``input_ids`` [R, S]) each
    is scored for. The encoder runs once per request."""
    device = input_ids.device
    if len(id_tokens) == 0:
        return torch.zeros(0, device=device)
    if constraint.roots.device != device:
        constraint.to(device)
    levels, prefix_softmax = constraint.levels, uses_prefix_softmax(model.config)
    states = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    logits = _teacher_forced_logits(model, states, attention_mask, id_tokens, owner, decoder_start_token(model))
    mod = modality_index[owner]
    legal = constraint.legal_codes(id_tokens, mod)  # [N, levels, width]
    total = torch.zeros(len(id_tokens), device=device)
    node = constraint.roots[mod]
    for depth in range(levels):
        step = logits[:, depth] if prefix_softmax else torch.log_softmax(logits[:, depth], -1)
        cand = gather_code_logits(step, constraint.code_tokens(mod, depth)).masked_fill(~legal[:, depth], float("-inf"))
        if prefix_softmax:
            cand = cand.log_softmax(-1)
        code = id_tokens[:, depth] - constraint.token_start[mod, depth]
        total += cand.gather(1, code[:, None])[:, 0]
        edge = constraint.trie.edge(node, code)
        if penalty is not None:
            total -= penalty[edge]
        node = constraint.trie.child_node(edge)
    if not prefix_softmax:
        total += torch.log_softmax(logits[:, levels], -1)[:, constraint.eos_token_id]
    return total


def _teacher_forced_logits(model, states, attention_mask, id_tokens, owner, start) -> torch.Tensor:
    """Decoder logits [N, levels + 1, V] of ``start`` + each ID, read against its request's encoder states.

    T5-family decoders attend to one copy of a request's states for all its IDs (each request padded to the
    same count, as beam search shares them among beams); others get a copy per ID."""
    n = len(id_tokens)
    with _shared_cross_attention(model) as shared:
        if not shared:
            rows, take = torch.arange(n, device=owner.device), slice(None)
            states, attention_mask = states[owner], attention_mask[owner]
        else:  # slot of each ID within its request; unused slots (and requests without IDs) decode some ID, unread
            count = torch.bincount(owner, minlength=len(states))
            width = int(count.max())
            first = torch.cumsum(count, 0) - count
            order = torch.argsort(owner, stable=True)
            slot = torch.empty_like(owner)
            slot[order] = torch.arange(n, device=owner.device) - first[owner[order]]
            table = torch.zeros(len(states), width, dtype=torch.long, device=owner.device)
            table[owner, slot] = torch.arange(n, device=owner.device)
            table = torch.where(torch.arange(width, device=owner.device) < count[:, None], table, table[:, :1])
            rows, take = table.view(-1), owner * width + slot
        decoder_input = torch.cat([id_tokens.new_full((len(rows), 1), start), id_tokens[rows]], 1)
        logits = model(
            encoder_outputs=BaseModelOutput(last_hidden_state=states),
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input,
            use_cache=False,
        ).logits
    return logits[take].float()
