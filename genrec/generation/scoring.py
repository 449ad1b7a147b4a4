"""Scoring given semantic IDs under the generator by teacher forcing, the way beam search scores them.

Beam search only scores the IDs it keeps. To fuse two modalities' lists on equal terms, each candidate
item needs its score in every modality it has IDs in, also where that modality's beams missed it
(``GenRecPipeline.rank(rescore=True)``). ``score_ids`` gives exactly the beam score
(``constrained_beam_search``): the same normalisation (``config.id_softmax``), EOS term and penalty.
"""

from __future__ import annotations

import torch
from transformers.modeling_outputs import BaseModelOutput

from .constraints import IDConstraint, gather_code_logits


@torch.no_grad()
def score_ids(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, constraint: IDConstraint,
              modality_index: torch.Tensor, id_tokens: torch.Tensor, owner: torch.Tensor,
              penalty: torch.Tensor | None = None) -> torch.Tensor:
    """Scores [N] of full IDs ``id_tokens`` [N, levels] (code token ids, each a real ID of modality index
    ``modality_index`` [R] of its request), ``owner`` [N] the request (row of ``input_ids`` [R, S]) each
    is scored for. The encoder runs once per request."""
    device = input_ids.device
    levels = constraint.levels
    start = model.generation_config.decoder_start_token_id
    if start is None:
        start = model.config.decoder_start_token_id
    prefix_softmax = getattr(model.config, "id_softmax", "full") == "prefix"
    states = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    decoder_input = torch.cat([id_tokens.new_full((len(id_tokens), 1), start), id_tokens], 1)
    logits = model(encoder_outputs=BaseModelOutput(last_hidden_state=states[owner]),
                   attention_mask=attention_mask[owner], decoder_input_ids=decoder_input).logits.float()
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
