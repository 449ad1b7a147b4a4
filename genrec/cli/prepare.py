"""genrec prepare amazon: raw Amazon Reviews 2018 files -> a dataset directory (5-core, time-ordered)."""

from .arguments import add_output_arguments, positive


def add_arguments(p):
    from ..data.prepare_amazon import DEFAULT_MIN_CORE

    sub = p.add_subparsers(dest="source", metavar="SOURCE", required=True)
    a = sub.add_parser(
        "amazon",
        help="Amazon Reviews 2018, one category",
        description="Convert meta_<Category>.json.gz plus <Category>.json.gz (reviews) or <Category>.csv "
        "(ratings: item,user,rating,timestamp, no header) into a dataset directory: items need title text "
        "(and an image URL with --require-image), repeated (user, item) pairs keep the earliest, then "
        "iterated k-core filtering; see prepare_report.json in the output for the counts.",
    )
    src = a.add_mutually_exclusive_group(required=True)
    src.add_argument("--reviews", help="<Category>.json.gz: JSON lines with reviewerID, asin, unixReviewTime")
    src.add_argument("--ratings", help="<Category>.csv: item,user,rating,timestamp (no header)")
    a.add_argument("--meta", required=True, help="meta_<Category>.json.gz (JSON or Python-literal lines)")
    add_output_arguments(a, "output dataset directory (replaced atomically)")
    a.add_argument("--require-image", action="store_true", help="also drop items without an image URL")
    a.add_argument(
        "--min-core",
        type=positive(int),
        default=DEFAULT_MIN_CORE,
        help=f"every user and item keeps >= this many interactions (default {DEFAULT_MIN_CORE}, MQL4GRec/MACRec)",
    )
    a.add_argument("--skip-malformed", action="store_true", help="count and skip malformed lines instead of failing")


def run(args):
    from ..data import load_dataset_dir
    from ..data.prepare_amazon import REPORT_FILE, PrepareConfig, prepare_amazon

    config = PrepareConfig(min_core=args.min_core, require_image=args.require_image, skip_malformed=args.skip_malformed)
    report = prepare_amazon(
        args.out, meta=args.meta, reviews=args.reviews, ratings=args.ratings, config=config, overwrite=args.overwrite
    )
    for s in report["steps"]:
        print(f"  {s['step']:<45} {s['interactions']:>10} interactions {s['users']:>8} users {s['items']:>8} items")
    skipped = {k: f["malformed_skipped"] for k, f in report["files"].items() if f["malformed_skipped"]}
    if skipped:
        print(f"  skipped malformed lines: {skipped}")
    print(f"wrote {load_dataset_dir(args.out).summary_line()} (counts in {REPORT_FILE})")
