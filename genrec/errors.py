"""Errors raised on bad user input; messages name the file, line and field."""


class GenRecError(Exception):
    """Base class for genrec's user-facing errors (the CLI prints them without a traceback)."""


class DataError(GenRecError, ValueError):
    """A dataset file is missing, malformed or inconsistent."""


class NotYetAvailableError(GenRecError):
    """A feature that a later milestone fills in."""


class UnknownItemError(GenRecError, ValueError):
    """An item id that the catalogue does not hold."""


class MalformedIDError(GenRecError, ValueError):
    """A token sequence that is not a well-formed semantic ID of the asked modality."""
