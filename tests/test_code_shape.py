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
    assert not offenders, (
        f"functions longer than {MAX_FUNCTION_LINES} lines (file:function:length); split them "
        "along their jobs:\n" + "\n".join(offenders)
    )


def test_every_package_folder_is_installed():
    """pyproject.toml lists packages by hand: a new package folder missing there imports from a checkout but not
    from `pip install .` (what CI and users run)."""
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    folders = {name: ROOT / path for name, path in setup["package-dir"].items()}
    listed = set(setup["packages"])
    found = set()
    for name, root in folders.items():
        for init in root.rglob("__init__.py"):
            if ".venv" not in init.parts:
                found.add(".".join([name, *init.parent.relative_to(root).parts]))
    assert not found - listed, f"package folders missing from pyproject.toml's packages: {sorted(found - listed)}"


def test_the_package_metadata_states_its_license_and_typing():
    """Issue 36: an Apache-2.0 claim without a LICENSE file; no classifiers; no py.typed."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8").splitlines()[0]
    assert "Typing :: Typed" in project["classifiers"] and (ROOT / "genrec" / "py.typed").is_file()
