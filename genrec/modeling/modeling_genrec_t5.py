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

from .causal_history import CausalHistoryT5Stack, sequence_forward
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


def paired_info_nce(
    pooled: torch.Tensor, pair_ids: torch.Tensor, tau: float, groups: torch.Tensor | None = None
) -> torch.Tensor | None:
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


class GenRecT5ForConditionalGeneration(T5ForConditionalGeneration):
    config_class = GenRecT5Config
    # T5's loss is a per-batch mean; let Trainer scale it for gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: GenRecT5Config):
        super().__init__(config)
        if getattr(config, "history_attention", "full") == "causal":
            self.encoder = CausalHistoryT5Stack(self.encoder.config)
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
            hidden, pooled = sequence_forward(
                self,
                input_ids,
                attention_mask,
                kwargs["decoder_input_ids"],
                decoder_history_items,
                decoder_segment_ids,
                pool=implicit,
            )
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
