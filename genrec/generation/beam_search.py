"""Fast path: batched beam search over fixed-length semantic IDs, written directly on the model.

Same result as ``model.generate(num_beams=B, logits_processor=[TrieConstrainedLogitsProcessor],
length_penalty=0)`` (top-K IDs and scores), but it runs the encoder once, the first decoder step once
per request instead of once per beam (so the cross-attention keys/values of the history are
projected once, then copied to the beams), and restricts each step to the ``width`` codes of the
current level, gathered by trie node for all beams at once. For T5-style decoders (sdpa or eager
attention) the cross-attention cache is not even copied: all beams of a request attend to one copy,
as a query of ``beams`` positions (``_shared_cross_attention``), which is what makes it fast on CPU;
other models get a per-beam copy. generate() cannot do either because it is generic: it keeps a
cross-attention cache per beam and reads all of it at every step.

Score of an ID = sum of the log-probabilities (log-softmax over the whole vocabulary, as generate()
computes them) of its ``levels`` code tokens **and of the closing EOS**, exactly the beam score of
generate() with ``length_penalty=0``; MQL4GRec/MACRec's ``sequences_scores`` are this sum divided
by ``levels + 1`` (their default length_penalty 1.0), which ranks identically.

A model trained with ``config.id_softmax == "prefix"`` (its loss normalised over the codes that may
legally follow each prefix) is scored the same way: each code's log-softmax over the legal codes only,
and the forced EOS adds 0. Scoring it over the whole vocabulary would mix two normalisations.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass

import torch
from transformers import AttentionInterface
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
from transformers.modeling_outputs import BaseModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.t5.modeling_t5 import T5ForConditionalGeneration, T5Stack
from transformers.models.t5.modeling_t5 import eager_attention_forward as t5_eager_attention

from .. import DEFAULT_NUM_BEAMS
from .constraints import IDConstraint, gather_code_logits, uses_prefix_softmax

# transformers renamed ``past_key_values`` to ``cache`` (5.2x; the old name warns, then goes in 5.40).
_CACHE_ARG = (
    "cache" if "cache" in inspect.signature(T5ForConditionalGeneration.forward).parameters else "past_key_values"
)


@dataclass
class BeamSearchOutput:
    """Per request, best first: ``leaves`` global leaf ids of ``constraint`` (-1: fewer valid IDs than
    asked), ``scores`` (-inf for those), ``tokens`` the generated code tokens [batch, K, levels]."""

    leaves: torch.Tensor
    scores: torch.Tensor
    tokens: torch.Tensor


@torch.no_grad()
def constrained_beam_search(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    constraint: IDConstraint,
    modality_index: torch.Tensor | int = 0,
    num_beams: int = DEFAULT_NUM_BEAMS,
    num_return_sequences: int | None = None,
    penalty: torch.Tensor | None = None,
) -> BeamSearchOutput:
    """Beam search of ``num_beams`` beams per request (row of ``input_ids``) over valid IDs only.

    ``modality_index``: per request, which of ``constraint.modalities`` to decode (one int: all).
    ``penalty`` [n_edges]: subtracted from the score of each trie edge (a code chosen at a node) a beam
    takes (popularity correction: ``a * constraint.log_prior(weights)``); beams are pruned on the
    corrected scores, which are the scores returned.
    """
    k_out = num_return_sequences or num_beams
    if k_out > num_beams:
        raise ValueError(f"num_return_sequences ({k_out}) cannot exceed num_beams ({num_beams})")
    device = input_ids.device
    if constraint.roots.device != device:
        constraint.to(device)
    mod = torch.as_tensor(modality_index, dtype=torch.long, device=device).expand(input_ids.shape[0]).contiguous()
    with _shared_cross_attention(model) as shares_cross_cache:
        return _search(model, input_ids, attention_mask, constraint, mod, num_beams, k_out, shares_cross_cache, penalty)


def _search(model, input_ids, attention_mask, constraint, mod, num_beams, k_out, shares_cross_cache, penalty):
    device, batch = input_ids.device, input_ids.shape[0]
    levels, width, trie = constraint.levels, constraint.width, constraint.trie
    start, prefix_softmax = decoder_start_token(model), uses_prefix_softmax(model.config)
    encoder_states = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    cache = EncoderDecoderCache(DynamicCache(config=model.config), DynamicCache(config=model.config))
    step_tokens = torch.full((batch, 1), start, dtype=torch.long, device=device)

    node = constraint.roots[mod][:, None]  # [batch, beams alive]; one beam (the empty prefix) at first
    beam_scores = torch.zeros(batch, 1, device=device)
    tokens = torch.empty(batch, 1, 0, dtype=torch.long, device=device)
    for depth in range(levels + 1):
        out = model(
            encoder_outputs=BaseModelOutput(last_hidden_state=encoder_states),
            attention_mask=attention_mask,
            decoder_input_ids=step_tokens,
            use_cache=True,
            **{_CACHE_ARG: cache},
        )
        logits = out.logits[:, -1].float()
        log_probs = logits if prefix_softmax else torch.log_softmax(logits, dim=-1)
        beams = node.shape[1]
        if depth == levels:  # every beam holds a full ID: close it with EOS and rank
            return _close_with_eos(log_probs, beam_scores, node, tokens, constraint, prefix_softmax, k_out)

        # candidates: every beam x every code of this level, scored by gathered log-probs
        code_tok = constraint.code_tokens(mod, depth)  # [batch, width]
        cand = gather_code_logits(log_probs.view(batch, beams, -1), code_tok[:, None, :].expand(-1, beams, -1))
        edge = trie.edges_of(node)  # [batch, beams, width]; -1 where no item continues the prefix
        cand = cand.masked_fill(edge < 0, float("-inf"))
        if prefix_softmax:  # dead beams (all -inf) stay -inf instead of turning into NaN
            cand = torch.where(cand.isinf().all(-1, keepdim=True), cand, cand.log_softmax(-1))
        if penalty is not None:
            cand = cand - torch.where(edge >= 0, penalty[edge.clamp(min=0)], 0.0)
        cand = (cand + beam_scores[..., None]).view(batch, -1)
        beam_scores, flat = cand.topk(min(num_beams, cand.shape[1]), dim=1)
        src_beam, code = flat // width, flat % width
        alive = beam_scores > float("-inf")
        node = torch.where(alive, trie.child_node(edge.view(batch, -1).gather(1, flat)), -1)
        # a dead beam may hold the dump id of a code past a smaller codebook (no real token): feed it EOS
        new_tok = torch.where(alive, code_tok.gather(1, code), constraint.eos_token_id)
        tokens = torch.cat([tokens.gather(1, src_beam[..., None].expand(-1, -1, depth)), new_tok[..., None]], dim=2)

        encoder_states, attention_mask = _follow_beams(
            cache, encoder_states, attention_mask, src_beam, beams, first_step=depth == 0 and not shares_cross_cache
        )
        step_tokens = new_tok.view(-1, 1)
    raise AssertionError("unreachable")


def decoder_start_token(model) -> int:
    """The token the decoder starts from: the generation config's, else the model config's (as generate())."""
    start = model.generation_config.decoder_start_token_id
    return model.config.decoder_start_token_id if start is None else start


def _close_with_eos(log_probs, beam_scores, node, tokens, constraint, prefix_softmax, k_out) -> BeamSearchOutput:
    """The last step: add each full ID's EOS score and keep the best ``k_out`` IDs per request."""
    batch, beams = node.shape
    eos = 0.0 if prefix_softmax else log_probs[:, constraint.eos_token_id].view(batch, beams)
    final = beam_scores + eos
    scores, order = final.topk(min(k_out, beams), dim=1)
    leaves = torch.where(scores > float("-inf"), constraint.trie.leaf_of(node.gather(1, order)), -1)
    out_tokens = tokens.gather(1, order[..., None].expand(-1, -1, constraint.levels))
    return _pad_to(BeamSearchOutput(leaves, scores, out_tokens), k_out)


def _follow_beams(cache, encoder_states, attention_mask, src_beam, beams, first_step):
    """Keep the decoder cache (and, at the first step, the encoder rows) in step with the surviving beams."""
    # After the first step the cross-attention cache is identical for all beams of a request, so only
    # self-attention moves.
    rows = (torch.arange(src_beam.shape[0], device=src_beam.device)[:, None] * beams + src_beam).view(-1)
    if first_step:  # one row per request -> one row per beam
        cache.reorder_cache(rows)
        return encoder_states.index_select(0, rows), attention_mask.index_select(0, rows)
    cache.self_attention_cache.reorder_cache(rows)
    return encoder_states, attention_mask


_SHARED_PREFIX = "genrec_shared_cross_"


def _shared_kv_attention(module, query, key, value, attention_mask, **kwargs):
    """Attention where the keys/values of a request serve all its beams (query rows = beams x key rows), or
    all the IDs it scores by teacher forcing (``genrec.generation.scoring``).

    The beams become query positions of one row, so the cross-attention cache stays one copy per
    request. Otherwise (self-attention, first step) the wrapped implementation runs unchanged.
    """
    impl = module.config._attn_implementation.removeprefix(_SHARED_PREFIX)
    inner = t5_eager_attention if impl == "eager" else ALL_ATTENTION_FUNCTIONS[impl]
    rows, heads, q_len, dim = query.shape
    groups = rows // key.shape[0]
    if groups == 1:
        return inner(module, query, key, value, attention_mask, **kwargs)
    # Only cross-attention shares keys: its mask (padding) and bias (zero) are the same for every query
    # position, so one position's row serves the groups x q_len positions (teacher forcing: q_len > 1).
    if attention_mask is not None:
        attention_mask = attention_mask[:, :, :1]
    if kwargs.get("position_bias") is not None:
        kwargs["position_bias"] = kwargs["position_bias"][:, :, :1]
    query = query.view(key.shape[0], groups, heads, q_len, dim).transpose(1, 2).reshape(key.shape[0], heads, -1, dim)
    out, _ = inner(module, query, key, value, attention_mask, **kwargs)  # [requests, groups * q_len, heads, dim]
    return out.reshape(rows, q_len, heads, dim), None


for _impl in ("sdpa", "eager"):
    AttentionInterface.register(_SHARED_PREFIX + _impl, _shared_kv_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(_SHARED_PREFIX + _impl, ALL_MASK_ATTENTION_FUNCTIONS[_impl])


@contextlib.contextmanager
def _shared_cross_attention(model):
    """Switch the decoder of a T5-family model to ``_shared_kv_attention`` for the duration; yield
    whether it was switched (False: other architectures keep a per-beam cross-attention cache)."""
    decoder = model.get_decoder()
    config = decoder.config
    impl = config._attn_implementation
    if not isinstance(decoder, T5Stack) or impl not in ("sdpa", "eager"):
        yield False
        return
    config._attn_implementation = _SHARED_PREFIX + impl
    try:
        yield True
    finally:
        config._attn_implementation = impl


def _pad_to(out: BeamSearchOutput, k: int) -> BeamSearchOutput:
    """Catalogues with fewer than ``k`` reachable IDs: pad with leaf -1 / score -inf."""
    missing = k - out.leaves.shape[1]
    if missing <= 0:
        return out
    b, levels = out.leaves.shape[0], out.tokens.shape[2]
    return BeamSearchOutput(
        torch.cat([out.leaves, out.leaves.new_full((b, missing), -1)], 1),
        torch.cat([out.scores, out.scores.new_full((b, missing), float("-inf"))], 1),
        torch.cat([out.tokens, out.tokens.new_full((b, missing, levels), -1)], 1),
    )
