"""argparse value types shared by the commands: a value out of range is refused at parse time (exit 2, one
line), never reinterpreted (``--max-steps -5`` once meant "train 3 epochs")."""

from __future__ import annotations

import argparse


def _number(kind, text: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None


def positive(kind):
    """A number > 0."""
    def parse(text: str):
        value = _number(kind, text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def non_negative(kind):
    """A number >= 0."""
    def parse(text: str):
        value = _number(kind, text)
        if not value >= 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value

    parse.__name__ = f"non-negative {kind.__name__}"
    return parse


def fraction(text: str) -> float:
    """A share in [0, 1)."""
    value = _number(float, text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


class OneLineErrorParser(argparse.ArgumentParser):
    """A usage error is one line naming the problem (and where to read more), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
