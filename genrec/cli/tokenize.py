"""genrec tokenize: build and save the semantic-ID tokenizer with its item catalogue."""

from .arguments import add_output_arguments, non_negative


def add_arguments(p):
    p.add_argument("--data", required=True, help="dataset directory")
    p.add_argument("--quantizer", help="a `genrec quantize` output folder (default: the dataset's sid_*.npy)")
    add_output_arguments(p, "output folder (loads with AutoTokenizer.from_pretrained)")
    p.add_argument(
        "--text-vocab",
        type=non_negative(int),
        default=0,
        help="also train a sentencepiece vocabulary of this size on item text (default 0: off)",
    )


def run(args):
    from ..data import load_dataset_dir
    from ..tokenizer.build import build_tokenizer
    from ..utils import atomic_output_dir, check_output_dir

    check_output_dir(args.out, "tokenizer", inputs=[args.data, args.quantizer], overwrite=args.overwrite)
    data = load_dataset_dir(args.data)
    tok = build_tokenizer(data, args.quantizer, text_vocab_size=args.text_vocab)
    with atomic_output_dir(args.out, "tokenizer", inputs=[args.data, args.quantizer], overwrite=args.overwrite) as tmp:
        tok.save_pretrained(tmp)
    print(f"saved tokenizer to {args.out}: vocabulary size {len(tok)}, {len(tok.item_ids)} items")
    for m in tok.modalities:
        shared, ids = tok.catalog.shared_ids(m)
        lacking = int((tok.catalog.codes[m] < 0).all(axis=1).sum())
        print(
            f"  {m}: {tok.num_levels(m)} levels x {tok.codebook_size(m)} codes; "
            f"{shared} items share {ids} IDs; {lacking} items lack this modality"
        )
