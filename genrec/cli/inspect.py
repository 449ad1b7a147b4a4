"""genrec inspect: validate a dataset directory and print its counts."""

import json

from .. import DEFAULT_MAX_HISTORY
from .arguments import positive


def add_arguments(p):
    p.add_argument("data", help="dataset directory, or a Hub dataset repo id (user/name)")
    p.add_argument(
        "--max-history",
        type=positive(int),
        default=DEFAULT_MAX_HISTORY,
        help=f"last N history items per row (MACRec: {DEFAULT_MAX_HISTORY})",
    )
    p.add_argument(
        "--interactions",
        choices=["auto", "sequences", "csv"],
        default="auto",
        help="interaction source: sequences.jsonl, interactions.csv, or auto (sequences.jsonl when present)",
    )
    p.add_argument("--json", action="store_true", help="print the counts as JSON")


def run(args):
    from ..data import load_dataset_dir

    data = load_dataset_dir(args.data, max_history=args.max_history, interactions=args.interactions)
    if args.json:
        print(json.dumps(data.summary(), indent=2))
    else:
        print(data.summary_line())
