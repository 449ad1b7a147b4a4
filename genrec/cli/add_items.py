"""genrec add-items: put new items into a trained model's catalogue (no weight changes) and write a new folder.

The new items' semantic IDs come from the model's quantizer (``--text-emb`` / ``--image-emb``, one row per
line of ``--items``, NaN rows = the item lacks that modality) or are given (``--sid-text`` /
``--sid-image``, a row of -1 = lacking it). OUT is written atomically; MODEL is never modified.
"""

from __future__ import annotations

from .arguments import add_output_arguments


def add_arguments(p):
    p.add_argument("--model", required=True, help="trained pipeline folder")
    p.add_argument("--items", required=True, help='items.jsonl of the new items (one {"item_id": ...} per line)')
    add_output_arguments(p, "pipeline folder to write (the model with the new items)")
    for m in ("text", "image"):
        p.add_argument(
            f"--{m}-emb", help=f"{m} embeddings of the new items (.npy, [n_new, d]): encoded by the model's quantizer"
        )
        p.add_argument(f"--sid-{m}", help=f"{m} semantic IDs of the new items (.npy int, [n_new, levels])")


def run(args):
    from pathlib import Path

    from ..data.loading import read_embeddings, read_items, read_semantic_ids
    from ..errors import GenRecError
    from ..pipeline import GenRecPipeline
    from ..utils import check_output_dir

    check_output_dir(args.out, "generator", inputs=[args.model, args.items], overwrite=args.overwrite)
    items = read_items(Path(args.items))
    ids = [it["item_id"] for it in items]
    emb = {m: getattr(args, f"{m}_emb") for m in ("text", "image") if getattr(args, f"{m}_emb")}
    sids = {m: getattr(args, f"sid_{m}") for m in ("text", "image") if getattr(args, f"sid_{m}")}
    if bool(emb) == bool(sids):
        raise GenRecError(
            "give the new items' embeddings (--text-emb/--image-emb) or their semantic IDs "
            "(--sid-text/--sid-image), not both and not neither"
        )
    pipe = GenRecPipeline.from_pretrained(args.model)
    if emb:
        pipe.add_items(ids, embeddings={m: read_embeddings(Path(f), len(ids)) for m, f in emb.items()}, display=items)
    else:
        pipe.add_items(
            ids,
            semantic_ids={m: read_semantic_ids(Path(f), len(ids), allow_missing=True) for m, f in sids.items()},
            display=items,
        )
    pipe.save_pretrained(args.out, overwrite=args.overwrite)
    print(f"added {len(ids)} items ({len(pipe.tokenizer.catalog)} in the catalogue); wrote {args.out}")
    return 0
