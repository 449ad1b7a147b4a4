"""genrec demo: not yet available (issue 6)."""

from ..errors import NotYetAvailableError


def add_arguments(p):
    p.add_argument("rest", nargs="*", help="(not yet available)")


def run(args):
    raise NotYetAvailableError("'genrec demo' is not yet available in this version (tracked in issue 6)")
