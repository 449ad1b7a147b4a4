"""genrec quantize: train the cross-modal RQ-VAE on a dataset's embeddings and write semantic IDs.

OUT (written atomically) holds config.json + model.safetensors, sid_<modality>.npy (int64
[n_items, levels], collision-free; a row of -1 = the item lacks that modality), quantizer_metrics.json,
collision_report.json, item_codes.jsonl, pseudo_labels.npz and quantizer_train_log.json.
Checkpoints go to --checkpoint-dir (default OUT.checkpoints); --resume continues from there.
"""

from __future__ import annotations

from dataclasses import fields

from .arguments import fraction, int_list, name_list, non_negative, positive, quantizer_profile

# flag -> (CrossModalRQVAEConfig field, argparse type, help); defaults and where they come from live on the config
MODEL_FLAGS = {
    "levels": ("num_levels", positive(int), "code levels L"),
    "codebook_size": ("codebook_size", positive(int), "codes per level M"),
    "latent_dim": ("latent_dim", positive(int), "latent / code dimension"),
    "hidden_dims": ("hidden_dims", int_list, "encoder MLP hidden sizes, comma-separated"),
    "lambda_con": ("lambda_con", non_negative(float), "weight of the contrastive loss"),
    "lambda_align": ("lambda_align", non_negative(float), "weight of the reconstruction-alignment loss"),
    "tau": ("tau", positive(float), "contrastive temperature"),
    "contrastive_levels": (
        "contrastive_levels",
        int_list,
        "comma-separated 0-based levels whose input gets the contrastive loss; 0 = the encoder "
        "output, MACRec's paper form is 2,3 (see CrossModalRQVAEConfig)",
    ),
    "n_clusters": ("n_clusters", positive(int), "K of the K-means pseudo-labels"),
    "id_label_levels": (
        "id_label_levels",
        positive(int),
        "ID prefix length that defines an IDs-only modality's pseudo-label",
    ),
}
# flag -> (QuantizerTrainingArguments field, argparse type, help)
TRAINING_FLAGS = {
    "epochs": ("epochs", positive(int), "training epochs (MACRec runs 1000)"),
    "batch_size": ("batch_size", positive(int), "items per step"),
    "lr": ("learning_rate", positive(float), "AdamW learning rate"),
    "valid_fraction": ("valid_fraction", fraction, "items held out of training for validation"),
    "eval_every": ("eval_every", positive(int), "epochs between catalogue evaluations"),
    "seed": ("seed", int, "seed of initialisation, k-means and batch order"),
}


def add_arguments(p):
    from ..quantizer.config import CrossModalRQVAEConfig
    from ..trainers.quantizer_trainer import QuantizerTrainingArguments

    p.add_argument("--data", required=True, help="dataset directory with text_emb.npy and/or image_emb.npy")
    p.add_argument("--out", required=True, help="quantizer folder to write")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT even when genrec did not write it (never the input or the current directory)",
    )
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
    p.add_argument(
        "--profile",
        type=quantizer_profile,
        default="default",
        metavar="NAME|FILE.yaml",
        help="model and training defaults: default (the paper setting), demo (genrec demo's small book), tiny "
        "(tests), or a YAML file of the same shape (genrec/trainers/profile_files/quantizer/*.yaml); flags win",
    )
    p.add_argument("--checkpoint-dir", help="training checkpoints (default: OUT.checkpoints)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --checkpoint-dir")
    config = CrossModalRQVAEConfig()
    training = {f.name: f.default for f in fields(QuantizerTrainingArguments)}
    for flags, default_of in ((MODEL_FLAGS, lambda f: getattr(config, f)), (TRAINING_FLAGS, training.get)):
        for flag, (field, kind, help_) in flags.items():
            default = default_of(field)
            shown = ",".join(map(str, default)) if isinstance(default, list) else default
            p.add_argument(f"--{flag.replace('_', '-')}", type=kind, help=f"{help_} (default {shown})")


def run(args):
    from ..quantizer.metrics import format_table
    from ..trainers.profiles import load_profile
    from ..trainers.quantizer_run import train_quantizer
    from ..trainers.quantizer_trainer import QuantizerTrainingArguments

    defaults = load_profile(args.profile, "quantizer")
    config = {
        **defaults["model"],
        **{
            field: getattr(args, flag) for flag, (field, _, _) in MODEL_FLAGS.items() if getattr(args, flag) is not None
        },
    }
    if args.no_contrastive or args.independent:
        config["use_contrastive"] = False
    if args.no_alignment or args.independent:
        config["use_alignment"] = False
    targs = QuantizerTrainingArguments(
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        **{
            **defaults["args"],
            **{
                field: getattr(args, flag)
                for flag, (field, _, _) in TRAINING_FLAGS.items()
                if getattr(args, flag) is not None
            },
        },
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
