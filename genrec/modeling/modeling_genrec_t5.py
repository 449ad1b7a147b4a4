"""``GenRecT5ForConditionalGeneration``: T5 plus MACRec's implicit cross-modal alignment loss.

A subclass, not a copy of T5's forward: it runs T5's own encoder once, reuses those encoder states
for both the decoder and the alignment loss, and hands them to ``T5ForConditionalGeneration.forward``
through ``encoder_outputs`` (so ``generate()``, ``save_pretrained`` and ``from_pretrained`` are T5's).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import T5ForConditionalGeneration
from transformers import initialization as init
from transformers.modeling_outputs import Seq2SeqLMOutput
from transformers.models.t5.modeling_t5 import T5Stack

from .causal_history import CausalHistoryT5Stack, item_positions, sequence_forward
from .configuration_genrec_t5 import GenRecT5Config


@dataclass
class GenRecSeq2SeqLMOutput(Seq2SeqLMOutput):
    """``loss`` = ``lm_loss`` + implicit_weight * ``implicit_loss`` (both kept for logging).

    A one-pass forward over whole sequences (``decoder_history_items`` given) returns no logits and no
    loss: ``target_states`` [B, Q, D] are the decoder's packed states, which the trainer scores against the
    labels (``genrec.trainers.id_loss.packed_id_loss``: only the code columns it needs)."""

    lm_loss: torch.FloatTensor | None = None
    implicit_loss: torch.FloatTensor | None = None
    target_states: torch.FloatTensor | None = None


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of the encoder states over real (non-pad) tokens: [B, T, D] -> [B, D]."""
    if mask is None:
        return hidden.mean(dim=1)
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def paired_info_nce(pooled: torch.Tensor, pair_ids: torch.Tensor, tau: float,
                    groups: torch.Tensor | None = None) -> torch.Tensor | None:
    """Symmetric InfoNCE between the two views of each pair; the other pairs in the batch are negatives.

    ``pair_ids`` [B]: rows sharing a value >= 0 are the text-ID and image-ID views of one sample, the
    text view first (the collator's order); -1 = unpaired. Returns None when the batch holds no pair.
    ``groups`` [B]: pairs of one group (the targets of one user sequence, in one-pass training) are not
    each other's negatives: prefixes of one sequence are near copies, where a row batch holds other users.
    """
    idx = torch.nonzero(pair_ids >= 0, as_tuple=True)[0]
    if idx.numel() < 2:
        return None
    # stable sort keeps text-before-image inside a pair
    idx = idx[torch.sort(pair_ids[idx], stable=True).indices]
    keys = pair_ids[idx]
    if idx.numel() % 2 or not torch.equal(keys[0::2], keys[1::2]):
        raise ValueError("pair_ids must hold each non-negative value exactly twice (one text and one image view)")
    z = F.normalize(pooled[idx].float(), dim=-1)
    a, b = z[0::2], z[1::2]
    logits = a @ b.T / tau
    if groups is not None:
        g = groups[idx][0::2]
        same = (g[:, None] == g[None, :]) & ~torch.eye(len(g), dtype=torch.bool, device=g.device)
        logits = logits.masked_fill(same, float("-inf"))
    target = torch.arange(a.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


class ItemPooledT5Stack(T5Stack):
    """T5's encoder run over one position per item (``config.item_pooled_encoder``).

    A token starts a new position unless it is in ``config.item_continuation_ranges`` (codes of levels
    >= 2), so ``<task> a1 b1 c1 d1 a2 b2 c2 d2 </s>`` becomes 4 positions: task, item 1, item 2, EOS,
    each the mean of its tokens' embeddings. The outputs are gathered back to token positions: every
    token of an item carries the item's state, and the caller's token-level attention mask stays valid
    (a decoder attending to the 4 copies of an item weighs them as one key, item for item).
    """

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs):
        if input_ids is None:
            return super().forward(attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        position = item_positions(self, input_ids)  # [B, T] item position of each token
        batch, width = input_ids.shape[0], int(position.max()) + 1
        tokens = self.embed_tokens(input_ids)
        index = position.unsqueeze(-1).expand_as(tokens)
        sums = tokens.new_zeros(batch, width, tokens.shape[-1]).scatter_add(1, index, tokens)
        counts = tokens.new_zeros(batch, width).scatter_add(1, position, torch.ones_like(position, dtype=tokens.dtype))
        mask = attention_mask.new_zeros(batch, width).scatter_reduce(1, position, attention_mask, "amax",
                                                                     include_self=False)
        out = super().forward(inputs_embeds=sums / counts.clamp(min=1).unsqueeze(-1), attention_mask=mask, **kwargs)
        out.last_hidden_state = out.last_hidden_state.gather(1, position.unsqueeze(-1).expand(
            -1, -1, out.last_hidden_state.shape[-1]))
        return out


def id_keys(token_ids: torch.Tensor, width: torch.Tensor, max_width: int, base: int) -> torch.Tensor:
    """One int64 per position: the ID starting there, its ``width`` tokens read as digits in ``base`` and
    left-aligned to ``max_width`` digits (so IDs of different widths never share a key); 0 where
    ``width`` is 0. ``token_ids`` [..., T] are the IDs' tokens in a row, as in an encoder input."""
    padded = F.pad(token_ids, (0, max_width - 1))
    key = torch.zeros_like(token_ids)
    for level in range(max_width):
        digit = padded[..., level : level + token_ids.shape[-1]]
        key = key * base + torch.where(level < width, digit, 0)
    return torch.where(width > 0, key, 0)


class ItemAwareT5Stack(T5Stack):
    """T5's encoder with a learned vector per catalogue item added to every token of the item's ID
    (``config.num_items`` > 0): the codes say what an item is like, the vector which item it is (the
    collaborative signal an ID-based model such as SASRec keeps in its item table). Shared by an item's
    IDs in every modality. An item is found by its ID tokens in ``item_keys`` (``set_item_keys``); an ID
    with no key (an item added after training) gets no vector and is read from its codes alone.
    """

    def __init__(self, config):
        super().__init__(config)
        self.item_embed = nn.Embedding(config.num_items, config.d_model)
        # Sorted ID keys, the catalogue row of each, and the ID width at each level-1 code token (else 0).
        self.register_buffer("item_keys", torch.zeros(config.num_item_keys, dtype=torch.long))
        self.register_buffer("item_key_rows", torch.zeros(config.num_item_keys, dtype=torch.long))
        self.register_buffer("id_width", torch.zeros(config.vocab_size, dtype=torch.long))

    def _init_weights(self, module):
        super()._init_weights(module)
        if module is getattr(self, "item_embed", None):  # zero vectors: the model starts as plain T5
            init.zeros_(module.weight)

    @torch.no_grad()
    def set_item_keys(self, token_tables: list[torch.Tensor], first_code_ranges: list[tuple[int, int]]) -> None:
        """``token_tables``: per modality, int64 [num_items, levels] token ids of each row's ID (-1 rows:
        no ID); ``first_code_ranges``: per modality, the [start, end) token ids of its level-1 codes."""
        for (start, end), table in zip(first_code_ranges, token_tables):
            self.id_width[start:end] = table.shape[1]
        max_width = int(self.id_width.max())
        if self.config.vocab_size ** max_width >= 2**63:
            raise ValueError(f"IDs of {max_width} tokens over a {self.config.vocab_size}-token vocabulary do not fit an int64 key")
        keys, rows = [], []
        for table in token_tables:
            present = torch.nonzero(table[:, 0] >= 0, as_tuple=True)[0]
            ids = F.pad(table[present], (0, max_width - table.shape[1]), value=0)
            keys.append(id_keys(ids, torch.full_like(ids, table.shape[1]), max_width, self.config.vocab_size)[:, 0])
            rows.append(present)
        keys, rows = torch.cat(keys), torch.cat(rows)
        if keys.numel() != self.item_keys.numel():
            raise ValueError(f"the catalogue has {keys.numel()} IDs, the config num_item_keys {self.item_keys.numel()}")
        order = torch.argsort(keys)
        self.item_keys.copy_(keys[order])
        self.item_key_rows.copy_(rows[order])

    def item_vectors(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[B, T, d_model]: each ID token's item vector (zeros off IDs and for unknown IDs)."""
        width = self.id_width[input_ids]
        max_width = int(self.id_width.max())
        key = id_keys(input_ids, width, max_width, self.config.vocab_size)
        at = torch.searchsorted(self.item_keys, key).clamp(max=self.item_keys.numel() - 1)
        found = (width > 0) & (self.item_keys[at] == key)
        start = self.item_embed(self.item_key_rows[at]) * found.unsqueeze(-1)  # on each ID's first token
        width = torch.where(found, width, 0)
        vectors = start.clone()
        for offset in range(1, max_width):  # spread onto the ID's other tokens
            vectors[:, offset:] += start[:, :-offset] * (offset < width[:, :-offset]).unsqueeze(-1)
        return vectors

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs):
        if input_ids is not None and inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids) + self.item_vectors(input_ids)
        return super().forward(attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs)


class GenRecT5ForConditionalGeneration(T5ForConditionalGeneration):
    config_class = GenRecT5Config
    # T5's loss is a per-batch mean; let Trainer scale it for gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: GenRecT5Config):
        super().__init__(config)
        if getattr(config, "item_pooled_encoder", False):
            self.encoder = ItemPooledT5Stack(self.encoder.config)
            self.post_init()  # ties the new encoder's token table to ``shared`` and initialises it
        elif getattr(config, "num_items", 0):
            self.encoder = ItemAwareT5Stack(self.encoder.config)
            self.post_init()
        elif getattr(config, "history_attention", "full") == "causal":
            self.encoder = CausalHistoryT5Stack(self.encoder.config)
            self.post_init()

    def _init_weights(self, module):
        super()._init_weights(module)
        std = getattr(self.config, "embedding_init_std", None)
        # The token table itself, not the model: transformers skips _init_weights on a custom
        # model's top module (it has no parameters of its own).
        if std is not None and module is getattr(self, "shared", None):
            start, end = getattr(self.config, "embedding_init_rows", None) or (0, module.weight.shape[0])
            init.normal_(module.weight[start:end], mean=0.0, std=std)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pair_ids: torch.LongTensor | None = None,
        encoder_outputs=None,
        labels: torch.LongTensor | None = None,
        decoder_history_items: torch.LongTensor | None = None,
        decoder_segment_ids: torch.LongTensor | None = None,
        pair_groups: torch.LongTensor | None = None,
        **kwargs,
    ):
        """T5's forward; with ``pair_ids`` and ``labels`` it adds ``implicit_weight`` * InfoNCE.

        With ``decoder_history_items`` and ``decoder_segment_ids`` (``GenRecCollator`` on sequence units) it
        is the one-pass forward of ``causal_history.sequence_forward``: ``pair_ids`` then name targets, and
        ``pair_groups`` their sequence units."""
        weight = float(getattr(self.config, "implicit_weight", 0.0))
        if decoder_history_items is not None:
            implicit = pair_ids is not None and weight > 0  # pooling per target is only for this loss
            hidden, pooled = sequence_forward(self, input_ids, attention_mask, kwargs["decoder_input_ids"],
                                              decoder_history_items, decoder_segment_ids, pool=implicit)
            nce = paired_info_nce(pooled, pair_ids, self.config.implicit_tau, pair_groups) if implicit else None
            return GenRecSeq2SeqLMOutput(implicit_loss=nce, target_states=hidden)
        implicit = pair_ids is not None and labels is not None and weight > 0 and encoder_outputs is None
        if implicit:
            encoder_outputs = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=kwargs.pop("inputs_embeds", None)
            )
        as_tuple = kwargs.pop("return_dict", True) is False
        out = super().forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            encoder_outputs=encoder_outputs,
            labels=labels,
            return_dict=True,
            **kwargs,
        )
        nce = None
        if implicit:
            hidden = encoder_outputs[0] if isinstance(encoder_outputs, tuple) else encoder_outputs.last_hidden_state
            nce = paired_info_nce(masked_mean(hidden, attention_mask), pair_ids, self.config.implicit_tau)
        loss = out.loss if nce is None else out.loss + weight * nce
        result = GenRecSeq2SeqLMOutput(**{**out, "loss": loss}, lm_loss=out.loss, implicit_loss=nce)
        return result.to_tuple() if as_tuple else result
