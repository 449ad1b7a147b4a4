"""Errors raised on bad user input; messages name the file, line and field."""

import json
from pathlib import Path


class GenRecError(Exception):
    """Base class for genrec's user-facing errors (the CLI prints them without a traceback)."""


class DataError(GenRecError, ValueError):
    """A dataset file is missing, malformed or inconsistent."""


class UnknownItemError(GenRecError, ValueError):
    """An item id that the catalogue does not hold."""


class MalformedIDError(GenRecError, ValueError):
    """A token sequence that is not a well-formed semantic ID of the asked modality."""


def check_item_id(value, where: str) -> None:
    """An item id is a non-empty string or an integer; ``where`` (file:line) names the record otherwise. Other
    JSON values (null, true, 1.5, lists, objects) would be compared as their text and silently mismatch."""
    ok = (isinstance(value, str) and value.strip() != "") or (isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise DataError(f"{where}: item_id must be a non-empty string or an integer, got {json.dumps(value)}")


def json_error_detail(e: json.JSONDecodeError) -> str:
    """Where a JSON text breaks and what is there: "Expecting ',' delimiter at line 3 column 17, near '...'"
    (the line is left out for a one-line text such as a JSONL record)."""
    msg = e.msg.removesuffix(" at")  # "Invalid control character at" already ends in "at"
    text = e.doc.rstrip()
    if e.pos >= len(text):  # the break is past the last character: a record cut short, not column 1 of nothing
        where = f" (line {text.count(chr(10)) + 1})" if "\n" in text else ""
        return (
            f"{msg} at the end{where}, after {text[-40:]!r}: the text is cut short (a closing quote or bracket "
            "is missing)"
        )
    lines = e.doc.splitlines() or [""]
    line = lines[min(e.lineno, len(lines)) - 1]
    where = f"line {e.lineno} column {e.colno}" if len(lines) > 1 else f"column {e.colno}"
    return f"{msg} at {where}, near {line[max(e.colno - 21, 0) : e.colno + 20]!r}"


def parse_json_object(text: str, where: str, what: str = "a JSON object") -> dict:
    """``text`` parsed as a JSON object; otherwise a DataError that starts with ``where`` (file[:line])."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: malformed JSON ({json_error_detail(e)})") from None
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected {what}, got a JSON {type(data).__name__}")
    return data


def read_json_file(path, what: str = "a JSON object") -> dict:
    """The JSON object in ``path``; a missing, unreadable or malformed file is a DataError naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: missing file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read ({e})") from None
    return parse_json_object(text, str(path), what)
