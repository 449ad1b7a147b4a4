"""Generator training arguments (``GenRecTrainingArguments``, a ``TrainingArguments`` subclass: the task and
ablation switches, defaults changed for this model) and their resolution from a profile (``make_training_args``)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from transformers import TrainingArguments

from .. import TASKS
from ..errors import GenRecError
from ..tasks import PAIRED_TASKS, check_tasks
from .profiles import load_profile

BATCHINGS = ("length_buckets", "group_by_length", "random")
TRAINING_MODES = ("rows", "sequences")


@dataclass
class GenRecTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus the task/ablation switches; defaults changed for this model.

    ``remove_unused_columns`` is False because the train set is lazy recipes turned into tokens by
    ``with_transform`` (Trainer would otherwise drop the recipe columns before the transform);
    ``ddp_find_unused_parameters`` is False for rows (see below).
    """

    tasks: list[str] = field(default_factory=lambda: list(TASKS), metadata={"help": "explicit tasks to train"})
    implicit: bool = field(default=True, metadata={"help": "implicit alignment loss on/off (ablation)"})
    pair_views: bool = field(default=True, metadata={"help": "batch seqrec and seqimage of a sample together"})
    history_dropout: float = field(
        default=0.0,
        metadata={
            "help": "training only: each history item is left out of each sequence task's input with this "
            "probability, drawn anew per task and read (robustness to items missing a modality; 0 = off)"
        },
    )
    max_history: int = field(default=20, metadata={"help": "last N history items (MACRec: 20)"})
    training_mode: str = field(
        default="rows",
        metadata={
            "help": "rows: one example per (history, next item), the encoder re-reads the history for each (MACRec); "
            "sequences: one example per user sequence window, every next-item target learned in one pass "
            "under causal history attention (genrec.sequence_tasks; the model gets history_attention='causal'); "
            "a batch then holds about per_device_train_batch_size targets",
            "choices": list(TRAINING_MODES),
        },
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "validation users (None: all)"})
    early_stopping_patience: int | None = field(default=10, metadata={"help": "evaluations without gain"})
    max_train_minutes: float | None = field(
        default=None,
        metadata={
            "help": "wall-clock budget: stop after N minutes with a schedule planned for N minutes, evaluate "
            "validation ranking every eval_every_minutes, keep the best checkpoint (trainers/budget.py)"
        },
    )
    eval_every_minutes: float | None = field(
        default=None,
        metadata={"help": "with max_train_minutes: minutes between evaluations (default: a tenth of the budget)"},
    )
    rank_eval_users: int = field(
        default=2000, metadata={"help": "validation users ranked at each evaluation of a budget run (fixed sample)"}
    )
    # Histories average 5 of 20 items on Instruments: batching similar lengths cuts padding ~4x.
    batching: str = field(
        default="length_buckets",
        metadata={
            "help": "length_buckets: batches of similar history length in random order (ours); group_by_length: "
            "transformers' sampler (50-batch cycles from long to short histories); random",
            "choices": list(BATCHINGS),
        },
    )
    task_weights: dict[str, float] | None = field(
        default=None,
        metadata={
            "help": "task -> share of its rows drawn afresh each epoch (0 < w <= 1, default 1): a task schedule that "
            "spends fewer steps on some tasks (length_buckets batching only)"
        },
    )
    id_embedding_init: str | None = field(
        default=None,
        metadata={
            "help": "semantic-ID token embeddings: None = random (T5's init); 'codebook' = the --quantizer's codebook "
            "vectors, or a quantizer folder's (whose IDs the tokenizer must carry), projected to d_model "
            "(init_id_embeddings_from_codebooks)"
        },
    )
    item_task_items: str | None = field(
        default=None,
        metadata={
            "help": "a file of item ids, one per line: the item tasks (item2image, image2item) train on these items "
            "only (default: every item with both modalities), e.g. to keep some items' text-image pairs unseen"
        },
    )
    popularity_correction: float = field(
        default=0.0,
        metadata={
            "help": "the trained model's default ranking correction a (saved in item_prior.json): beams are scored "
            "log p(ID | history) - a log P(ID), P the training-interaction share (GenRecPipeline.rank); 0 = off"
        },
    )
    id_label_smoothing: float = field(
        default=0.0,
        metadata={
            "help": "id_softmax='prefix' only: each code's target keeps 1 - e and spreads e evenly over the codes "
            "legal after its prefix (the ones beams choose among; transformers' label_smoothing_factor spreads "
            "it over the whole vocabulary); 0 = off"
        },
    )
    remove_unused_columns: bool = False
    # None: False for training_mode='rows', whose forward uses every trainable weight, so DDP need not search
    # for unused ones (Trainer's True costs a graph traversal per step and a warning per process that it found
    # none); the sequence mode leaves a weight unused, so it keeps Trainer's search.
    ddp_find_unused_parameters: bool | None = None
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
        if self.ddp_find_unused_parameters is None and self.training_mode == "rows":
            self.ddp_find_unused_parameters = False
        if self.batching not in BATCHINGS:
            raise GenRecError(f"unknown batching {self.batching!r}; choose from {list(BATCHINGS)}")
        if not math.isfinite(self.popularity_correction):
            raise GenRecError(f"popularity_correction must be a finite number, got {self.popularity_correction}")
        if not 0 <= self.id_label_smoothing < 1:
            raise GenRecError(f"id_label_smoothing must be in [0, 1), got {self.id_label_smoothing}")
        if self.training_mode not in TRAINING_MODES:
            raise GenRecError(f"unknown training_mode {self.training_mode!r}; choose from {list(TRAINING_MODES)}")
        if self.training_mode == "sequences" and (self.history_dropout or self.task_weights):
            raise GenRecError(
                "history_dropout and task_weights are drawn per (history, target) row; they need training_mode='rows'"
            )
        if self.task_weights:
            self.task_weights = {t: float(w) for t, w in self.task_weights.items()}
            bad = {t: w for t, w in self.task_weights.items() if t not in TASKS or not 0 < w <= 1}
            if bad:
                raise GenRecError(f"task_weights must map tasks of {list(TASKS)} to shares in (0, 1]; got {bad}")
            if self.batching != "length_buckets":
                raise GenRecError("task_weights needs batching='length_buckets' (its sampler draws the shares)")
            if self.pair_views and len({self.task_weights.get(t, 1.0) for t in PAIRED_TASKS}) > 1:
                raise GenRecError(
                    f"with pair_views, {' and '.join(PAIRED_TASKS)} share one weight (they are "
                    f"batched as one unit); got {self.task_weights}"
                )
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


def auto_bf16() -> bool:
    """bf16 where the device has it (CUDA with bf16 support); fp32 on CPU: even with native bf16 matmuls (AMX),
    autocast trains the ``cpu`` profile no faster there (1.04x / 0.99x, benchmarks/results/precision.md)."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def make_training_args(output_dir: str | Path, profile: str = "cpu", **overrides) -> GenRecTrainingArguments:
    """Profile defaults + overrides (None values are ignored, so CLI flags can be passed straight)."""
    defaults = load_profile(profile)["args"]
    unknown = sorted(set(defaults) - {f.name for f in fields(GenRecTrainingArguments)})
    if unknown:
        raise GenRecError(
            f"profile {str(profile)!r}: unknown training arguments {unknown} (GenRecTrainingArguments fields)"
        )
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
    # bf16 without CUDA: TrainingArguments refuses it unless told the device is the CPU.
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    kwargs.setdefault("use_cpu", not torch.cuda.is_available() and (several or bool(kwargs["bf16"])))
    kwargs.setdefault("data_seed", kwargs.get("seed", 42))
    check_tasks(kwargs.get("tasks", TASKS))
    if kwargs.get("max_steps", -1) > 0 and "save_steps" in kwargs:
        kwargs.setdefault("eval_strategy", "steps")
        kwargs.setdefault("save_strategy", "steps")
        kwargs.setdefault("eval_steps", kwargs["save_steps"])
    try:
        args = GenRecTrainingArguments(output_dir=str(output_dir), **kwargs)
    except ValueError as e:  # TrainingArguments' own checks (e.g. --eval-strategy steps without eval steps)
        raise GenRecError(f"training arguments: {e}") from None
    check_reporters(args.report_to)
    return args


# --report-to name -> what to install (genrec's extra where it has one)
REPORTER_INSTALL = {
    "tensorboard": "'genrec[tensorboard]'",
    "wandb": "wandb",
    "mlflow": "mlflow",
    "comet_ml": "comet_ml",
    "trackio": "trackio",
}


def check_reporters(report_to) -> None:
    """Refuse a tracker that is not installed before any work (Trainer raised a traceback when it started)."""
    from transformers.integrations import get_available_reporting_integrations

    wanted = [r for r in (report_to or []) if r not in ("none", "all")]
    missing = sorted(set(wanted) - set(get_available_reporting_integrations()))
    if missing:
        install = " ".join(REPORTER_INSTALL.get(m, m) for m in missing)
        raise GenRecError(f"--report-to {','.join(missing)}: not installed; pip install {install}")
