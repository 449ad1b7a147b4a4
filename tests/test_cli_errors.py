"""Every command refuses one bad value with exit code 2 and a single line naming the problem (issue 18)."""

import pytest

from genrec.cli import COMMANDS
from genrec.cli import main as cli

# (command line, what the one line must name); one per command, argparse-time and run-time refusals both
BAD = [
    (["synth", "--out", "{tmp}/d", "--n-items", "0"], "n_items must be >= 1"),
    (
        [
            "prepare",
            "amazon",
            "--reviews",
            "{tmp}/r.json",
            "--meta",
            "{tmp}/m.json",
            "--out",
            "{tmp}/o",
            "--min-core",
            "0",
        ],
        "--min-core: must be > 0, got 0",
    ),
    (["embed", "--data", "{tmp}", "--batch-size", "-3"], "--batch-size: must be > 0, got -3"),
    (["inspect", "{tmp}", "--max-history", "0"], "--max-history: must be > 0, got 0"),
    (
        ["quantize", "--data", "{tmp}", "--out", "{tmp}/q", "--valid-fraction", "1.5"],
        "--valid-fraction: must be in [0, 1), got 1.5",
    ),
    (["tokenize", "--data", "{tmp}", "--out", "{tmp}/t", "--text-vocab", "-1"], "--text-vocab: must be >= 0, got -1"),
    (["train", "--data", "{tmp}", "--out", "{tmp}/m", "--max-steps", "-5"], "--max-steps: must be > 0, got -5"),
    (
        ["evaluate", "--model", "{tmp}/m", "--data", "{tmp}", "--num-beams", "zero"],
        "--num-beams: 'zero' is not an integer",
    ),
    (["recommend", "--model", "{tmp}/m", "--history", "1", "--k", "0"], "--k: must be > 0, got 0"),
    (
        [
            "add-items",
            "--model",
            "{tmp}/missing",
            "--items",
            "{tmp}/new.jsonl",
            "--out",
            "{tmp}/m2",
            "--sid-text",
            "{tmp}/s.npy",
        ],
        "new.jsonl: missing file",
    ),
    (["push", "--model", "{tmp}/missing", "--repo-id", "me/m"], "missing does not exist"),
    (["demo", "--out", "{tmp}/demo", "--n-users", "0"], "--n-users: must be > 0, got 0"),
    (["push-dataset", "{tmp}/missing", "--repo-id", "me/d"], "missing: dataset directory does not exist"),
    (["serve", "--model", "{tmp}/m", "--max-wait-ms", "-1"], "--max-wait-ms: must be >= 0, got -1"),
    (["app", "--model", "{tmp}/m", "--port", "70000"], "--port: must be a port number between 1 and 65535"),
]


def test_every_command_is_covered():
    assert {argv[0] for argv, _ in BAD} == {name for name, _, _ in COMMANDS}


@pytest.mark.parametrize("argv, names", BAD, ids=[argv[0] for argv, _ in BAD])
def test_one_bad_value_is_one_line_and_exit_code_2(argv, names, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = cli(argv)
    except SystemExit as e:  # argparse refuses while parsing
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"genrec {argv[0]}") and names in err[0], err
