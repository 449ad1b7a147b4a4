"""Code shape (issue 18): no function in the package folders is longer than MAX_FUNCTION_LINES."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("genrec", "tokenizer", "trainers", "eval")
MAX_FUNCTION_LINES = 60  # from the `def` line to the last line of the body


def test_no_function_is_longer_than_the_limit():
    offenders = []
    for folder in PACKAGE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        offenders.append(f"{path.relative_to(ROOT).as_posix()}:{node.name}:{length}")
    assert not offenders, (f"functions longer than {MAX_FUNCTION_LINES} lines (file:function:length); split them "
                           "along their jobs:\n" + "\n".join(offenders))
