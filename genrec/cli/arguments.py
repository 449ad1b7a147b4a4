"""argparse value types shared by the commands: a value out of range is refused at parse time (exit 2, one
line), never reinterpreted (``--max-steps -5`` once meant "train 3 epochs")."""

from __future__ import annotations

import argparse


def _number(kind, text: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None


def _bounded(kind, test, rule: str, name: str):
    """An argparse type: a ``kind`` number for which ``test`` holds, else the error "must be ``rule``"."""

    def parse(text: str):
        value = _number(kind, text)
        if not test(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    parse.__name__ = f"{name} {kind.__name__}"
    return parse


def positive(kind):
    """A number > 0."""
    return _bounded(kind, lambda v: v > 0, "> 0", "positive")


def non_negative(kind):
    """A number >= 0."""
    return _bounded(kind, lambda v: v >= 0, ">= 0", "non-negative")


# a share in [0, 1)
fraction = _bounded(float, lambda v: 0 <= v < 1, "in [0, 1)", "fraction")


port = _bounded(int, lambda v: 0 < v < 65536, "a port number between 1 and 65535", "port")


def add_output_arguments(p, what: str) -> None:
    """``--out`` (required, described by ``what``) and ``--overwrite``, as every command that writes an artifact
    has them."""
    p.add_argument("--out", required=True, help=what)
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT even when genrec did not write it (never the input or the current directory)",
    )


def name_list(text: str) -> list[str]:
    """Comma-separated names, e.g. ``text,image`` (blanks dropped)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def int_list(text: str) -> list[int]:
    """Comma-separated integers, e.g. ``512,256,128``."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def add_ranking_arguments(p) -> None:
    """The ranking flags of evaluate and recommend; unset, the model's ``ranking_config.json`` decides."""
    from genrec.generation.fusion import FUSION_RULES
    from genrec.ranking.config import DEFAULT_NUM_BEAMS

    saved = "default: the model's ranking_config.json; its default:"
    p.add_argument(
        "--modality", choices=["text", "image", "fused"], help=f"which semantic IDs to generate ({saved} both, fused)"
    )
    p.add_argument("--fusion", choices=FUSION_RULES, help=f"how fused lists merge ({saved} MACRec)")
    p.add_argument(
        "--num-beams", type=positive(int), help=f"beams per modality ({saved} {DEFAULT_NUM_BEAMS}, as MACRec)"
    )


def profile(text: str, kind: str = "generator") -> str:
    """A bundled training profile's name or a YAML profile file that loads (``genrec.trainers.profiles``)."""
    from genrec.errors import GenRecError
    from genrec.trainers.profiles import load_profile

    try:
        load_profile(text, kind)
    except GenRecError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_model_arguments(p) -> None:
    """Which trained pipeline a command loads (a folder or a Hub repo at a revision) and on which device."""
    p.add_argument("--model", required=True, help="pipeline folder (genrec train output) or Hub repo id")
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) of --model")
    p.add_argument("--device", default=None, help="torch device (default: cuda where there is one, else cpu)")


def model_placement(args) -> dict:
    """``from_pretrained`` keywords for the flags of ``add_model_arguments``."""
    return {"revision": args.revision, "device": args.device, "device_map": None if args.device else "auto"}


def add_served_model_arguments(p, default_port: int) -> None:
    """The flags ``genrec serve`` and ``genrec app`` share: the model, where to listen."""
    add_model_arguments(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=port, default=default_port, help=f"port to listen on (default: {default_port})")


def missing_serve_extra(command: str, error: ImportError):
    """The GenRecError for ``genrec serve`` / ``app`` without the serve extra installed."""
    from genrec.errors import GenRecError

    return GenRecError(f"genrec {command} needs the serve extra ({error.name} is missing): pip install 'genrec[serve]'")
