"""Building a generator for a tokenizer: a fresh ``GenRecT5ForConditionalGeneration`` sized and keyed from the
tokenizer, ``generate()`` defaults that decode as ``recommend`` does, and code embeddings started at the
quantizer's codebook vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import GenRecError
from ..ranking.config import DEFAULT_NUM_BEAMS
from ..utils import no_hf_progress_bars
from . import GenRecT5Config, GenRecT5ForConditionalGeneration, embedding_rows


class VocabMismatchError(GenRecError, ValueError):
    """The model's vocabulary does not match the tokenizer's."""


def check_vocab(model, tokenizer) -> None:
    size = embedding_rows(model)
    if size != len(tokenizer):
        raise VocabMismatchError(
            f"the model's vocabulary has {size} tokens but the tokenizer has {len(tokenizer)}; build the model "
            f"from this tokenizer (build_generator) or resize it (model.resize_token_embeddings(len(tokenizer)))"
        )


def build_generator(tokenizer, seed: int = 42, **config_overrides) -> GenRecT5ForConditionalGeneration:
    """A fresh generator whose vocabulary and special ids come from ``tokenizer`` (never hard-coded).

    ``embedding_init_rows="ids"`` stands for the rows of the semantic-ID code tokens.
    """
    if config_overrides.get("embedding_init_rows") == "ids":
        first = tokenizer.level_token_start(tokenizer.modalities[0], 0)
        last_m = tokenizer.modalities[-1]
        last = tokenizer.level_token_start(last_m, tokenizer.num_levels(last_m) - 1) + tokenizer.codebook_size(last_m)
        config_overrides = {**config_overrides, "embedding_init_rows": [first, last]}
    if config_overrides.get("history_attention") == "causal":
        # tokens that continue an item: codes of levels >= 2
        config_overrides = {
            **config_overrides,
            "item_continuation_ranges": [
                [
                    tokenizer.level_token_start(m, level),
                    tokenizer.level_token_start(m, level) + tokenizer.codebook_size(m),
                ]
                for m in tokenizer.modalities
                for level in range(1, tokenizer.num_levels(m))
            ],
        }
    config = GenRecT5Config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,  # T5 convention
        **config_overrides,
    )
    torch.manual_seed(seed)
    model = GenRecT5ForConditionalGeneration(config)
    set_generation_defaults(model, tokenizer)
    return model


def set_generation_defaults(model, tokenizer, num_beams: int = DEFAULT_NUM_BEAMS) -> None:
    """Make a plain ``model.generate(**inputs, logits_processor=[...])`` decode the way ``recommend`` does:
    beam search with ``num_beams`` beams (MACRec / MQL4GRec: 20), every beam returned, one ID (+ EOS)."""
    n_ids = min(tokenizer.trie(m).n_leaves for m in tokenizer.modalities)
    gc = model.generation_config
    gc.max_new_tokens = max(tokenizer.num_levels(m) for m in tokenizer.modalities) + 1
    gc.num_beams = gc.num_return_sequences = max(1, min(num_beams, n_ids))
    gc.do_sample, gc.early_stopping, gc.length_penalty = False, True, 1.0


@torch.no_grad()
def init_id_embeddings_from_codebooks(model, tokenizer, quantizer_dir: str | Path, seed: int = 42) -> list[str]:
    """Start the code tokens' embeddings at the quantizer's codebook vectors: code ``c`` of level ``l`` of
    modality ``m`` gets ``codebook[m][l, c] @ P`` with ``P`` a fixed random [latent, d_model] projection
    (Johnson-Lindenstrauss: distances between codes are kept up to a common scale), rescaled per level to
    the std the random init gives those rows. Codes that are close in the quantizer's latent space then
    start close for the generator. Returns the modalities initialised; only a `genrec quantize` folder has
    codebooks, and its IDs must be the tokenizer's (precomputed ID files have no codebook to start from).
    """
    from transformers import AutoModel

    from .. import quantizer as _registers_the_quantizer  # noqa: F401
    from ..layout import MODEL_CONFIG_FILE
    from ..trainers.quantizer_export import sid_file

    qdir = Path(quantizer_dir)
    if not (qdir / MODEL_CONFIG_FILE).is_file():
        raise GenRecError(
            f"{qdir}: no quantizer model (config.json); codebook initialisation needs a `genrec "
            "quantize` output, precomputed semantic-ID files have no codebooks"
        )
    with no_hf_progress_bars():
        quantizer = AutoModel.from_pretrained(qdir, trust_remote_code=False)
    weight = model.get_input_embeddings().weight
    gen = torch.Generator().manual_seed(seed)
    done = []
    for m in quantizer.config.modalities:
        if m not in tokenizer.modalities:
            continue
        sid = qdir / sid_file(m)
        ids = np.load(sid) if sid.is_file() else None
        if ids is not None and not np.array_equal(ids, tokenizer.catalog.codes[m][: len(ids)]):
            raise GenRecError(f"{sid}: these are not the tokenizer's {m} IDs; its codebooks would start other codes")
        codebooks = quantizer.rqvae[m].codebooks.detach().float()  # [L, M, latent]
        proj = torch.randn(codebooks.shape[-1], weight.shape[1], generator=gen) / codebooks.shape[-1] ** 0.5
        for level in range(min(codebooks.shape[0], tokenizer.num_levels(m))):
            start, size = tokenizer.level_token_start(m, level), min(codebooks.shape[1], tokenizer.codebook_size(m))
            rows = weight[start : start + size]
            vecs = codebooks[level, :size] @ proj
            vecs = vecs - vecs.mean(0)
            vecs = vecs / vecs.std().clamp(min=1e-12) * rows.std()
            rows.copy_(vecs.to(rows.dtype))
        done.append(m)
    return done
