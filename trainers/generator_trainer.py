"""Generator training: ``GenRecTrainer`` (a ``transformers.Trainer``), its arguments, collator and profiles.

Runs wherever Trainer runs: CPU, one GPU, or several with
``accelerate launch -m genrec train --data DIR --out OUT ...`` (per-device batch size; each process
collates its own batches, so the two views of a sample never straddle devices).
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from datasets import Dataset
from transformers import DataCollatorForSeq2Seq, EarlyStoppingCallback, Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from .. import ITEM_TASKS, SEQUENTIAL_TASK, TASK_MODALITIES, TASKS, __version__
from ..errors import GenRecError
from ..generation.constraints import IDConstraint, uses_prefix_softmax
from ..modeling import GenRecT5Config, GenRecT5ForConditionalGeneration, embedding_rows
from ..ranking.config import DEFAULT_NUM_BEAMS
from ..sequence_tasks import build_sequence_dataset
from ..tasks import PAIRED_TASKS, build_task_dataset, check_tasks, tasks_the_ids_allow
from .budget import MINUTES_KEY, TimeBudgetCallback, WallClock, budget_lr_factor
from .checkpoints import (RunFingerprintCallback, check_resume_fingerprint, checkpoint_step, resume_point,
                          run_fingerprint)
from .id_loss import packed_id_loss, prefix_softmax_loss
from .profiles import load_profile
from .sampling import LengthBucketSampler, TargetBatchSampler

logger = logging.getLogger("genrec.train")

# A callable (model, tokenizer) -> {"ndcg@10": x, ...} evaluated after each evaluation; its keys are
# logged as eval_<key> and may drive early stopping (metric_for_best_model="eval_ndcg@10").
RankingMetrics = Callable[[Any, Any], dict[str, float]]

BATCHINGS = ("length_buckets", "group_by_length", "random")
TRAINING_MODES = ("rows", "sequences")


class VocabMismatchError(GenRecError, ValueError):
    """The model's vocabulary does not match the tokenizer's."""


@dataclass
class GenRecTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus the task/ablation switches; defaults changed for this model.

    ``remove_unused_columns`` is False because the train set is lazy recipes turned into tokens by
    ``with_transform`` (Trainer would otherwise drop the recipe columns before the transform).
    """

    tasks: list[str] = field(default_factory=lambda: list(TASKS), metadata={"help": "explicit tasks to train"})
    implicit: bool = field(default=True, metadata={"help": "implicit alignment loss on/off (ablation)"})
    pair_views: bool = field(default=True, metadata={"help": "batch seqrec and seqimage of a sample together"})
    history_dropout: float = field(default=0.0, metadata={
        "help": "training only: each history item is left out of each sequence task's input with this "
                "probability, drawn anew per task and read (robustness to items missing a modality; 0 = off)"})
    max_history: int = field(default=20, metadata={"help": "last N history items (MACRec: 20)"})
    training_mode: str = field(default="rows", metadata={
        "help": "rows: one example per (history, next item), the encoder re-reads the history for each (MACRec); "
                "sequences: one example per user sequence window, every next-item target learned in one pass "
                "under causal history attention (genrec.sequence_tasks; the model gets history_attention='causal'); "
                "a batch then holds about per_device_train_batch_size targets",
        "choices": list(TRAINING_MODES)})
    max_eval_samples: int | None = field(default=None, metadata={"help": "validation users (None: all)"})
    early_stopping_patience: int | None = field(default=10, metadata={"help": "evaluations without gain"})
    max_train_minutes: float | None = field(default=None, metadata={
        "help": "wall-clock budget: stop after N minutes with a schedule planned for N minutes, evaluate "
                "validation ranking every eval_every_minutes, keep the best checkpoint (trainers/budget.py)"})
    eval_every_minutes: float | None = field(default=None, metadata={
        "help": "with max_train_minutes: minutes between evaluations (default: a tenth of the budget)"})
    rank_eval_users: int = field(default=2000, metadata={
        "help": "validation users ranked at each evaluation of a budget run (fixed sample)"})
    # Histories average 5 of 20 items on Instruments: batching similar lengths cuts padding ~4x.
    batching: str = field(default="length_buckets", metadata={
        "help": "length_buckets: batches of similar history length in random order (ours); group_by_length: "
                "transformers' sampler (50-batch cycles from long to short histories); random",
        "choices": list(BATCHINGS)})
    task_weights: dict[str, float] | None = field(default=None, metadata={
        "help": "task -> share of its rows drawn afresh each epoch (0 < w <= 1, default 1): a task schedule that "
                "spends fewer steps on some tasks (length_buckets batching only)"})
    id_embedding_init: str | None = field(default=None, metadata={
        "help": "semantic-ID token embeddings: None = random (T5's init); 'codebook' = the --quantizer's codebook "
                "vectors, or a quantizer folder's (whose IDs the tokenizer must carry), projected to d_model "
                "(init_id_embeddings_from_codebooks)"})
    item_task_items: str | None = field(default=None, metadata={
        "help": "a file of item ids, one per line: the item tasks (item2image, image2item) train on these items "
                "only (default: every item with both modalities), e.g. to keep some items' text-image pairs unseen"})
    popularity_correction: float = field(default=0.0, metadata={
        "help": "the trained model's default ranking correction a (saved in item_prior.json): beams are scored "
                "log p(ID | history) - a log P(ID), P the training-interaction share (GenRecPipeline.rank); 0 = off"})
    remove_unused_columns: bool = False
    # pinned memory only helps a GPU copy; on a CPU-only machine torch warns about it on every loader
    dataloader_pin_memory: bool = field(default_factory=torch.cuda.is_available)
    eval_strategy: str = "epoch"
    save_strategy: str = "epoch"
    load_best_model_at_end: bool = True
    metric_for_best_model: str | None = "eval_loss"
    prediction_loss_only: bool = True
    save_total_limit: int | None = 2
    lr_scheduler_type: str = "cosine"
    report_to: None | str | list[str] = "none"

    def __post_init__(self):
        if self.batching not in BATCHINGS:
            raise GenRecError(f"unknown batching {self.batching!r}; choose from {list(BATCHINGS)}")
        if not math.isfinite(self.popularity_correction):
            raise GenRecError(f"popularity_correction must be a finite number, got {self.popularity_correction}")
        if self.training_mode not in TRAINING_MODES:
            raise GenRecError(f"unknown training_mode {self.training_mode!r}; choose from {list(TRAINING_MODES)}")
        if self.training_mode == "sequences" and (self.history_dropout or self.task_weights):
            raise GenRecError("history_dropout and task_weights are drawn per (history, target) row; they need "
                              "training_mode='rows'")
        if self.task_weights:
            self.task_weights = {t: float(w) for t, w in self.task_weights.items()}
            bad = {t: w for t, w in self.task_weights.items() if t not in TASKS or not 0 < w <= 1}
            if bad:
                raise GenRecError(f"task_weights must map tasks of {list(TASKS)} to shares in (0, 1]; got {bad}")
            if self.batching != "length_buckets":
                raise GenRecError("task_weights needs batching='length_buckets' (its sampler draws the shares)")
            if self.pair_views and len({self.task_weights.get(t, 1.0) for t in PAIRED_TASKS}) > 1:
                raise GenRecError(f"with pair_views, {' and '.join(PAIRED_TASKS)} share one weight (they are "
                                  f"batched as one unit); got {self.task_weights}")
        # length_buckets reads the same length column as transformers' group_by_length
        self.train_sampling_strategy = "random" if self.batching == "random" else "group_by_length"
        if self.max_train_minutes is not None:
            if self.max_train_minutes <= 0:
                raise GenRecError(f"max_train_minutes must be > 0, got {self.max_train_minutes}")
            self.eval_every_minutes = self.eval_every_minutes or self.max_train_minutes / 10
            # The budget callback decides when to evaluate and save; steps never do.
            self.eval_strategy = self.save_strategy = "steps"
            self.eval_steps = self.save_steps = 10**9
        super().__post_init__()


class GenRecCollator:
    """Flattens task units into examples, pads them with the tokenizer and adds ``pair_ids``.

    Row units (``genrec.tasks``): both views of a paired unit get the unit's position in the batch as
    pair id; others get -1. Sequence units (``genrec.sequence_tasks``) become one encoder row per view
    whose targets are packed into one decoder row (``causal_history.sequence_forward``); ``pair_ids``
    then has one entry per target, shared by the two views' targets at one window position.
    ``score_eos``: the labels close each target with EOS (T5's full softmax scores it; the prefix softmax
    does not, so its decoder rows are one token shorter).
    """

    def __init__(self, tokenizer, pad_to_multiple_of: int | None = None, decoder_start_token_id: int | None = None,
                 score_eos: bool = True):
        self.seq2seq = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, pad_to_multiple_of=pad_to_multiple_of)
        self.tokenizer = tokenizer
        self.start = tokenizer.pad_token_id if decoder_start_token_id is None else decoder_start_token_id
        self.score_eos = score_eos

    def __call__(self, units: list[dict]) -> dict[str, torch.Tensor]:
        if units and "views" in units[0]:
            return self._sequences(units)
        features, pair_ids = [], []
        for n, unit in enumerate(units):
            for source, target in zip(unit["input_ids"], unit["labels"]):
                features.append({"input_ids": source, "labels": target})
                pair_ids.append(n if unit["paired"] else -1)
        batch = self.seq2seq(features)
        batch["pair_ids"] = torch.tensor(pair_ids, dtype=torch.long)
        return batch

    def _sequences(self, units: list[dict]) -> dict[str, torch.Tensor]:
        sources, decoder_rows, keys = [], [], []
        for n, unit in enumerate(units):
            for view in unit["views"]:
                sources.append({"input_ids": view["input_ids"]})
                row = {"decoder_input_ids": [], "labels": [], "decoder_history_items": [], "decoder_segment_ids": []}
                for seg, (target, reads, pos) in enumerate(zip(view["targets"], view["history_items"], view["positions"]), 1):
                    labels = target + [self.tokenizer.eos_token_id] if self.score_eos else target
                    row["decoder_input_ids"] += [self.start] + labels[:-1]
                    row["labels"] += labels
                    row["decoder_history_items"] += [reads] * len(labels)
                    row["decoder_segment_ids"] += [seg] * len(labels)
                    keys.append((n, pos) if unit["paired"] else None)
                decoder_rows.append(row)
        # a pair only where both views have the target (a view lacks the targets missing its modality)
        counts = Counter(keys)
        pairs = {k: i for i, k in enumerate(k for k in counts if k is not None and counts[k] == 2)}
        pair_ids = [pairs.get(k, -1) for k in keys]
        batch_groups = [k[0] if k is not None else -1 for k in keys]
        batch = self.tokenizer.pad(sources, return_tensors="pt")
        width = max(len(r["labels"]) for r in decoder_rows)
        pads = {"decoder_input_ids": self.tokenizer.pad_token_id, "labels": -100, "decoder_history_items": 0,
                "decoder_segment_ids": 0}
        for key, pad in pads.items():
            batch[key] = torch.tensor([r[key] + [pad] * (width - len(r[key])) for r in decoder_rows], dtype=torch.long)
        batch["pair_ids"] = torch.tensor(pair_ids, dtype=torch.long)
        batch["pair_groups"] = torch.tensor(batch_groups, dtype=torch.long)
        return batch


def check_vocab(model, tokenizer) -> None:
    size = embedding_rows(model)
    if size != len(tokenizer):
        raise VocabMismatchError(
            f"the model's vocabulary has {size} tokens but the tokenizer has {len(tokenizer)}; build the model "
            f"from this tokenizer (build_generator) or resize it (model.resize_token_embeddings(len(tokenizer)))"
        )


def build_generator(tokenizer, seed: int = 42, **config_overrides) -> GenRecT5ForConditionalGeneration:
    """A fresh generator whose vocabulary and special ids come from ``tokenizer`` (never hard-coded).

    ``embedding_init_rows="ids"`` stands for the rows of the semantic-ID code tokens;
    ``item_embeddings=True`` sizes and keys the encoder's per-item vectors (``GenRecT5Config.num_items``).
    """
    if config_overrides.get("embedding_init_rows") == "ids":
        first = tokenizer.level_token_start(tokenizer.modalities[0], 0)
        last_m = tokenizer.modalities[-1]
        last = tokenizer.level_token_start(last_m, tokenizer.num_levels(last_m) - 1) + tokenizer.codebook_size(last_m)
        config_overrides = {**config_overrides, "embedding_init_rows": [first, last]}
    if config_overrides.get("item_pooled_encoder") or config_overrides.get("history_attention") == "causal":
        # tokens that continue an item: codes of levels >= 2
        config_overrides = {**config_overrides, "item_continuation_ranges": [
            [tokenizer.level_token_start(m, level), tokenizer.level_token_start(m, level) + tokenizer.codebook_size(m)]
            for m in tokenizer.modalities for level in range(1, tokenizer.num_levels(m))]}
    item_embeddings = config_overrides.pop("item_embeddings", False)
    tables = [tokenizer.item_token_ids(m) for m in tokenizer.modalities] if item_embeddings else []
    if item_embeddings:
        config_overrides = {**config_overrides, "num_items": len(tokenizer.catalog),
                            "num_item_keys": sum(int((t[:, 0] >= 0).sum()) for t in tables)}
    config = GenRecT5Config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,  # T5 convention
        **config_overrides,
    )
    torch.manual_seed(seed)
    model = GenRecT5ForConditionalGeneration(config)
    if item_embeddings:
        model.encoder.set_item_keys(tables, [(tokenizer.level_token_start(m, 0),
                                              tokenizer.level_token_start(m, 0) + tokenizer.codebook_size(m))
                                             for m in tokenizer.modalities])
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


def _recipes(dataset):
    return dataset.with_format(None) if isinstance(dataset, Dataset) else dataset


class GenRecTrainer(Trainer):
    """Trainer that logs the loss components (``lm_loss``, ``implicit_loss``) and, when given
    ``ranking_metrics``, adds its figures to every evaluation (the hook for NDCG@10 early stopping)."""

    def __init__(self, *args, ranking_metrics: RankingMetrics | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.processing_class is not None:
            check_vocab(self.model, self.processing_class)
        self.ranking_metrics = ranking_metrics
        self._components: dict[str, list[torch.Tensor]] = defaultdict(list)
        self.clock: WallClock | None = None
        self._constraint: IDConstraint | None = None
        budget = getattr(self.args, "max_train_minutes", None)
        if budget is not None:
            self.clock = WallClock()
            self.add_callback(TimeBudgetCallback(self.clock, budget, self.args.eval_every_minutes))

    def _id_constraint(self, device) -> IDConstraint:
        """Every modality's trie in one table (built once; the loss of ``id_softmax="prefix"`` reads it)."""
        if self._constraint is None:
            tok = self.processing_class
            self._constraint = IDConstraint.from_tokenizer(tok, tok.modalities)
        return self._constraint.to(device)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """A budget run's schedule follows the clock (``budget_lr_factor``), not the step count."""
        if self.clock is None or self.lr_scheduler is not None:
            return super().create_scheduler(num_training_steps, optimizer)
        budget, warmup = self.args.max_train_minutes, self.args.warmup_steps
        if warmup >= 1:
            raise GenRecError("with max_train_minutes, warmup_steps must be a share of the budget (< 1)")
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer or self.optimizer, lambda _: budget_lr_factor(self.clock.minutes() / budget, warmup))
        self._created_lr_scheduler = True
        return self.lr_scheduler

    # Samplers read the ``length`` column, which the lazy token transform cannot serve on its own:
    # hand them the recipe rows (same order and length) instead.
    def _get_train_sampler(self, train_dataset=None):
        recipes = _recipes(self.train_dataset if train_dataset is None else train_dataset)
        if isinstance(recipes, Dataset) and "targets" in recipes.column_names:  # sequence units
            return TargetBatchSampler(recipes["length"], recipes["targets"], self.args.per_device_train_batch_size,
                                      self.args.world_size, self.args.process_index)
        if self.args.batching == "length_buckets" and isinstance(recipes, Dataset):
            groups = shares = None
            if self.args.task_weights:  # a unit's share is its (first) task's: paired tasks share one weight
                groups = recipes["unit"]
                shares = [self.args.task_weights.get(u.split("+")[0], 1.0) for u in recipes.features["unit"].names]
            return LengthBucketSampler(recipes["length"], self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                       groups=groups, shares=shares)
        return super()._get_train_sampler(recipes)

    def _get_eval_sampler(self, eval_dataset):
        return super()._get_eval_sampler(_recipes(eval_dataset))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "decoder_history_items" in inputs:
            loss, outputs = self._sequence_loss(model, inputs)
        else:
            loss, outputs = self._row_loss(model, inputs, num_items_in_batch)
        if model.training:
            for key in ("lm_loss", "implicit_loss"):
                value = outputs.get(key) if isinstance(outputs, dict) else None
                if value is not None:
                    self._components[key].append(value.detach())
        return (loss, outputs) if return_outputs else loss

    def _sequence_loss(self, model, inputs):
        """A batch of sequence units: one forward, the ID loss of every target (``packed_id_loss``)."""
        outputs = model(**inputs)
        unwrapped = self.accelerator.unwrap_model(model)
        states = outputs["target_states"]
        constraint = self._id_constraint(states.device) if uses_prefix_softmax(unwrapped.config) else None
        lm = packed_id_loss(states, inputs["labels"], unwrapped.get_output_embeddings(), constraint)
        implicit = outputs.get("implicit_loss")
        outputs["lm_loss"] = lm
        return (lm if implicit is None else lm + unwrapped.config.implicit_weight * implicit), outputs

    def _row_loss(self, model, inputs, num_items_in_batch):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        config = self.accelerator.unwrap_model(model).config
        if uses_prefix_softmax(config):
            lm = prefix_softmax_loss(outputs["logits"], inputs["labels"], self._id_constraint(outputs["logits"].device))
            implicit = outputs.get("implicit_loss")
            loss = lm if implicit is None else lm + config.implicit_weight * implicit
            outputs["lm_loss"] = lm
        return loss, outputs

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._components:  # a training log: add the mean components since the last one
            for key, values in self._components.items():
                logs[key] = round(self.accelerator.gather(torch.stack(values).mean()).mean().item(), 4)
            self._components.clear()
        if self.clock is not None:
            logs[MINUTES_KEY] = round(self.clock.minutes(), 3)
        super().log(logs, start_time)

    def train(self, resume_from_checkpoint=None, **kwargs):
        """As Trainer.train; after a resume, ``train_loss`` is the mean over the whole run, not only
        the resumed steps (the steps before come from the checkpoint's logged losses)."""
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
        # read before training: checkpoint rotation may delete the resumed checkpoint during the run
        start = checkpoint_step(resume_from_checkpoint) if resume_from_checkpoint else None
        output = super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
        if start is None or output.global_step <= start:
            return output
        logged = [(e["step"], e["loss"]) for e in self.state.log_history if "loss" in e and e["step"] <= start]
        if not logged:
            return output
        # each logged loss is the mean since the log before it: weight by that window
        windows = [step - prev for prev, step in zip([0] + [s for s, _ in logged[:-1]], [s for s, _ in logged])]
        before = sum(w * loss for w, (_, loss) in zip(windows, logged)) / sum(windows)
        total = (before * start + output.training_loss * (output.global_step - start)) / output.global_step
        output.metrics["train_loss"] = total
        return type(output)(output.global_step, total, output.metrics)

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix="eval"):
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        if self.ranking_metrics is not None:
            model = self.accelerator.unwrap_model(self.model)
            for key, value in self.ranking_metrics(model, self.processing_class).items():
                output.metrics[f"{metric_key_prefix}_{key}"] = float(value)
        return output


def auto_bf16() -> bool:
    """bf16 where the device has it (CUDA with bf16 support); fp32 on CPU, where bf16 is slow."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def make_training_args(output_dir: str | Path, profile: str = "cpu", **overrides) -> GenRecTrainingArguments:
    """Profile defaults + overrides (None values are ignored, so CLI flags can be passed straight)."""
    defaults = load_profile(profile)["args"]
    unknown = sorted(set(defaults) - {f.name for f in fields(GenRecTrainingArguments)})
    if unknown:
        raise GenRecError(f"profile {str(profile)!r}: unknown training arguments {unknown} (GenRecTrainingArguments fields)")
    kwargs = {**defaults, **{k: v for k, v in overrides.items() if v is not None}}
    if kwargs.get("max_train_minutes") is not None:
        # The budget, not the profile's epoch count or patience, ends the run; the best checkpoint is
        # chosen on validation ranking (validation_ranker), not on loss.
        kwargs["num_train_epochs"] = overrides.get("num_train_epochs") or 1000
        kwargs["max_steps"] = overrides.get("max_steps") or -1
        kwargs["early_stopping_patience"] = overrides.get("early_stopping_patience")
        kwargs.setdefault("metric_for_best_model", "eval_ndcg@10")
        kwargs.setdefault("greater_is_better", True)
    kwargs.setdefault("bf16", auto_bf16())
    kwargs.setdefault("dataloader_pin_memory", torch.cuda.is_available())  # CPU: pinning only warns
    # Several processes on a machine without CUDA (accelerate launch / torchrun): join them over gloo;
    # accelerate only does that for a state created for the CPU.
    kwargs.setdefault("use_cpu", not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1)
    kwargs.setdefault("data_seed", kwargs.get("seed", 42))
    check_tasks(kwargs.get("tasks", TASKS))
    if kwargs.get("max_steps", -1) > 0 and "save_steps" in kwargs:
        kwargs.setdefault("eval_strategy", "steps")
        kwargs.setdefault("save_strategy", "steps")
        kwargs.setdefault("eval_steps", kwargs["save_steps"])
    try:
        return GenRecTrainingArguments(output_dir=str(output_dir), **kwargs)
    except ValueError as e:  # TrainingArguments' own checks (e.g. --eval-strategy steps without eval steps)
        raise GenRecError(f"training arguments: {e}") from None


def build_datasets(data, tokenizer, args: GenRecTrainingArguments):
    """Train units for every selected task (rows or sequence windows, ``training_mode``); validation: the
    seqrec/seqimage rows of (a sample of) users."""
    item_rows = read_item_task_rows(args.item_task_items, tokenizer, args.tasks) if args.item_task_items else None
    if args.training_mode == "sequences":  # every item but each user's validation and test targets
        train = build_sequence_dataset([seq[:-2] for seq in data.sequences.values()], tokenizer, args.tasks,
                                       args.max_history, args.pair_views, item_rows)
    else:
        train = build_task_dataset(data.splits["train"], tokenizer, args.tasks, args.max_history, args.pair_views,
                                   item_rows, args.history_dropout, args.seed)
    valid = data.splits["valid"]
    if args.max_eval_samples is not None and args.max_eval_samples < len(valid):
        valid = valid.shuffle(seed=args.seed).select(range(args.max_eval_samples))
    eval_tasks = [t for t in args.tasks if t in PAIRED_TASKS] or list(args.tasks)
    return train, build_task_dataset(valid, tokenizer, eval_tasks, args.max_history, args.pair_views)


def read_item_task_rows(path: str | Path, tokenizer, tasks: Sequence[str]) -> list[int]:
    """Catalogue rows of the item ids listed in ``path`` (one per line; blank lines skipped); each must be a
    catalogue item, listed once, with text and image IDs, as the item tasks read one and predict the other."""
    path = Path(path)
    if not set(tasks) & set(ITEM_TASKS):
        raise GenRecError(f"item_task_items={str(path)!r} but the run trains no item task ({list(tasks)})")
    if not path.is_file():
        raise GenRecError(f"item_task_items: no file {path}")
    codes = tokenizer.catalog.codes
    rows, seen = [], {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = tokenizer.catalog.row(line.strip())
        except GenRecError as e:
            raise GenRecError(f"{path}:{n}: {e}") from None
        if row in seen:
            raise GenRecError(f"{path}:{n}: item {line.strip()!r} is listed twice (first on line {seen[row]})")
        lacking = [m for m in ("text", "image") if m in codes and codes[m][row, 0] < 0]
        if lacking:
            raise GenRecError(f"{path}:{n}: item {line.strip()!r} has no {' or '.join(lacking)} IDs for the item tasks")
        seen[row] = n
        rows.append(row)
    if not rows:
        raise GenRecError(f"item_task_items: {path} lists no item")
    return rows


def ranked_modality(tasks: Sequence[str]) -> str:
    """The ranking a generator trained on ``tasks`` is judged by: fused when it learned both sequential
    tasks, else the one it learned."""
    learned = [m for m, t in SEQUENTIAL_TASK.items() if t in tasks]
    return "fused" if len(learned) == 2 else (learned or ["text"])[0]


def validation_ranker(data, args: GenRecTrainingArguments) -> RankingMetrics:
    """NDCG@10 / HR@10 / coverage@10 on a fixed sample of ``args.rank_eval_users`` validation users, ranked
    with the fast constrained decoder (20 beams) the way ``genrec evaluate`` ranks test users."""
    from ..eval import ranking_metrics
    from ..pipeline import GenRecPipeline

    valid = data.splits["valid"]
    if args.rank_eval_users < len(valid):
        valid = valid.shuffle(seed=args.seed).select(range(args.rank_eval_users))
    histories, targets = valid["history"], valid["target"]
    modality = ranked_modality(args.tasks)

    def rank(model, tokenizer) -> dict[str, float]:
        res = GenRecPipeline(model, tokenizer, max_history=args.max_history).rank(histories, modality=modality, k=10)
        m = ranking_metrics(res.rows, targets, ks=(10,), n_items=data.n_items)
        return {"ndcg@10": m["NDCG@10"], "hr@10": m["HR@10"], "coverage@10": m["coverage@10"]}

    return rank


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
    from .quantizer_trainer import sid_file

    qdir = Path(quantizer_dir)
    if not (qdir / MODEL_CONFIG_FILE).is_file():
        raise GenRecError(f"{qdir}: no quantizer model (config.json); codebook initialisation needs a `genrec "
                          "quantize` output, precomputed semantic-ID files have no codebooks")
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
            rows = weight[start:start + size]
            vecs = codebooks[level, :size] @ proj
            vecs = vecs - vecs.mean(0)
            vecs = vecs / vecs.std().clamp(min=1e-12) * rows.std()
            rows.copy_(vecs.to(rows.dtype))
        done.append(m)
    return done


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
        raise GenRecError(f"the tokenizer's catalogue ({len(ids)} items) does not list the {data.n_items} items of "
                          f"{data.path} in their order; build it with `genrec tokenize --data {data.path}`")
    if quantizer is not None:
        for m, codes in load_codes(data, quantizer).items():
            if m not in tokenizer.catalog.codes or not np.array_equal(tokenizer.catalog.codes[m], codes):
                raise GenRecError(f"the tokenizer's {m} IDs differ from {Path(quantizer) / SID_FILES[m]}; "
                                  "build the tokenizer from that quantizer")
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
    **training_overrides,
) -> Path:
    """Train a generator and write the pipeline folder ``out`` (atomically, on the main process).

    Trainer checkpoints go to ``checkpoint_dir`` (default: ``<out>.checkpoints`` beside ``out``);
    ``resume`` = True resumes from the last checkpoint there, or give a checkpoint path.
    ``peft="lora"`` fine-tunes ``base`` (a generator folder or Hub repo) with LoRA instead.
    ``tokenizer``: the tokenizer stage's output (a folder or a ``SemanticIDTokenizer``), used as it is
    (e.g. with its ``--text-vocab`` pieces); it must list the dataset's items in order, and agree with
    ``quantizer``'s IDs when both are given. Default: built from ``quantizer`` or the dataset's IDs.
    An existing ``out`` is replaced only when it is a genrec generator folder, or with ``overwrite``
    (checked before training starts).
    """
    from ..data import load_dataset_dir
    from ..tokenizer.build import build_tokenizer
    from ..utils import check_output_dir, check_outside_inputs, output_lock

    inputs = [data_dir, quantizer, base, tokenizer if isinstance(tokenizer, (str, Path)) else None]
    out = check_output_dir(out, "generator", inputs=inputs, overwrite=overwrite)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else out.with_name(out.name + ".checkpoints")
    check_outside_inputs(checkpoint_dir, inputs, "--checkpoint-dir")
    with output_lock(out, checkpoint_dir):
        args = make_training_args(checkpoint_dir, profile, **training_overrides)
        resume = resume_point(resume, checkpoint_dir, args.max_steps)
        data = load_dataset_dir(data_dir, max_history=args.max_history)
        tokenizer = (given_tokenizer(tokenizer, data, quantizer) if tokenizer is not None
                     else build_tokenizer(data, quantizer))
        _adapt_profile_tasks(args, tokenizer, profile, named=training_overrides.get("tasks"))
        fingerprint = run_fingerprint(tokenizer, args.tasks, args.item_task_items)
        if resume:
            check_resume_fingerprint(resume, fingerprint)
        model_cfg = _model_config(profile, model_overrides, args)
        model = _initial_model(tokenizer, args, model_cfg, quantizer, peft, base, lora)
        # push_to_hub=True publishes the finished pipeline folder (card, tokenizer, quantizer, train config)
        # through genrec.hub once, not Trainer's bare checkpoint pushes.
        push, args.push_to_hub = args.push_to_hub, False
        trainer = _make_trainer(model, tokenizer, data, args, ranking_metrics)
        trainer.add_callback(RunFingerprintCallback(fingerprint))
        result, wall = _timed_train(trainer, resume)
        if trainer.is_world_process_zero():
            _write_generator(out, overwrite, trainer, tokenizer, data, result, wall, data_dir=data_dir,
                             quantizer=quantizer, profile=profile, peft=peft, base=base, lora=lora, model_cfg=model_cfg)
        trainer.accelerator.wait_for_everyone()
        if push and trainer.is_world_process_zero():
            _publish(out, args)
        return out


def _write_generator(out: Path, overwrite: bool, trainer: GenRecTrainer, tokenizer, data, result, wall: float,
                     **run) -> None:
    """The pipeline folder, atomically: weights, tokenizer, the quantizer's copy, the run record and item prior."""
    from ..utils import atomic_output_dir

    inputs = [run["data_dir"], run["quantizer"], run["base"]]
    with atomic_output_dir(out, "generator", inputs=inputs, overwrite=overwrite) as tmp:
        _save_model_files(tmp, trainer, tokenizer, run["quantizer"])
        _write_run_files(tmp, data, _run_record(trainer, tokenizer, result, wall, **run),
                         trainer.args.popularity_correction)


def _adapt_profile_tasks(args: GenRecTrainingArguments, tokenizer, profile: str, named) -> None:
    """A profile's tasks narrowed to those the dataset's IDs allow (a text-only catalogue: ``seqrec``), said in
    one line; tasks the caller ``named`` are checked as given instead (``check_tasks`` says what is missing)."""
    if named is not None:
        return
    kept, dropped = tasks_the_ids_allow(args.tasks, tokenizer)
    if dropped and kept:
        logger.warning("profile %s: training %s; %s need %s semantic IDs, which this dataset lacks", profile,
                       ",".join(kept), ",".join(dropped), " and ".join(sorted(
                           {m for t in dropped for m in TASK_MODALITIES[t]} - set(tokenizer.modalities))) or "other")
        args.tasks = kept


def _model_config(profile: str, model_overrides: dict | None, args: GenRecTrainingArguments) -> dict:
    """The profile's model settings under the caller's overrides; the implicit loss weighs 0 when it is off;
    sequence training needs (and so sets) causal history attention."""
    model_cfg = {**load_profile(profile)["model"], **(model_overrides or {})}
    if args.training_mode == "sequences":
        if model_cfg.get("history_attention", "causal") != "causal":
            raise GenRecError("training_mode='sequences' needs history_attention='causal'; train rows for a "
                              f"model with history_attention={model_cfg['history_attention']!r}")
        model_cfg["history_attention"] = "causal"
    if not args.implicit:
        model_cfg["implicit_weight"] = 0.0
    return model_cfg


def _initial_model(tokenizer, args: GenRecTrainingArguments, model_cfg: dict, quantizer, peft: str | None,
                   base: str | None, lora: dict | None):
    """What training starts from: a fresh generator (ID embeddings from codebooks if asked) or LoRA on ``base``."""
    if peft is None:
        if base is not None:  # silently training a fresh model instead would waste the whole run
            raise GenRecError(f"--base {base} is the model LoRA fine-tunes: pass --peft lora with it, or drop --base "
                              "to train a fresh generator")
        model = build_generator(tokenizer, seed=args.seed, **model_cfg)
        if args.id_embedding_init:
            source = quantizer if args.id_embedding_init == "codebook" else args.id_embedding_init
            if source is None:
                raise GenRecError("id_embedding_init='codebook' needs --quantizer (a `genrec quantize` output)")
            logger.info("ID embeddings initialised from the codebooks of %s: %s", source,
                        init_id_embeddings_from_codebooks(model, tokenizer, source, seed=args.seed))
        return model
    if peft == "lora":
        if base is None:
            raise GenRecError("--peft lora needs --base (a trained generator folder or Hub repo)")
        from ..modeling.lora import build_lora_model

        model = build_lora_model(base, tokenizer, implicit=args.implicit, seed=args.seed, **(lora or {}))
        if args.training_mode == "sequences" and getattr(model.config, "history_attention", "full") != "causal":
            raise GenRecError(f"--base {base} reads histories with full attention; training_mode='sequences' needs "
                              "a base trained with history_attention='causal' (or train rows)")
        return model
    raise GenRecError(f"unknown --peft method {peft!r} (supported: lora)")


def _make_trainer(model, tokenizer, data, args: GenRecTrainingArguments,
                  ranking_metrics: RankingMetrics | None) -> GenRecTrainer:
    """The run's Trainer: task units, collator, early stopping, and validation ranking for a budget run."""
    train, valid = build_datasets(data, tokenizer, args)
    if ranking_metrics is None and args.max_train_minutes is not None:
        ranking_metrics = validation_ranker(data, args)
    callbacks = []
    if args.early_stopping_patience and args.eval_strategy != "no":
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    return GenRecTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=valid,
        data_collator=GenRecCollator(tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None,
                                     decoder_start_token_id=model.config.decoder_start_token_id,
                                     score_eos=not uses_prefix_softmax(model.config)),
        processing_class=tokenizer,
        callbacks=callbacks,
        ranking_metrics=ranking_metrics,
    )


def check_finite_weights(trainer: GenRecTrainer) -> None:
    """Refuse to write a diverged model: any NaN or infinite weight after training is an error naming the
    settings that usually cause it (before the output folder is written)."""
    from ..utils import nonfinite_parameters

    bad = nonfinite_parameters(trainer.model)
    if bad:
        args = trainer.args
        raise GenRecError(f"training diverged: {len(bad)} weight tensors hold NaN or inf after step "
                          f"{trainer.state.global_step} (first: {bad[0]}); lower --lr (was "
                          f"{args.learning_rate}) or clip gradients with --max-grad-norm (was {args.max_grad_norm}); "
                          "nothing was written")


def _timed_train(trainer: GenRecTrainer, resume: str | bool | None):
    """Train (resuming from ``resume`` when given) and check the weights are finite; returns Trainer's result
    and the wall-clock seconds it took."""
    logger.info("training on %d units (%s), validating on %d", len(trainer.train_dataset),
                ", ".join(trainer.args.tasks), len(trainer.eval_dataset))
    start = time.time()
    try:
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except pickle.UnpicklingError as e:  # torch.load(weights_only=True) refused a crafted or foreign pickle
        raise GenRecError(f"--resume: a file in {resume} is not plain tensors and was not loaded "
                          f"({str(e).splitlines()[0]}); resume from a checkpoint genrec wrote") from None
    check_finite_weights(trainer)
    return result, time.time() - start


def _save_model_files(folder: Path, trainer: GenRecTrainer, tokenizer, quantizer) -> None:
    """The trained weights, the tokenizer and a copy of the quantizer the IDs came from, as the pipeline loads them."""
    from ..layout import QUANTIZER_DIR

    trainer.model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if quantizer is not None:
        shutil.copytree(quantizer, folder / QUANTIZER_DIR)


def _run_record(trainer: GenRecTrainer, tokenizer, result, wall: float, *, data_dir, quantizer, profile: str,
                peft: str | None, base: str | None, lora: dict | None, model_cfg: dict) -> dict:
    """The train config record: what the run trained on and with, and how training went (after the model is saved)."""
    args = trainer.args
    return {
        "genrec_version": __version__,
        "profile": profile,
        "data": str(Path(data_dir).resolve()),
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

    push_to_hub(out, args.hub_model_id or out.name, private=bool(args.hub_private_repo), token=args.hub_token,
                revision=args.hub_revision)
