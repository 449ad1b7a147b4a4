"""genrec recommend: next items for one history (--history) or a file of histories (--histories), as a
table or JSON, optionally published to the Hub as a rankings dataset (--push-rankings)."""

from __future__ import annotations

import json

from .arguments import add_model_arguments, add_ranking_arguments, model_placement, positive
from .push_rankings import add_push_arguments, check_push_target, push_if_asked

RANKINGS_SPLIT = "recommendations"  # the dataset split --push-rankings writes


def add_arguments(p):
    add_model_arguments(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--history", nargs="+", metavar="ITEM_ID", help="item ids, oldest first")
    which.add_argument(
        "--histories",
        metavar="FILE",
        help='JSON lines {"user_id": ..., "history": [item ids, oldest first]}, one user a line',
    )
    p.add_argument(
        "--k",
        type=positive(int),
        help="items to return, at most --num-beams (default: the model's ranking_config.json; its default: 10)",
    )
    add_ranking_arguments(p)
    p.add_argument(
        "--include-history", action="store_true", help="allow items of the history in the list (default: left out)"
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="--history: an item id the catalogue does not know is an error (default: dropped with a "
        "warning; a history of only unknown ids gets the popular items). --histories files are "
        "always checked strictly, naming the line",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    add_push_arguments(p)


def print_table(items, scores, sources, catalog) -> None:
    """One line per item; its title (and brand) where the catalogue has them."""
    width = max([7] + [len(str(i)) for i in items])
    print(f"{'rank':>4}  {'item_id':<{width}}  {'score':>10}  {'from':<10}  title")
    for n, (item, score, src) in enumerate(zip(items, scores, sources), 1):
        info = catalog.describe(item) if item in catalog else {}
        title = " - ".join(str(info[f]) for f in ("title", "brand") if f in info)
        print(f"{n:>4}  {str(item):<{width}}  {score:>10.4f}  {'+'.join(src):<10}  {title}".rstrip())


def ranking_config(args, pipe):
    """The model's ranking settings with the flags given; the history is left out unless --include-history."""
    return pipe.ranking_config.with_overrides(
        k=args.k,
        modality=args.modality,
        fusion=args.fusion,
        num_beams=args.num_beams,
        exclude_history=not args.include_history,
    )


def run(args):
    from ..pipeline import GenRecPipeline

    pipe = GenRecPipeline.from_pretrained(args.model, **model_placement(args))
    if args.histories:
        return run_file(args, pipe)
    if args.push_rankings:
        from ..errors import GenRecError

        raise GenRecError("--push-rankings publishes a file of histories: use it with --histories FILE")
    # Ids on the command line are strings; the catalogue compares ids as text, so 12 and "12" agree.
    config = ranking_config(args, pipe)
    rec = pipe.recommend(args.history, config, strict=args.strict)
    if args.json:
        print(
            json.dumps(
                {
                    "history": args.history,
                    "k": config.k,
                    "modality": config.modality,
                    "fusion": config.fusion,
                    "num_beams": config.num_beams,
                    **rec.to_dict(),
                    "details": [pipe.tokenizer.catalog.describe(i) for i in rec.item_ids],
                }
            )
        )
        return 0
    print_table(rec.item_ids, rec.scores, rec.sources, pipe.tokenizer.catalog)
    return 0


def run_file(args, pipe):
    from ..data.loading import read_histories
    from ..errors import GenRecError

    check_push_target(args)
    users, rows = [], []
    for lineno, user, history in read_histories(args.histories):
        try:
            rows.append(pipe.history_rows(history))
        except GenRecError as e:
            raise GenRecError(f"{args.histories}:{lineno} (user {user!r}): {e}") from None
        users.append(user)
    res = pipe.rank(rows, ranking_config(args, pipe), progress=not args.json)
    records = pipe.ranking_records(users, rows, res)
    for rec in records:
        if args.json:
            print(json.dumps(rec))
            continue
        print(f"user {rec['user_id']}")
        print_table(rec["items"], rec["scores"], rec["sources"], pipe.tokenizer.catalog)
    push_if_asked(args, lambda: records, RANKINGS_SPLIT)
    return 0
