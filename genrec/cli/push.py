"""genrec push: publish a trained model folder (pipeline, generator, quantizer or adapter) to the Hub, and/or
a Gradio Space that demos a pushed model (``--space``)."""

from __future__ import annotations


def add_arguments(p):
    p.add_argument("--model", metavar="DIR", help="the saved model folder to publish")
    p.add_argument("--repo-id", metavar="NAME", help="Hub repository, namespace/name (or name)")
    p.add_argument(
        "--space",
        metavar="NAME",
        help="also (or, with --model-repo alone, only) publish a Gradio demo Space that loads the model from the Hub",
    )
    p.add_argument("--model-repo", metavar="NAME", help="with --space: the Hub model repo the Space demos")
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
    from ..errors import GenRecError
    from ..serving.hub_files import push_space

    if bool(args.model) != bool(args.repo_id) or not (args.model or (args.space and args.model_repo)):
        raise GenRecError(
            "give --model DIR --repo-id NAME (a model), --space NAME --model-repo NAME (a demo Space of a "
            "pushed model), or all of --model, --repo-id and --space"
        )
    if args.model:
        push_model(args)
    if args.space:
        info = push_space(args.space, args.model_repo or args.repo_id, private=args.private, token=args.token)
        print(info.commit_url)
    return 0


def push_model(args):
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
