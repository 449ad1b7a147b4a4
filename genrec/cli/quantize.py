"""genrec quantize: train the cross-modal RQ-VAE on a dataset's embeddings and write semantic IDs.

OUT (written atomically) holds config.json + model.safetensors, sid_<modality>.npy (int64
[n_items, levels], collision-free; a row of -1 = the item lacks that modality), quantizer_metrics.json,
collision_report.json, item_codes.jsonl, pseudo_labels.npz and quantizer_train_log.json.
Checkpoints go to --checkpoint-dir (default OUT.checkpoints); --resume continues from there.
"""

from __future__ import annotations

from .arguments import fraction, non_negative, positive


def add_arguments(p):
    p.add_argument("--data", required=True, help="dataset directory with text_emb.npy and/or image_emb.npy")
    p.add_argument("--out", required=True, help="quantizer folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace OUT even when genrec did not write it (never the input or the current directory)")
    p.add_argument("--modalities", help="comma-separated modalities (default: every *_emb.npy present)")
    p.add_argument("--levels", type=positive(int), default=4, help="code levels L (MACRec: 4)")
    p.add_argument("--codebook-size", type=positive(int), default=256, help="codes per level M (MACRec: 256)")
    p.add_argument("--latent-dim", type=positive(int), default=32, help="latent / code dimension (MQL4GRec: 32)")
    p.add_argument("--hidden-dims", default="512,256,128", help="encoder MLP hidden sizes (MACRec default)")
    p.add_argument("--no-contrastive", action="store_true", help="switch the cross-modal InfoNCE off")
    p.add_argument("--no-alignment", action="store_true", help="switch the reconstruction-alignment loss off")
    p.add_argument("--independent", action="store_true",
                   help="both cross-modal losses off: MQL4GRec-style independent quantizers (ablation)")
    p.add_argument("--lambda-con", type=non_negative(float), default=0.1, help="weight of the contrastive loss (MACRec: 0.1)")
    p.add_argument("--lambda-align", type=non_negative(float), default=0.001,
                   help="weight of the reconstruction-alignment loss (MACRec: 0.001)")
    p.add_argument("--tau", type=positive(float), default=0.1, help="contrastive temperature (MACRec: 0.1)")
    p.add_argument("--contrastive-levels", default="0",
                   help="comma-separated 0-based levels whose input gets the contrastive loss; 0 = the encoder "
                        "output (default), MACRec's paper form is 2,3 (see CrossModalRQVAEConfig)")
    p.add_argument("--n-clusters", type=positive(int), default=512, help="K of the K-means pseudo-labels")
    p.add_argument("--id-modalities",
                   help="comma-separated modalities given as semantic IDs only (sid_<m>.npy in --data, no embeddings): "
                        "their first --id-label-levels codes are the contrastive pseudo-labels of the trained "
                        "modalities, e.g. `--modalities text --id-modalities image` aligns new text IDs with "
                        "existing image IDs")
    p.add_argument("--id-label-levels", type=positive(int), default=1,
                   help="ID prefix length that defines an IDs-only modality's pseudo-label (default 1: first level)")
    p.add_argument("--epochs", type=positive(int), default=300, help="training epochs (our CPU choice; MACRec runs 1000)")
    p.add_argument("--batch-size", type=positive(int), default=1024, help="items per step (MACRec / MQL4GRec: 1024)")
    p.add_argument("--lr", type=positive(float), default=1e-3, help="AdamW learning rate (MACRec / MQL4GRec: 1e-3)")
    p.add_argument("--valid-fraction", type=fraction, default=0.05, help="items held out of training for validation")
    p.add_argument("--eval-every", type=positive(int), default=10, help="epochs between catalogue evaluations")
    p.add_argument("--seed", type=int, default=42, help="seed of initialisation, k-means and batch order")
    p.add_argument("--checkpoint-dir", help="training checkpoints (default: OUT.checkpoints)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --checkpoint-dir")


def run(args):
    from ..errors import GenRecError
    from ..quantizer.metrics import format_table
    from ..trainers.quantizer_trainer import QuantizerTrainingArguments, train_quantizer

    hidden = _int_list("--hidden-dims", args.hidden_dims)
    for name in ("levels", "codebook_size", "latent_dim", "epochs", "batch_size", "eval_every", "n_clusters",
                 "id_label_levels"):
        if getattr(args, name) < 1:
            raise GenRecError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    levels = _int_list("--contrastive-levels", args.contrastive_levels)
    if any(not 0 <= lv < args.levels for lv in levels):
        raise GenRecError(f"--contrastive-levels {args.contrastive_levels}: levels are 0..{args.levels - 1}")
    if not 0 <= args.valid_fraction < 1:
        raise GenRecError(f"--valid-fraction must be in [0, 1), got {args.valid_fraction}")
    config = dict(
        num_levels=args.levels, codebook_size=args.codebook_size, latent_dim=args.latent_dim, hidden_dims=hidden,
        use_contrastive=not (args.no_contrastive or args.independent),
        use_alignment=not (args.no_alignment or args.independent),
        lambda_con=args.lambda_con, lambda_align=args.lambda_align, tau=args.tau,
        contrastive_levels=levels, n_clusters=args.n_clusters, id_label_levels=args.id_label_levels,
    )
    targs = QuantizerTrainingArguments(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, valid_fraction=args.valid_fraction,
        eval_every=args.eval_every, seed=args.seed, checkpoint_dir=args.checkpoint_dir, resume=args.resume,
    )
    modalities = _names(args.modalities)
    _, metrics = train_quantizer(args.data, args.out, config, targs, modalities=modalities,
                                 overwrite=args.overwrite, id_modalities=_names(args.id_modalities))
    print(format_table(metrics))
    print(f"wrote {args.out}")
    return 0


def _names(text: str | None) -> list[str] | None:
    return [m.strip() for m in text.split(",") if m.strip()] if text else None


def _int_list(flag: str, text: str) -> list[int]:
    from ..errors import GenRecError

    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise GenRecError(f"{flag}: expected comma-separated integers, got {text!r}") from None
