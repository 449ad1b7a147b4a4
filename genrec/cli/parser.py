"""``GenRecParser``: the CLI's one argument parser.

The commands whose settings are dataclasses (``genrec train``: ``GenRecTrainingArguments``; ``genrec quantize``:
``QuantizerModelArguments`` and ``QuantizerTrainingArguments``) get every field as a flag, built by
transformers' ``HfArgumentParser`` from the field's type and its ``help``, beside ``--profile NAME|FILE.yaml``
(the profile gives the defaults, a flag given on the command line wins: TRL's ``TrlParser`` pairs
``HfArgumentParser`` with a YAML config the same way). A usage error is one line, exit code 2.
"""

from __future__ import annotations

import argparse
from typing import Callable


class GenRecParser(argparse.ArgumentParser):
    """argparse with one-line usage errors and dataclass fields as flags (``add_settings``)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def add_profile(self, kind: str, default: str, names: str) -> None:
        """``--profile NAME|FILE.yaml``: a bundled profile of ``kind`` ("generator" / "quantizer") or a YAML file
        of the same shape, checked at parse time."""
        from .arguments import profile

        folder = "profile_files/quantizer" if kind == "quantizer" else "profile_files"
        self.add_argument(
            "--profile",
            type=lambda text: profile(text, kind),
            default=default,
            metavar="NAME|FILE.yaml",
            help=f"model and training defaults: {names}, or a YAML file of the same shape "
            f"(genrec/trainers/{folder}/*.yaml); flags given here win",
        )

    def add_settings(
        self,
        settings: type,
        title: str,
        skip: frozenset[str] | set[str] = frozenset(),
        spellings: dict[str, str] | None = None,
        types: dict[str, Callable] | None = None,
        syntax: dict[str, tuple[Callable, str, str]] | None = None,
    ) -> None:
        """Every field of the dataclass ``settings`` (but ``skip``) as a dashed flag with the field's help. A flag
        left out is absent from the parsed namespace, so the profile's value stands (``given_settings``).
        ``spellings``: a short first spelling kept beside the field's own (``learning_rate``: ``--lr``);
        ``types``: value checks (``positive(int)``, ...); ``syntax``: (type, metavar, help) for a field whose
        command-line form differs from its type (comma-separated lists)."""
        from transformers import HfArgumentParser

        spellings, types, syntax = spellings or {}, types or {}, syntax or {}
        group = self.add_argument_group(f"{title} ({settings.__name__}; unset: the profile's value)")
        names = []
        for action in HfArgumentParser(settings, add_help=False)._actions:
            if action.dest in skip:
                continue
            # one spelling, dashed as every other genrec flag (HfArgumentParser adds --field_name too)
            action.option_strings = [o for o in action.option_strings if "_" not in o]
            if action.dest in spellings:
                action.option_strings.insert(0, spellings[action.dest])
            action.type = types.get(action.dest, action.type)
            if action.dest in syntax:
                action.type, action.metavar, action.help = syntax[action.dest]
                action.nargs = None
            action.help = action.help or f"{settings.__name__}.{action.dest}"  # a few of TrainingArguments'
            action.default = argparse.SUPPRESS
            group._add_action(action)  # argparse's own route for an action built elsewhere
            names.append(action.dest)
        self.set_defaults(**{_fields_key(settings): sorted(set(names))})


def _fields_key(settings: type) -> str:
    return f"_fields_{settings.__name__}"


def given_settings(args: argparse.Namespace, settings: type) -> dict:
    """The fields of ``settings`` given on the command line, by name."""
    return {name: getattr(args, name) for name in getattr(args, _fields_key(settings), ()) if hasattr(args, name)}
