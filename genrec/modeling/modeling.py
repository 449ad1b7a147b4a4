"""``GenRecT5ForConditionalGeneration``: T5 plus MACRec's implicit cross-modal alignment loss.

A subclass, not a copy of T5's forward: it runs T5's own encoder once, reuses those encoder states
for both the decoder and the alignment loss, and hands them to ``T5ForConditionalGeneration.forward``
through ``encoder_outputs`` (so ``generate()``, ``save_pretrained`` and ``from_pretrained`` are T5's).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import T5ForConditionalGeneration
from transformers import initialization as init
from transformers.modeling_outputs import Seq2SeqLMOutput
from transformers.models.t5.modeling_t5 import T5Stack

from .configuration import GenRecT5Config


@dataclass
class GenRecSeq2SeqLMOutput(Seq2SeqLMOutput):
    """``loss`` = ``lm_loss`` + implicit_weight * ``implicit_loss`` (both kept for logging)."""

    lm_loss: torch.FloatTensor | None = None
    implicit_loss: torch.FloatTensor | None = None


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of the encoder states over real (non-pad) tokens: [B, T, D] -> [B, D]."""
    if mask is None:
        return hidden.mean(dim=1)
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def paired_info_nce(pooled: torch.Tensor, pair_ids: torch.Tensor, tau: float) -> torch.Tensor | None:
    """Symmetric InfoNCE between the two views of each pair; the other pairs in the batch are negatives.

    ``pair_ids`` [B]: rows sharing a value >= 0 are the text-ID and image-ID views of one sample, the
    text view first (the collator's order); -1 = unpaired. Returns None when the batch holds no pair.
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

    def continues_item(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Bool [B, T]: the token continues the item before it."""
        # Built from the config on first use (not a buffer: from_pretrained leaves those unset).
        table = getattr(self, "_continues", None)
        if table is None or table.device != input_ids.device:
            table = torch.zeros(self.config.vocab_size, dtype=torch.bool)
            for start, end in self.config.item_continuation_ranges:
                table[start:end] = True
            self._continues = table = table.to(input_ids.device)
        return table[input_ids]

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs):
        if input_ids is None:
            return super().forward(attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        position = (~self.continues_item(input_ids)).long().cumsum(1) - 1  # [B, T] item position of each token
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


class GenRecT5ForConditionalGeneration(T5ForConditionalGeneration):
    config_class = GenRecT5Config
    # T5's loss is a per-batch mean; let Trainer scale it for gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: GenRecT5Config):
        super().__init__(config)
        if getattr(config, "item_pooled_encoder", False):
            self.encoder = ItemPooledT5Stack(self.encoder.config)
            self.post_init()  # ties the new encoder's token table to ``shared`` and initialises it

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
        **kwargs,
    ):
        """T5's forward; with ``pair_ids`` and ``labels`` it adds ``implicit_weight`` * InfoNCE."""
        weight = float(getattr(self.config, "implicit_weight", 0.0))
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
