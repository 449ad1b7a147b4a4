"""genrec push-dataset: publish a dataset folder as a Hub dataset repository that `load_dataset` reads
(``items`` and ``sequences`` configs) and `genrec train --data USER/NAME` trains on."""

from __future__ import annotations


def add_arguments(p):
    p.add_argument("data", metavar="DIR", help="the dataset folder to publish (items.jsonl, sequences.jsonl, ...)")
    p.add_argument("--repo-id", required=True, metavar="NAME", help="Hub dataset repository, namespace/name")
    p.add_argument("--private", action="store_true", help="make the repository private")
    p.add_argument("--token", help="Hub access token (default: HF_TOKEN or the saved login)")


def run(args):
    from ..data.hub_dataset import push_dataset

    info = push_dataset(args.data, args.repo_id, private=args.private, token=args.token)
    print(info.commit_url)
    return 0
