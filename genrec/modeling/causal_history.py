"""Causal history attention (``GenRecT5Config.history_attention == "causal"``) and the one-pass forward it allows.

A per-row model re-encodes a user's history once for every next-item target in it: a sequence of n items
is n - 1 rows whose encoder inputs are 1, 2, ..., n - 1 items long. Under the causal rule the encoder state
of item t does not depend on the items after it, so one encoder pass over the whole sequence gives, for
every target, exactly the states a row ending before that target would give (``sequence_forward``).

Two more rules keep a row input ``<task> h1 .. hk </s>`` (what ranking feeds) and a prefix of the packed
sequence identical, key for key, for the decoder:

- The EOS sees only itself and no other token sees it, so its state is the same at the end of any history.
- Recency: a causal state cannot know how many items follow it, yet how recent an item is matters most for
  the next one (full attention tells every token its distance to the input's end). So each history item's
  output state gets a learned vector by its recency, ``recency[k - t]`` for item t of a history of k items
  (0 = the latest; zero at initialisation). Ranking adds it in the encoder; training, where each target has
  its own k, adds it inside the cross-attention instead (``_targets_cross_attention``), which is the same
  arithmetic because T5's key and value projections are linear.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface
from transformers import initialization as init
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.t5.modeling_t5 import T5Stack
from transformers.models.t5.modeling_t5 import eager_attention_forward as t5_eager_attention


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


def item_positions(module, input_ids: torch.Tensor) -> torch.Tensor:
    """Int [B, T]: 0 for the task token, t for the tokens of the t-th item after it (a token starts an item
    unless it ``continues_item``; the EOS and padding count on)."""
    return (~continues_item(module, input_ids)).long().cumsum(1) - 1


def attention_mask_for(allowed: torch.Tensor, config, dtype: torch.dtype) -> torch.Tensor:
    """A prepared 4D mask [B, 1, Q, K] from bool ``allowed`` [B, Q, K] in the form T5's attention takes it:
    bool for sdpa (T5 turns it into a bias there), additive for eager."""
    impl = config._attn_implementation
    if impl.endswith("sdpa"):
        return allowed[:, None]
    if impl.endswith("eager"):
        return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
            ~allowed, torch.finfo(dtype).min
        )[:, None]
    raise ValueError(f"history_attention='causal' supports sdpa and eager attention, not {impl!r}")


class CausalHistoryT5Stack(T5Stack):
    """T5's encoder under the causal history rule, with recency vectors on its outputs (module docstring).
    The caller's 2D padding mask is turned into the 4D mask here, so ``generate()``, beam search and
    rescoring all read histories by it."""

    def __init__(self, config):
        super().__init__(config)
        self.recency = nn.Embedding(config.recency_buckets, config.d_model)

    def _init_weights(self, module):
        super()._init_weights(module)
        if module is getattr(self, "recency", None):  # zero vectors: training starts from plain causal T5
            init.zeros_(module.weight)

    def history_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None):
        """(item index [B, T], EOS [B, T], real tokens [B, T], history-item tokens [B, T])."""
        item = item_positions(self, input_ids)
        eos = input_ids == self.config.eos_token_id
        real = torch.ones_like(eos) if attention_mask is None else attention_mask.bool()
        return item, eos, real, real & ~eos & (item > 0)

    def recency_buckets(self, item: torch.Tensor, history: torch.Tensor, reads: torch.Tensor) -> torch.Tensor:
        """Recency bucket (``reads`` - item index, capped) of each history-item token for readers that read
        ``reads`` items; -1 where there is no vector (task token, EOS, padding, items past ``reads``)."""
        rec = reads - item
        return torch.where(history & (rec >= 0), rec.clamp(max=self.config.recency_buckets - 1), -1)

    def history_mask(self, item: torch.Tensor, eos: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Bool [B, T, T]: query token i may attend to key token j."""
        allowed = (item[:, None, :] <= item[:, :, None]) & ~eos[:, None, :] & ~eos[:, :, None]
        diagonal = torch.eye(item.shape[1], dtype=torch.bool, device=item.device)
        return (allowed & real[:, None, :]) | diagonal

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, with_recency: bool = True, **kwargs):
        """``with_recency=False``: the states without recency vectors (one-pass training adds them per target)."""
        if input_ids is None:
            raise ValueError("history_attention='causal' finds items in input_ids; inputs_embeds alone cannot say")
        item, eos, real, history = self.history_tokens(input_ids, attention_mask)
        mask = attention_mask_for(self.history_mask(item, eos, real), self.config, self.embed_tokens.weight.dtype)
        out = super().forward(input_ids=input_ids, attention_mask=mask, inputs_embeds=inputs_embeds, **kwargs)
        if with_recency:
            reads = item.masked_fill(~history, 0).amax(1, keepdim=True)  # the items of each history
            rec = self.recency_buckets(item, history, reads)
            out.last_hidden_state = out.last_hidden_state + self.recency(rec.clamp(min=0)) * (rec >= 0)[..., None]
        return out


def sequence_forward(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    decoder_input_ids: torch.Tensor,
    decoder_history_items: torch.Tensor,
    decoder_segment_ids: torch.Tensor,
    pool: bool = True,
):
    """Every target of each encoder row in one pass. Returns the decoder's output states [B, Q, D] (scaled
    as T5 scales them before ``lm_head``) and, with ``pool``, the pooled encoder states each target reads
    [N, D] (segment order, row by row; for the implicit loss, as a row model pools its whole input), else None.

    ``decoder_input_ids`` [B, Q]: the rows' targets packed one after another, each ``start + its ID`` (one
    length for all); ``decoder_segment_ids`` [B, Q]: which target (1, 2, ...; 0 = padding) each position
    belongs to; ``decoder_history_items`` [B, Q]: how many history items of the row that target reads.
    The decoder runs the targets as rows of their own (T5's causal self-attention over one ID); a row's
    targets cross-attend to one copy of its encoder states, each with its own mask and recency.
    """
    encoder = model.get_encoder()
    if not isinstance(encoder, CausalHistoryT5Stack):
        raise ValueError(
            "training_mode='sequences' needs a model with history_attention='causal' (its encoder "
            "states of a prefix must not depend on the items after it)"
        )
    states = encoder(input_ids=input_ids, attention_mask=attention_mask, with_recency=False).last_hidden_state
    item, eos, real, history = encoder.history_tokens(input_ids, attention_mask)
    reads = decoder_history_items[:, :, None]
    cross = (((item[:, None, :] <= reads) & ~eos[:, None, :]) | eos[:, None, :]) & real[:, None, :]  # [B, Q, S]
    rec = encoder.recency_buckets(item[:, None, :], history[:, None, :], reads)
    batch, width = decoder_input_ids.shape
    length = int((decoder_segment_ids == 1).sum(1).max())
    if width % length or not bool(((decoder_segment_ids > 0).sum(1) % length == 0).all()):
        raise ValueError("training_mode='sequences' needs IDs of one length in every modality")
    decoder = model.get_decoder()
    with _targets_attention(decoder):
        hidden = decoder(
            input_ids=decoder_input_ids.view(-1, length),
            encoder_hidden_states=states,
            encoder_attention_mask=attention_mask_for(cross, decoder.config, states.dtype),
            recency_buckets=rec,
            recency_vectors=encoder.recency.weight,
        ).last_hidden_state
    hidden = hidden.view(batch, width, -1)
    if model.config.scale_decoder_outputs:
        hidden = hidden * (model.model_dim**-0.5)
    return hidden, _pooled_per_target(states, cross, rec, encoder.recency.weight, decoder_segment_ids) if pool else None


def _bucket_weights(weights: torch.Tensor, rec: torch.Tensor, buckets: int) -> torch.Tensor:
    """[..., S] weights summed per recency bucket: [..., buckets] (-1 tokens fall out)."""
    out = weights.new_zeros(*weights.shape[:-1], buckets + 1)
    return out.scatter_add(-1, torch.where(rec >= 0, rec, buckets).expand_as(weights), weights)[..., :buckets]


def _pooled_per_target(states, cross, rec, vectors, segment_ids) -> torch.Tensor:
    """The mean of the (recency-added) encoder states each target reads, at the first position of each
    target: [N, D]."""
    first = (segment_ids > 0) & (segment_ids != F.pad(segment_ids, (1, 0))[:, :-1])
    count = first.sum(1)
    # each row's target starts, left-aligned: [B, T] positions, padded with 0
    order = torch.argsort((~first).to(torch.int8), dim=1, stable=True)[:, : int(count.max())]
    visible = cross.gather(1, order[:, :, None].expand(-1, -1, cross.shape[-1])).to(states.dtype)
    recency = _bucket_weights(visible, rec.gather(1, order[:, :, None].expand(-1, -1, rec.shape[-1])), len(vectors))
    pooled = (torch.bmm(visible, states) + recency @ vectors) / visible.sum(-1, keepdim=True).clamp_min(1.0)
    return pooled[torch.arange(order.shape[1], device=segment_ids.device) < count[:, None]]


def _targets_cross_attention(
    module, query, key, value, attention_mask, recency_buckets=None, recency_vectors=None, **kwargs
):
    """The decoder's attention in one-pass training. Self-attention (one target's ID) runs as usual. In
    cross-attention, the targets of a row (query rows = targets x key rows) attend to its one copy of the
    keys as one query of targets x ID-length positions, each position with its own mask, and with the
    recency vectors of its history added to keys and values: ``k(s + r) = k(s) + k(r)``."""
    impl = module.config._attn_implementation.removeprefix(_TARGETS_PREFIX)
    inner = t5_eager_attention if impl == "eager" else ALL_ATTENTION_FUNCTIONS[impl]
    rows, heads, q_len, dim = query.shape
    groups = rows // key.shape[0]
    if key.shape[0] == rows:
        return inner(module, query, key, value, attention_mask, **kwargs)
    query = query.view(key.shape[0], groups, heads, q_len, dim).transpose(1, 2).reshape(key.shape[0], heads, -1, dim)
    # [R, H, d]: the recency vectors through this layer's key and value projections
    r_key, r_value = (proj(recency_vectors).view(len(recency_vectors), heads, dim) for proj in (module.k, module.v))
    rec = recency_buckets[:, None]  # [B, 1, targets x L, S]
    extra = torch.einsum("bhqd,rhd->bhqr", query, r_key).gather(-1, rec.clamp(min=0).expand(-1, heads, -1, -1))
    scores = (query @ key.transpose(-1, -2) + extra.masked_fill(rec < 0, 0.0)) * kwargs.get("scaling", 1.0)
    if attention_mask.dtype == torch.bool:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    else:
        scores = scores + attention_mask
    weights = F.dropout(scores.softmax(-1), p=kwargs.get("dropout", 0.0), training=module.training)
    out = weights @ value + torch.einsum("bhqr,rhd->bhqd", _bucket_weights(weights, rec, len(recency_vectors)), r_value)
    return out.transpose(1, 2).reshape(rows, q_len, heads, dim), None


_TARGETS_PREFIX = "genrec_targets_"
for _impl in ("sdpa", "eager"):
    AttentionInterface.register(_TARGETS_PREFIX + _impl, _targets_cross_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(_TARGETS_PREFIX + _impl, ALL_MASK_ATTENTION_FUNCTIONS[_impl])


@contextlib.contextmanager
def _targets_attention(decoder):
    """Switch the decoder to ``_targets_cross_attention`` for one forward."""
    config = decoder.config
    impl = config._attn_implementation
    if impl not in ("sdpa", "eager"):
        raise ValueError(f"training_mode='sequences' supports sdpa and eager attention, not {impl!r}")
    config._attn_implementation = _TARGETS_PREFIX + impl
    try:
        yield
    finally:
        config._attn_implementation = impl
