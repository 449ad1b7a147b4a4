"""``train_generator``: one run end to end (checks, locks, resume validation, the model to start from, Trainer,
the finished pipeline folder with its run record, publishing)."""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from transformers import EarlyStoppingCallback

from .. import TASK_MODALITIES, __version__
from ..data.hub_dataset import data_source
from ..errors import GenRecError
from ..generation.constraints import uses_prefix_softmax
from ..modeling.factory import build_generator, init_id_embeddings_from_codebooks
from ..tasks import tasks_the_ids_allow
from ..utils import no_hf_progress_bars, quiet_logger
from .checkpoints import RunFingerprintCallback, check_resume_fingerprint, resume_point, run_fingerprint
from .generator_config import GenRecTrainingArguments, make_training_args
from .generator_trainer import (
    GenRecCollator,
    GenRecTrainer,
    RankingMetrics,
    build_datasets,
    check_finite_weights,
    validation_ranker,
)
from .interrupt import interrupts_at_step_end
from .profiles import load_profile

logger = logging.getLogger("genrec.train")


def given_tokenizer(tokenizer, data, quantizer=None):
    """The tokenizer stage's output, checked against the dataset (and the quantizer's IDs)."""
    from ..data.loading import SID_FILES
    from ..tokenizer import SemanticIDTokenizer
    from ..tokenizer.build import load_codes

    if not isinstance(tokenizer, SemanticIDTokenizer):
        path = Path(tokenizer)
        if not path.is_dir():
            raise GenRecError(f"{path}: no tokenizer folder (write one with `genrec tokenize`)")
        tokenizer = SemanticIDTokenizer.from_pretrained(path)
    ids = [str(i) for i in tokenizer.item_ids]
    if ids != [str(i) for i in data.item_ids]:
        raise GenRecError(
            f"the tokenizer's catalogue ({len(ids)} items) does not list the {data.n_items} items of "
            f"{data.path} in their order; build it with `genrec tokenize --data {data.path}`"
        )
    if quantizer is not None:
        for m, codes in load_codes(data, quantizer).items():
            if m not in tokenizer.catalog.codes or not np.array_equal(tokenizer.catalog.codes[m], codes):
                raise GenRecError(
                    f"the tokenizer's {m} IDs differ from {Path(quantizer) / SID_FILES[m]}; "
                    "build the tokenizer from that quantizer"
                )
    return tokenizer


def train_generator(
    data_dir: str | Path,
    out: str | Path,
    quantizer: str | Path | None = None,
    profile: str = "cpu",
    checkpoint_dir: str | Path | None = None,
    resume: str | bool | None = None,
    model_overrides: dict | None = None,
    peft: str | None = None,
    base: str | None = None,
    lora: dict | None = None,
    ranking_metrics: RankingMetrics | None = None,
    overwrite: bool = False,
    tokenizer: str | Path | None = None,
    callbacks: list | None = None,
    trainer_class: type[GenRecTrainer] = GenRecTrainer,
    **training_overrides,
) -> Path:
    """Train a generator and write the pipeline folder ``out`` (atomically, on the main process).
    ``data_dir``: a dataset folder, a Hub dataset repo id, or ``datasets`` objects (``load_dataset_dir``).

    Trainer checkpoints go to ``checkpoint_dir`` (default: ``<out>.checkpoints`` beside ``out``);
    ``resume`` = True resumes from the last checkpoint there, or give a checkpoint path.
    ``peft="lora"`` fine-tunes ``base`` (a generator folder or Hub repo) with LoRA instead.
    ``tokenizer``: the tokenizer stage's output (a folder or a ``SemanticIDTokenizer``), used as it is
    (e.g. with its ``--text-vocab`` pieces); it must list the dataset's items in order, and agree with
    ``quantizer``'s IDs when both are given. Default: built from ``quantizer`` or the dataset's IDs.
    An existing ``out`` is replaced only when it is a genrec generator folder, or with ``overwrite``
    (checked before training starts). ``callbacks``: transformers ``TrainerCallback``s added to the run's;
    ``trainer_class``: a ``GenRecTrainer`` subclass to train with (e.g. one overriding ``compute_loss``).
    """
    from ..utils import check_output_dir, check_outside_inputs, output_lock

    data_dir = _checked_source(data_dir, trainer_class)
    inputs = [data_dir, quantizer, base, tokenizer if isinstance(tokenizer, (str, Path)) else None]
    out = check_output_dir(out, "generator", inputs=inputs, overwrite=overwrite)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else out.with_name(out.name + ".checkpoints")
    check_outside_inputs(checkpoint_dir, inputs, "--checkpoint-dir")
    with output_lock(out, checkpoint_dir):
        args, resume, data, tokenizer, fingerprint = _prepare_run(
            data_dir, quantizer, tokenizer, profile, checkpoint_dir, resume, training_overrides
        )
        model_cfg = _model_config(profile, model_overrides, args)
        model = _initial_model(tokenizer, args, model_cfg, quantizer, peft, base, lora)
        # push_to_hub=True publishes the finished pipeline folder (card, tokenizer, quantizer, train config)
        # through genrec.hub once, not Trainer's bare checkpoint pushes.
        push, args.push_to_hub = args.push_to_hub, False
        trainer = _make_trainer(model, tokenizer, data, args, ranking_metrics, trainer_class)
        for callback in [RunFingerprintCallback(fingerprint), *(callbacks or [])]:
            trainer.add_callback(callback)
        result, wall = _timed_train(trainer, resume)
        if trainer.is_world_process_zero():
            run = dict(data_dir=data_dir, quantizer=quantizer, profile=profile, peft=peft, base=base, lora=lora)
            _write_generator(out, overwrite, trainer, tokenizer, data, result, wall, model_cfg=model_cfg, **run)
        trainer.accelerator.wait_for_everyone()
        if push and trainer.is_world_process_zero():
            _publish(out, args)
        return out


def _checked_source(data_dir, trainer_class):
    """The data as a folder or Hub id (``datasets`` objects are written to a folder first); a trainer class
    that is not a ``GenRecTrainer`` is refused."""
    if not (isinstance(trainer_class, type) and issubclass(trainer_class, GenRecTrainer)):
        raise GenRecError(f"trainer_class must be a subclass of GenRecTrainer, got {trainer_class!r}")
    if isinstance(data_dir, (str, Path)):
        return data_dir
    from ..data.hub_dataset import dataset_folder

    return dataset_folder(data_dir)


def _prepare_run(data_dir, quantizer, tokenizer, profile: str, checkpoint_dir: Path, resume, training_overrides: dict):
    """The run's arguments, the checkpoint to resume (checked against this run's fingerprint), the dataset, the
    tokenizer (given, or built from the quantizer's or the dataset's IDs) and the run's fingerprint."""
    from ..data import load_dataset_dir
    from ..tokenizer.build import build_tokenizer

    args = make_training_args(checkpoint_dir, profile, **training_overrides)
    resume = resume_point(resume, checkpoint_dir, args.max_steps)
    data = load_dataset_dir(data_dir, max_history=args.max_history)
    if tokenizer is None:
        tokenizer = build_tokenizer(data, quantizer)
    else:
        tokenizer = given_tokenizer(tokenizer, data, quantizer)
    _adapt_profile_tasks(args, tokenizer, profile, named=training_overrides.get("tasks"))
    fingerprint = run_fingerprint(tokenizer, args.tasks, args.item_task_items)
    if resume:
        check_resume_fingerprint(resume, fingerprint)
    return args, resume, data, tokenizer, fingerprint


def _write_generator(
    out: Path, overwrite: bool, trainer: GenRecTrainer, tokenizer, data, result, wall: float, **run
) -> None:
    """The pipeline folder, atomically: weights, tokenizer, the quantizer's copy, the run record and item prior."""
    from ..utils import atomic_output_dir

    inputs = [run["data_dir"], run["quantizer"], run["base"]]
    with atomic_output_dir(out, "generator", inputs=inputs, overwrite=overwrite) as tmp:
        _save_model_files(tmp, trainer, tokenizer, run["quantizer"])
        _write_run_files(
            tmp, data, _run_record(trainer, tokenizer, result, wall, **run), trainer.args.popularity_correction
        )


def _adapt_profile_tasks(args: GenRecTrainingArguments, tokenizer, profile: str, named) -> None:
    """A profile's tasks narrowed to those the dataset's IDs allow (a text-only catalogue: ``seqrec``), said in
    one line; tasks the caller ``named`` are checked as given instead (``check_tasks`` says what is missing)."""
    if named is not None:
        return
    kept, dropped = tasks_the_ids_allow(args.tasks, tokenizer)
    if dropped and kept:
        logger.warning(
            "profile %s: training %s; %s need %s semantic IDs, which this dataset lacks",
            profile,
            ",".join(kept),
            ",".join(dropped),
            " and ".join(sorted({m for t in dropped for m in TASK_MODALITIES[t]} - set(tokenizer.modalities)))
            or "other",
        )
        args.tasks = kept


def _model_config(profile: str, model_overrides: dict | None, args: GenRecTrainingArguments) -> dict:
    """The profile's model settings under the caller's overrides; the implicit loss weighs 0 when it is off;
    sequence training needs (and so sets) causal history attention."""
    model_cfg = {**load_profile(profile)["model"], **(model_overrides or {})}
    if args.training_mode == "sequences":
        if model_cfg.get("history_attention", "causal") != "causal":
            raise GenRecError(
                "training_mode='sequences' needs history_attention='causal'; train rows for a "
                f"model with history_attention={model_cfg['history_attention']!r}"
            )
        model_cfg["history_attention"] = "causal"
    if not args.implicit:
        model_cfg["implicit_weight"] = 0.0
    return model_cfg


def _initial_model(
    tokenizer,
    args: GenRecTrainingArguments,
    model_cfg: dict,
    quantizer,
    peft: str | None,
    base: str | None,
    lora: dict | None,
):
    """What training starts from: a fresh generator (ID embeddings from codebooks if asked) or LoRA on ``base``."""
    if peft is None:
        if base is not None:  # silently training a fresh model instead would waste the whole run
            raise GenRecError(
                f"--base {base} is the model LoRA fine-tunes: pass --peft lora with it, or drop --base "
                "to train a fresh generator"
            )
        model = build_generator(tokenizer, seed=args.seed, **model_cfg)
        if args.id_embedding_init:
            source = quantizer if args.id_embedding_init == "codebook" else args.id_embedding_init
            if source is None:
                raise GenRecError("id_embedding_init='codebook' needs --quantizer (a `genrec quantize` output)")
            logger.info(
                "ID embeddings initialised from the codebooks of %s: %s",
                source,
                init_id_embeddings_from_codebooks(model, tokenizer, source, seed=args.seed),
            )
        return model
    if peft == "lora":
        if base is None:
            raise GenRecError("--peft lora needs --base (a trained generator folder or Hub repo)")
        from ..modeling.lora import build_lora_model

        model = build_lora_model(base, tokenizer, implicit=args.implicit, seed=args.seed, **(lora or {}))
        if args.training_mode == "sequences" and getattr(model.config, "history_attention", "full") != "causal":
            raise GenRecError(
                f"--base {base} reads histories with full attention; training_mode='sequences' needs "
                "a base trained with history_attention='causal' (or train rows)"
            )
        return model
    raise GenRecError(f"unknown --peft method {peft!r} (supported: lora)")


def _make_trainer(
    model,
    tokenizer,
    data,
    args: GenRecTrainingArguments,
    ranking_metrics: RankingMetrics | None,
    trainer_class: type[GenRecTrainer] = GenRecTrainer,
) -> GenRecTrainer:
    """The run's Trainer: task units, collator, early stopping, and validation ranking for a budget run."""
    if args.id_label_smoothing and not uses_prefix_softmax(model.config):
        raise GenRecError(
            "id_label_smoothing spreads over the legal codes of the prefix softmax: it needs id_softmax='prefix'"
        )
    train, valid = build_datasets(data, tokenizer, args)
    if ranking_metrics is None and args.max_train_minutes is not None:
        ranking_metrics = validation_ranker(data, args)
    callbacks = []
    if args.early_stopping_patience and args.eval_strategy != "no":
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    return trainer_class(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=valid,
        data_collator=GenRecCollator(
            tokenizer,
            pad_to_multiple_of=8 if torch.cuda.is_available() else None,
            decoder_start_token_id=model.config.decoder_start_token_id,
            score_eos=not uses_prefix_softmax(model.config),
        ),
        processing_class=tokenizer,
        callbacks=callbacks,
        ranking_metrics=ranking_metrics,
    )


def _timed_train(trainer: GenRecTrainer, resume: str | bool | None):
    """Train (resuming from ``resume`` when given) and check the weights are finite; returns Trainer's result
    and the wall-clock seconds it took."""
    logger.info(
        "training on %d units (%s), validating on %d",
        len(trainer.train_dataset),
        ", ".join(trainer.args.tasks),
        len(trainer.eval_dataset),
    )
    start = time.time()
    try:
        # Checkpoints saved within one second make Trainer's rotation warn that mtime "may not be reliable"
        # and order them by step number, which is the right order for ours: a false alarm on fast runs.
        with (
            no_hf_progress_bars(),
            quiet_logger("transformers.trainer_utils", "mtime may not be reliable"),
            interrupts_at_step_end(trainer),
        ):
            result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except pickle.UnpicklingError as e:  # torch.load(weights_only=True) refused a crafted or foreign pickle
        raise GenRecError(
            f"--resume: a file in {resume} is not plain tensors and was not loaded "
            f"({str(e).splitlines()[0]}); resume from a checkpoint genrec wrote"
        ) from None
    check_finite_weights(trainer)
    return result, time.time() - start


def _save_model_files(folder: Path, trainer: GenRecTrainer, tokenizer, quantizer) -> None:
    """The trained weights, the tokenizer and a copy of the quantizer the IDs came from, as the pipeline loads them."""
    from ..layout import QUANTIZER_DIR

    with no_hf_progress_bars():
        trainer.model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if quantizer is not None:
        shutil.copytree(quantizer, folder / QUANTIZER_DIR)


def _run_record(
    trainer: GenRecTrainer,
    tokenizer,
    result,
    wall: float,
    *,
    data_dir,
    quantizer,
    profile: str,
    peft: str | None,
    base: str | None,
    lora: dict | None,
    model_cfg: dict,
) -> dict:
    """The train config record: what the run trained on and with, and how training went (after the model is saved)."""
    args = trainer.args
    return {
        "genrec_version": __version__,
        "profile": profile,
        "data": data_source(data_dir),
        "quantizer": str(Path(quantizer).resolve()) if quantizer else None,
        "tasks": list(args.tasks),
        "implicit": args.implicit,
        "seed": args.seed,
        "fingerprint": tokenizer.fingerprint(),
        "peft": {"method": peft, "base": base, **(lora or {})} if peft else None,
        "model_config": trainer.model.config.to_diff_dict() if peft is None else model_cfg,
        "training_args": json.loads(args.to_json_string()),
        "train_metrics": result.metrics,
        "best_metric": trainer.state.best_metric,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "log_history": trainer.state.log_history,
        "wall_time_s": round(wall, 1),
        "train_minutes": round(trainer.clock.minutes(), 2) if trainer.clock else round(wall / 60, 2),
    }


def _write_run_files(folder: Path, data, record: dict, popularity_correction: float) -> None:
    """The run record, the training item counts (what ranking's popularity correction a divides out) and the
    ranking settings: the defaults (``RankingConfig``) with the training argument's a."""
    from ..eval import train_item_counts
    from ..layout import ITEM_PRIOR_FILE, TRAIN_CONFIG_FILE
    from ..ranking import RankingConfig

    (folder / TRAIN_CONFIG_FILE).write_text(json.dumps(record, indent=2, default=str))
    prior = {"counts": train_item_counts(data).tolist(), "popularity_correction": popularity_correction}
    (folder / ITEM_PRIOR_FILE).write_text(json.dumps(prior))
    RankingConfig(popularity_correction=popularity_correction).save(folder)


def _publish(out: Path, args: GenRecTrainingArguments) -> None:
    """push_to_hub=True: the finished pipeline folder goes to the Hub through genrec.hub, in one commit."""
    from ..hub import push_to_hub

    push_to_hub(
        out,
        args.hub_model_id or out.name,
        private=bool(args.hub_private_repo),
        token=args.hub_token,
        revision=args.hub_revision,
    )
