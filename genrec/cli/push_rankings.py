"""``--push-rankings``, shared by ``genrec evaluate`` and ``genrec recommend``."""


def add_push_arguments(p):
    p.add_argument(
        "--push-rankings",
        metavar="REPO_ID",
        help="publish the per-user rankings (with the per-modality lists) as a Hub dataset",
    )
    p.add_argument("--private", action="store_true", help="with --push-rankings: create the dataset private")
    p.add_argument("--token", help="Hub access token (default: HF_TOKEN or the saved login)")


def check_push_target(args) -> None:
    """Refuse a --push-rankings dataset that is not genrec's before any ranking is done."""
    if args.push_rankings:
        from ..hub_rankings import check_rankings_target

        check_rankings_target(args.push_rankings, args.token)


def push_if_asked(args, make_records, split: str) -> None:
    """Publish ``make_records()`` (built only when asked) as ``split`` of the ``--push-rankings`` dataset."""
    if not args.push_rankings:
        return
    from ..hub_rankings import push_rankings

    records = make_records()
    info = push_rankings(records, args.push_rankings, split=split, private=args.private, token=args.token)
    print(f"pushed {len(records)} rankings to dataset {args.push_rankings} (split {split}): {info.commit_url}")
