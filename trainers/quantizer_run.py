"""``train_quantizer`` (``genrec quantize``): one quantizer run end to end (checks, lock, training, the artifact)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from ..data.loading import GenRecData, load_dataset_dir
from ..errors import GenRecError
from ..quantizer import CrossModalRQVAE, CrossModalRQVAEConfig
from ..utils import check_output_dir, check_outside_inputs, output_lock, set_seed
from .quantizer_config import QuantizerTrainingArguments
from .quantizer_export import sid_file
from .quantizer_trainer import QuantizerTrainer

logger = logging.getLogger("genrec.quantize")


def train_quantizer(
    data: GenRecData | str | os.PathLike,
    out: str | os.PathLike,
    config: CrossModalRQVAEConfig | dict | None = None,
    args: QuantizerTrainingArguments | None = None,
    modalities: list[str] | None = None,
    overwrite: bool = False,
    id_modalities: list[str] | None = None,
) -> tuple[CrossModalRQVAE, dict]:
    """Train on a dataset's ``*_emb.npy`` and write the artifact to ``out``; returns (model, metrics).

    ``config``: a config, or a dict of config overrides (modalities / input_dims come from the data).
    ``id_modalities``: modalities taken from the dataset's ``sid_<m>.npy`` only (no embeddings needed);
    their ID prefixes drive the contrastive loss (``CrossModalRQVAEConfig.id_modalities``); no IDs are
    written for them.
    ``args.checkpoint_dir`` defaults to ``<out>.checkpoints``.
    """
    if not isinstance(data, GenRecData):
        data = load_dataset_dir(data)
    check_output_dir(out, "quantizer", inputs=[data.path], overwrite=overwrite)
    available = list(data.embeddings)
    modalities = modalities or (list(config.modalities) if isinstance(config, CrossModalRQVAEConfig) else available)
    absent = [m for m in modalities if m not in data.embeddings]
    if absent or not modalities:
        raise GenRecError(
            f"{data.path}: no embeddings for {absent or 'any modality'} "
            f"(expected {', '.join(f'{m}_emb.npy' for m in absent or ['text', 'image'])}); "
            "compute them with `genrec embed`"
        )
    emb = {m: data.embeddings[m] for m in modalities}
    if not isinstance(config, CrossModalRQVAEConfig):
        try:
            config = CrossModalRQVAEConfig(
                modalities=modalities,
                input_dims=[emb[m].shape[1] for m in modalities],
                **{"id_modalities": id_modalities or [], **(config or {})},
            )
        except ValueError as e:  # a setting no model can be built from: a user error, not a crash
            raise GenRecError(f"quantizer settings: {e}") from None
    no_ids = [m for m in config.id_modalities if m not in data.semantic_ids]
    if no_ids:
        raise GenRecError(
            f"{data.path}: IDs-only modalities {no_ids} need {', '.join(sid_file(m) for m in no_ids)} in the dataset"
        )
    args = args or QuantizerTrainingArguments()
    if args.checkpoint_dir is None:
        args.checkpoint_dir = str(Path(out).with_name(Path(out).name + ".checkpoints"))
    check_outside_inputs(args.checkpoint_dir, [data.path], "--checkpoint-dir")
    set_seed(args.seed)
    model = CrossModalRQVAE(config)
    t0 = time.perf_counter()
    with output_lock(out, args.checkpoint_dir):
        trainer = QuantizerTrainer(model, emb, args, {m: data.semantic_ids[m] for m in config.id_modalities})
        trainer.train()
        metrics = trainer.export(out, data.item_ids, overwrite=overwrite)
    logger.info("quantizer trained in %.1f s; wrote %s", time.perf_counter() - t0, out)
    return model, metrics
