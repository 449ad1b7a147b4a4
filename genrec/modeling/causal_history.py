"""Causal history attention (``GenRecT5Config.history_attention == "causal"``) and the one-pass forward it allows.

A per-row model re-encodes a user's history once for every next-item target in it: a sequence of n items
is n - 1 rows whose encoder inputs are 1, 2, ..., n - 1 items long. Under the causal rule the encoder state
of item t does not depend on the items after it, so one encoder pass over the whole sequence gives, for
every target, exactly the states a row ending before that target would give. The decoder then reads all
targets of a sequence as one packed row: each target's tokens attend to their own target only (T5's
decoder bias is relative, so a segment sees the distances it would see alone), and cross-attend to the
task token, the items before the target and the EOS (``sequence_forward``).

The EOS token sees only itself and no other token sees it, so its state is the same at the end of any
history: a row input ``<task> h1 .. hk </s>`` (what ranking feeds) and a prefix of the packed sequence
give the decoder the same keys, token for token.
"""

from __future__ import annotations

import torch
from transformers.models.t5.modeling_t5 import T5Stack


def continues_item(module, input_ids: torch.Tensor) -> torch.Tensor:
    """Bool [B, T]: the token continues the item before it (a code of level >= 2, from the config's
    ``item_continuation_ranges``). The table is built on first use: not a buffer, since ``from_pretrained``
    leaves buffers that are not in the checkpoint unset."""
    table = getattr(module, "_continues", None)
    if table is None or table.device != input_ids.device:
        table = torch.zeros(module.config.vocab_size, dtype=torch.bool)
        for start, end in module.config.item_continuation_ranges:
            table[start:end] = True
        module._continues = table = table.to(input_ids.device)
    return table[input_ids]


def attention_mask_for(allowed: torch.Tensor, config, dtype: torch.dtype) -> torch.Tensor:
    """A prepared 4D mask [B, 1, Q, K] from bool ``allowed`` [B, Q, K] in the form T5's attention takes it:
    bool for sdpa (T5 turns it into a bias there), additive for eager."""
    impl = config._attn_implementation
    if impl.endswith("sdpa"):
        return allowed[:, None]
    if impl.endswith("eager"):
        return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
            ~allowed, torch.finfo(dtype).min)[:, None]
    raise ValueError(f"history_attention='causal' supports sdpa and eager attention, not {impl!r}")


class CausalHistoryT5Stack(T5Stack):
    """T5's encoder under the causal history rule (see the module docstring); the caller's 2D padding mask
    is turned into the 4D mask here, so ``generate()``, beam search and rescoring all read histories by it."""

    def item_index(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Int [B, T]: 0 for the task token, t for the tokens of the t-th history item (the EOS and padding
        count on, but are masked apart)."""
        return (~continues_item(self, input_ids)).long().cumsum(1) - 1

    def history_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Bool [B, T, T]: query token i may attend to key token j."""
        item = self.item_index(input_ids)
        eos = input_ids == self.config.eos_token_id
        keys = torch.ones_like(eos) if attention_mask is None else attention_mask.bool()
        allowed = (item[:, None, :] <= item[:, :, None]) & ~eos[:, None, :] & ~eos[:, :, None]
        diagonal = torch.eye(input_ids.shape[1], dtype=torch.bool, device=input_ids.device)
        return (allowed & keys[:, None, :]) | diagonal

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs):
        if input_ids is None:
            raise ValueError("history_attention='causal' finds items in input_ids; inputs_embeds alone cannot say")
        dtype = self.embed_tokens.weight.dtype
        mask = attention_mask_for(self.history_mask(input_ids, attention_mask), self.config, dtype)
        return super().forward(input_ids=input_ids, attention_mask=mask, inputs_embeds=inputs_embeds, **kwargs)


def sequence_forward(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, decoder_input_ids: torch.Tensor,
                     decoder_history_items: torch.Tensor, decoder_segment_ids: torch.Tensor):
    """Every target of each encoder row in one pass. Returns the decoder's output states [B, Q, D] (scaled
    as T5 scales them before ``lm_head``), the encoder states and the cross-attention mask [B, Q, S].

    ``decoder_input_ids`` [B, Q]: the rows' targets packed one after another, each ``start + its ID`` (one
    length for all); ``decoder_segment_ids`` [B, Q]: which target (1, 2, ...; 0 = padding) each position
    belongs to; ``decoder_history_items`` [B, Q]: how many history items of the row that target may read.
    The decoder runs the targets as rows of their own (T5's causal self-attention over one ID), and each
    row's targets cross-attend to one copy of its encoder states, as beam search's beams do.
    """
    from ..generation.beam_search import _shared_cross_attention

    encoder = model.get_encoder()
    if not isinstance(encoder, CausalHistoryT5Stack):
        raise ValueError("training_mode='sequences' needs a model with history_attention='causal' (its encoder "
                         "states of a prefix must not depend on the items after it)")
    states = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    item = encoder.item_index(input_ids)
    eos = input_ids == model.config.eos_token_id
    readable = ((item[:, None, :] <= decoder_history_items[:, :, None]) & ~eos[:, None, :]) | eos[:, None, :]
    cross = readable & attention_mask.bool()[:, None, :]
    batch, width = decoder_input_ids.shape
    length = int((decoder_segment_ids == 1).sum(1).max())
    if width % length or not bool(((decoder_segment_ids > 0).sum(1) % length == 0).all()):
        raise ValueError("training_mode='sequences' needs IDs of one length in every modality")
    with _shared_cross_attention(model) as shared:
        if not shared:
            raise ValueError("training_mode='sequences' needs a T5 decoder with sdpa or eager attention")
        decoder = model.get_decoder()
        hidden = decoder(input_ids=decoder_input_ids.view(-1, length), encoder_hidden_states=states,
                         encoder_attention_mask=attention_mask_for(cross, decoder.config, states.dtype)
                         ).last_hidden_state.view(batch, width, -1)
    if model.config.scale_decoder_outputs:
        hidden = hidden * (model.model_dim ** -0.5)
    return hidden, states, cross


def target_pooled_states(states: torch.Tensor, cross: torch.Tensor, decoder_segment_ids: torch.Tensor) -> torch.Tensor:
    """Per target (segment order, row by row): the mean of the encoder states it reads, [N, D], as a row
    model's implicit loss pools its whole input (``masked_mean``)."""
    seg = decoder_segment_ids
    first = (seg > 0) & (seg != torch.nn.functional.pad(seg, (1, 0))[:, :-1])
    count = first.sum(1)
    # each row's segment starts, left-aligned: [B, T] positions (padded with 0) -> their masks [B, T, S]
    order = torch.argsort((~first).to(torch.int8), dim=1, stable=True)[:, : int(count.max())]
    visible = cross.gather(1, order[:, :, None].expand(-1, -1, cross.shape[-1])).to(states.dtype)
    pooled = torch.bmm(visible, states) / visible.sum(-1, keepdim=True).clamp_min(1.0)
    return pooled[torch.arange(order.shape[1], device=seg.device) < count[:, None]]
