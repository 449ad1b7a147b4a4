"""genrec quantize: train the cross-modal RQ-VAE on a dataset's embeddings and write semantic IDs.

OUT (written atomically) holds config.json + model.safetensors, sid_<modality>.npy (int64
[n_items, levels], collision-free; a row of -1 = the item lacks that modality), quantizer_metrics.json,
collision_report.json, item_codes.jsonl, pseudo_labels.npz and quantizer_train_log.json.
Checkpoints go to --checkpoint-dir (default OUT.checkpoints); --resume continues from there.
"""

from __future__ import annotations

from .arguments import add_output_arguments, fraction, int_list, name_list, non_negative, positive
from .parser import given_settings

# Value checks of the settings' flags (a negative count is refused, never reinterpreted), the short spellings
# genrec has always had, and the comma-separated form of the list fields.
TYPES = {
    "num_levels": positive(int),
    "codebook_size": positive(int),
    "latent_dim": positive(int),
    "lambda_con": non_negative(float),
    "lambda_align": non_negative(float),
    "tau": positive(float),
    "n_clusters": positive(int),
    "id_label_levels": positive(int),
    "epochs": positive(int),
    "batch_size": positive(int),
    "learning_rate": positive(float),
    "weight_decay": non_negative(float),
    "max_grad_norm": positive(float),
    "valid_fraction": fraction,
    "eval_every": positive(int),
    "save_every": positive(int),
}
SPELLINGS = {"num_levels": "--levels", "learning_rate": "--lr"}
SYNTAX = {
    "hidden_dims": (int_list, "N,N,...", "encoder MLP hidden sizes, comma-separated"),
    "contrastive_levels": (
        int_list,
        "L,...",
        "comma-separated 0-based levels whose input gets the contrastive loss; 0 = the encoder output, "
        "MACRec's paper form is 2,3 (see CrossModalRQVAEConfig)",
    ),
}
# set by their own flags (--checkpoint-dir, --resume) or not a command-line matter (progress bars)
NOT_FLAGS = {"checkpoint_dir", "resume", "progress"}


def add_arguments(p):
    from ..trainers.quantizer_config import QuantizerModelArguments, QuantizerTrainingArguments

    p.add_argument("--data", required=True, help="dataset directory with text_emb.npy and/or image_emb.npy")
    add_output_arguments(p, "quantizer folder to write")
    p.add_argument("--modalities", type=name_list, help="comma-separated modalities (default: every *_emb.npy present)")
    p.add_argument("--no-contrastive", action="store_true", help="switch the cross-modal InfoNCE off")
    p.add_argument("--no-alignment", action="store_true", help="switch the reconstruction-alignment loss off")
    p.add_argument(
        "--independent",
        action="store_true",
        help="both cross-modal losses off: MQL4GRec-style independent quantizers (ablation)",
    )
    p.add_argument(
        "--id-modalities",
        type=name_list,
        help="comma-separated modalities given as semantic IDs only (sid_<m>.npy in --data, no embeddings): "
        "their first --id-label-levels codes are the contrastive pseudo-labels of the trained "
        "modalities, e.g. `--modalities text --id-modalities image` aligns new text IDs with "
        "existing image IDs",
    )
    p.add_profile("quantizer", "default", "default (the paper setting), demo (genrec demo's small book), tiny (tests)")
    p.add_argument("--checkpoint-dir", help="training checkpoints (default: OUT.checkpoints)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --checkpoint-dir")
    for settings, title in ((QuantizerModelArguments, "model"), (QuantizerTrainingArguments, "training")):
        p.add_settings(settings, title, NOT_FLAGS, spellings=SPELLINGS, types=TYPES, syntax=SYNTAX)


def run(args):
    from ..quantizer.metrics import format_table
    from ..trainers.profiles import load_profile
    from ..trainers.quantizer_config import QuantizerModelArguments, QuantizerTrainingArguments
    from ..trainers.quantizer_run import train_quantizer

    defaults = load_profile(args.profile, "quantizer")
    config = {**defaults["model"], **given_settings(args, QuantizerModelArguments)}
    if args.no_contrastive or args.independent:
        config["use_contrastive"] = False
    if args.no_alignment or args.independent:
        config["use_alignment"] = False
    targs = QuantizerTrainingArguments(
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        **{**defaults["args"], **given_settings(args, QuantizerTrainingArguments)},
    )
    _, metrics = train_quantizer(
        args.data,
        args.out,
        config,
        targs,
        modalities=args.modalities or None,
        overwrite=args.overwrite,
        id_modalities=args.id_modalities or None,
    )
    print(format_table(metrics))
    print(f"wrote {args.out}")
    return 0
