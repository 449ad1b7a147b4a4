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
from .arguments import positive, profile

logger = logging.getLogger("genrec.train")


def add_arguments(p):
    p.add_argument("--data", required=True, help="dataset directory")
    p.add_argument("--out", required=True, help="pipeline folder to write (atomically, at the end)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT even when genrec did not write it (never the input or the current directory)")
    p.add_argument("--quantizer", help="quantizer output folder with sid_text.npy / sid_image.npy "
                   "(default: the dataset's own sid_*.npy)")
    p.add_argument("--id-embedding-init", metavar="codebook|DIR",
                   help="start the semantic-ID token embeddings at the codebook vectors of --quantizer ('codebook') or "
                        "of a quantizer folder DIR whose IDs the dataset carries (default: random, T5's init)")
    p.add_argument("--tokenizer", help="a `genrec tokenize` output folder, used as it is (e.g. with --text-vocab "
                   "pieces); default: built from --quantizer or the dataset's IDs")
    p.add_argument("--profile", type=profile, default="cpu", metavar="NAME|FILE.yaml",
                   help="model and training defaults: tiny (tests, seconds), cpu (fits a 2-core CPU), paper (MACRec's "
                        "settings), or a YAML file of the same shape (genrec/trainers/profile_files/*.yaml)")
    p.add_argument("--tasks", help=f"comma-separated tasks, from {','.join(TASKS)} (default: the profile's; "
                   "cpu: seqrec,seqimage, tiny and paper: all six)")
    p.add_argument("--no-implicit", action="store_true", help="switch the implicit alignment loss off (ablation)")
    p.add_argument("--seed", type=int, default=42, help="seed of the model initialisation and the data order")
    p.add_argument("--epochs", type=positive(float), help="override the profile's number of epochs")
    p.add_argument("--max-steps", type=positive(int), help="stop after this many optimizer steps")
    p.add_argument("--max-train-minutes", type=positive(float),
                   help="wall-clock budget: the schedule is planned for N minutes, validation ranking (NDCG@10) is "
                        "measured every N/10 minutes and the best checkpoint is kept")
    p.add_argument("--batch-size", type=positive(int), help="per-device batch size in task units (a paired unit = 2 sequences)")
    p.add_argument("--lr", type=positive(float), help="peak learning rate")
    p.add_argument("--patience", type=positive(int), help="early stopping: evaluations without improvement")
    p.add_argument("--batching", choices=["length_buckets", "group_by_length", "random"],
                   help="training batch order (profile default; see GenRecTrainingArguments.batching)")
    p.add_argument("--task-weights", type=_task_weights, metavar="TASK=SHARE,...",
                   help="share of a task's rows drawn each epoch, e.g. item2image=0.25,seqitem2image=0.25 "
                        "(others: 1)")
    p.add_argument("--id-softmax", choices=["full", "prefix"],
                   help="normalise the loss (and beam scores) over the whole vocabulary or over the codes that "
                        "may follow each prefix (profile default)")
    p.add_argument("--max-eval-samples", type=positive(int), help="validation users (profile default)")
    p.add_argument("--max-history", type=positive(int),
                   help="last N history items the model reads (default 20, MACRec); evaluate and recommend use the "
                        "same N")
    p.add_argument("--checkpoint-dir", help="Trainer checkpoints (default: OUT.checkpoints)")
    p.add_argument("--resume", nargs="?", const=True, default=None,
                   help="resume from the last checkpoint in --checkpoint-dir, or from the given checkpoint")
    p.add_argument("--bf16", choices=["auto", "yes", "no"], default="auto", help="bf16 (auto: when the GPU has it)")
    p.add_argument("--peft", choices=["lora"], help="fine-tune --base with LoRA; saves only the adapter")
    p.add_argument("--base", help="generator folder or Hub repo to fine-tune with --peft")
    p.add_argument("--lora-r", type=positive(int), default=8, help="LoRA rank (alpha = 2 r) with --peft lora")


def _task_weights(text: str) -> dict[str, float]:
    weights = {}
    for part in filter(None, (x.strip() for x in text.split(","))):
        task, _, share = part.partition("=")
        try:
            weights[task.strip()] = float(share)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: expected TASK=SHARE, e.g. item2image=0.25") from None
    return weights


def run(args):
    from ..trainers.generator_trainer import train_generator

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
        tasks=[t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None,
        implicit=not args.no_implicit,
        seed=args.seed,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        max_train_minutes=args.max_train_minutes,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        early_stopping_patience=args.patience,
        max_eval_samples=args.max_eval_samples,
        max_history=args.max_history,
        id_embedding_init=args.id_embedding_init,
        batching=args.batching,
        task_weights=args.task_weights,
        model_overrides={"id_softmax": args.id_softmax} if args.id_softmax else None,
        bf16=None if args.bf16 == "auto" else args.bf16 == "yes",
    )
    from ..distributed import is_main_process

    if is_main_process():
        print(f"wrote {out}")
    return 0
