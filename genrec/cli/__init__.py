"""The ``genrec`` command line: one module per subcommand, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from .. import __version__
from ..errors import GenRecError
from .parser import GenRecParser

# (subcommand, module, one-line help); modules are imported lazily so `genrec --help` is fast.
COMMANDS = [
    ("synth", "synth", "write the built-in synthetic multimodal dataset"),
    ("prepare", "prepare", "convert raw public data (Amazon Reviews 2018) to a dataset directory"),
    ("embed", "embed", "compute text/image embeddings for a dataset with local encoders"),
    ("inspect", "inspect", "load a dataset directory, validate it and print its counts"),
    ("quantize", "quantize", "train the cross-modal RQ-VAE and write semantic IDs"),
    ("tokenize", "tokenize", "build the semantic-ID tokenizer and item catalogue"),
    ("train", "train", "train the T5 generator on the six MACRec tasks"),
    ("evaluate", "evaluate", "rank the whole catalogue for each user and report HR/NDCG"),
    ("recommend", "recommend", "recommend next items for a history"),
    ("add-items", "add_items", "add new items to a trained model's catalogue (cold start, no retraining)"),
    ("push", "push", "publish a trained model folder to the Hugging Face Hub"),
    ("push-dataset", "push_dataset", "publish a dataset folder to the Hub (load_dataset-loadable)"),
    ("serve", "serve", "an HTTP JSON recommendation service over a trained model (extra: serve)"),
    ("app", "app", "a web demo over a trained model: search items, build a history, see recommendations"),
    ("demo", "demo", "synth -> quantize -> tokenize -> train -> evaluate, end to end"),
]

RESUMABLE = ("train", "quantize")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI; ``only``: build just that command's arguments (``main`` passes the command it was given,
    or "" for none: building `train`'s flags imports the trainer, seconds that `genrec --help` need not pay)."""
    parser = GenRecParser(prog="genrec", description="Multimodal generative recommendation.")
    parser.add_argument("--version", action="version", version=f"genrec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, help_ in COMMANDS:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        if only is None or only == name:
            importlib.import_module(f"genrec.cli.{module}").add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser(only=next((a for a in argv if not a.startswith("-")), ""))
    args = parser.parse_args(argv)
    # Under several processes (torchrun / accelerate set RANK) only the first logs progress; the others say
    # only what goes wrong, so no line appears once per process.
    quiet_rank = os.environ.get("RANK", "0") != "0"
    level = logging.DEBUG if args.verbose else logging.WARNING if quiet_rank else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # the HTTP clients log every request at INFO: only with -v
        for name in ("httpx", "httpx2", "httpcore", "httpcore2"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return importlib.import_module(f"genrec.cli.{args._module}").run(args) or 0
    except GenRecError as e:
        print(f"genrec {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only folder, a missing file: one line, not a traceback
        from ..utils import os_error_message

        print(f"genrec {args.command}: error: {os_error_message(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resumable = (
            " (checkpoints are kept: run the same command with --resume to go on)" if args.command in RESUMABLE else ""
        )
        print(f"genrec {args.command}: interrupted{resumable}", file=sys.stderr)
        return 130
