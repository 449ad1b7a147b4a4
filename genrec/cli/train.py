"""genrec train: train the T5 generator on MACRec's tasks and write a pipeline folder.

The folder OUT holds the generator (config.json, model.safetensors, generation_config.json; or a LoRA
adapter with --peft lora), the tokenizer files, genrec_train_config.json and quantizer/ (copied from
--quantizer). Trainer checkpoints go to --checkpoint-dir (default OUT.checkpoints); --resume continues
from the last one. Several GPUs: accelerate launch -m genrec train ... (batch size is per device).
"""

from __future__ import annotations

import argparse
import logging

from .. import TASKS
from .arguments import add_output_arguments, name_list, positive
from .parser import given_settings

logger = logging.getLogger("genrec.train")


def add_arguments(p):
    p.add_argument("--data", required=True, help="dataset directory")
    add_output_arguments(p, "pipeline folder to write (atomically, at the end)")
    p.add_argument(
        "--quantizer",
        help="quantizer output folder with sid_text.npy / sid_image.npy (default: the dataset's own sid_*.npy)",
    )
    p.add_argument(
        "--tokenizer",
        help="a `genrec tokenize` output folder, used as it is (e.g. with --text-vocab "
        "pieces); default: built from --quantizer or the dataset's IDs",
    )
    p.add_profile("generator", "cpu", "tiny (tests, seconds), cpu (fits a 2-core CPU), paper (MACRec's settings)")
    p.add_argument(
        "--id-softmax",
        choices=["full", "prefix"],
        help="normalise the loss (and beam scores) over the whole vocabulary or over the codes that "
        "may follow each prefix (profile default)",
    )
    p.add_argument("--checkpoint-dir", help="Trainer checkpoints (default: OUT.checkpoints)")
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        help="resume from the last checkpoint in --checkpoint-dir, or from the given checkpoint",
    )
    p.add_argument("--bf16", choices=["auto", "yes", "no"], default="auto", help="bf16 (auto: when the GPU has it)")
    p.add_argument("--peft", choices=["lora"], help="fine-tune --base with LoRA; saves only the adapter")
    p.add_argument("--base", help="generator folder or Hub repo to fine-tune with --peft")
    p.add_argument("--lora-r", type=positive(int), default=8, help="LoRA rank (alpha = 2 r) with --peft lora")
    add_training_arguments(p)


def _task_weights(text: str) -> dict[str, float]:
    weights = {}
    for part in filter(None, (x.strip() for x in text.split(","))):
        task, _, share = part.partition("=")
        try:
            weights[task.strip()] = float(share)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: expected TASK=SHARE, e.g. item2image=0.25") from None
    return weights


# GenRecTrainingArguments fields set otherwise: the folder (--checkpoint-dir), resuming (--resume), bf16 (--bf16 auto)
NOT_FLAGS = {"output_dir", "resume_from_checkpoint", "bf16"}
# Short names genrec has always had, kept as first spelling beside the field's own
SHORT_NAMES = {
    "num_train_epochs": "--epochs",
    "per_device_train_batch_size": "--batch-size",
    "learning_rate": "--lr",
    "early_stopping_patience": "--patience",
}
# Value checks and CLI syntax the generated flags lack (a negative --max-steps once meant "train 3 epochs")
TYPES = {
    "num_train_epochs": positive(float),
    "max_steps": positive(int),
    "max_train_minutes": positive(float),
    "per_device_train_batch_size": positive(int),
    "per_device_eval_batch_size": positive(int),
    "learning_rate": positive(float),
    "early_stopping_patience": positive(int),
    "max_eval_samples": positive(int),
    "max_history": positive(int),
    "eval_every_minutes": positive(float),
    "rank_eval_users": positive(int),
}
CLI_SYNTAX = {
    "tasks": (
        name_list,
        "TASK,...",
        f"comma-separated tasks, from {','.join(TASKS)} (default: the profile's; cpu: seqrec,seqimage, "
        "tiny and paper: all six)",
    ),
    "task_weights": (
        _task_weights,
        "TASK=SHARE,...",
        "share of a task's rows drawn each epoch, e.g. "
        "item2image=0.25,seqitem2image=0.25 (others: 1; length_buckets batching only)",
    ),
}


def add_training_arguments(p) -> None:
    """Every ``GenRecTrainingArguments`` field (TrainingArguments' too: --report-to, --save-total-limit, ...)."""
    from ..trainers.generator_config import GenRecTrainingArguments

    p.add_settings(
        GenRecTrainingArguments, "training arguments", NOT_FLAGS, spellings=SHORT_NAMES, types=TYPES, syntax=CLI_SYNTAX
    )


def run(args):
    from ..trainers.generator_config import GenRecTrainingArguments
    from ..trainers.generator_run import train_generator

    out = train_generator(
        args.data,
        args.out,
        quantizer=args.quantizer,
        tokenizer=args.tokenizer,
        profile=args.profile,
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        peft=args.peft,
        base=args.base,
        overwrite=args.overwrite,
        lora={"r": args.lora_r, "alpha": 2 * args.lora_r} if args.peft else None,
        model_overrides={"id_softmax": args.id_softmax} if args.id_softmax else None,
        bf16=None if args.bf16 == "auto" else args.bf16 == "yes",
        **given_settings(args, GenRecTrainingArguments),
    )
    from ..distributed import is_main_process

    if is_main_process():
        print(f"wrote {out}")
    return 0
