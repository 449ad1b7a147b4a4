"""genrec push: publish a trained model folder (pipeline, generator, quantizer or adapter) to the Hub."""

from __future__ import annotations


def add_arguments(p):
    p.add_argument("--model", required=True, metavar="DIR", help="the saved model folder to publish")
    p.add_argument("--repo-id", required=True, metavar="NAME", help="Hub repository, namespace/name (or name)")
    p.add_argument(
        "--private",
        action="store_true",
        help="make the repository private (created private, or an existing public one switched)",
    )
    p.add_argument("--revision", metavar="BRANCH", help="branch to commit to (created from main when missing)")
    p.add_argument("--token", help="Hub access token (default: HF_TOKEN or the saved login)")
    p.add_argument("--commit-message", help="commit message (default: a summary of what is uploaded)")
    p.add_argument("--rankings-repo-id", metavar="DATASET", help="rankings dataset to link from the model card")
    p.add_argument(
        "--base-repo-id",
        metavar="NAME",
        help="for a LoRA adapter trained on a local base folder: the Hub repo that base was pushed to",
    )


def run(args):
    from ..hub import push_to_hub

    info = push_to_hub(
        args.model,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        token=args.token,
        commit_message=args.commit_message,
        rankings_repo_id=args.rankings_repo_id,
        base_repo_id=args.base_repo_id,
    )
    print(info.commit_url)
    return 0
