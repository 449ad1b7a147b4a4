"""Every benchmark script runs end to end on tiny synthetic data, so that none can rot (issue 34).

Each script runs in this process as ``python benchmarks/<script> ...`` would (``runpy``), with its result files
sent to a temporary folder (``$GENREC_BENCHMARK_RESULTS``): the committed results must not change, and every
file a script writes must name the command and commit that wrote it.
"""

import json
import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import free_port

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
HELPERS = {"machine.py", "arms.py"}  # imported by the scripts, not run
# scripts with a smoke run of their own elsewhere, and the test that runs it
COVERED_ELSEWHERE = {
    "budget.py": "tests/test_benchmarks.py::"
    "test_budget_benchmark_runs_on_a_text_only_dataset_and_writes_nothing_when_smoke_run",
    "subsample.py": "tests/test_benchmarks.py::test_subsample_keeps_a_seeded_share_of_users_and_links_the_item_files",
}


def smoke_cases(ctx: dict) -> dict[str, list[str]]:
    """Smoke run -> its command line: the script (and, for a second mode of one, a word naming the mode) with
    the fewest steps, users and seconds that still reach every stage, on ``ctx``'s data, model and folders."""
    d, m, run, results = (str(ctx[k]) for k in ("data", "model", "run", "results"))
    return {
        "baselines.py": ["--data", d, "--max-epochs", "1"],
        "coldstart.py": ["--data", d, "--run-dir", run, "--max-steps", "2", "--max-users", "12"],
        "decode_speed.py": ["--data", d, "--users", "2", "--batch-size", "2", "--repeats", "1"],
        "implicit_speed.py": ["--data", d, "--steps", "3", "--batch-size", "16"],
        "levers.py": [
            "--data",
            d,
            "--run-dir",
            run,
            "--minutes",
            "0.01",
            "--arms",
            "base,label_smoothing",
            "--max-steps",
            "2",
            "--max-users",
            "16",
        ],
        "parity_macrec.py": ["--data", d, "--run-dir", run, "--arms", "ours", "--seeds", "1", "--epochs", "0.05"],
        "precision.py": ["--data", d, "--run-dir", run, "--speed-steps", "2", "--steps", "2", "--max-users", "8"],
        "quantizer.py": ["--n-items", "300", "--text-dim", "16", "--image-dim", "8", "--epochs", "2", "--seeds", "1"],
        "ranking_levers.py": ["--model", m, "--data", d, "--users", "12"],
        "ranking_reference.py": ["--model", m, "--data", d, "--users", "3", "--write", f"{results}/ref.json"],
        "real_text.py": [
            *("--data", d, "--run-dir", run, "--resume", "--quantizer-epochs", "1"),
            *("--genrec-epochs", "1", "--models", "genrec", "--max-steps", "2", "--max-users", "8"),
        ],
        "scale.py": ["--items", "200", "--users", "2", "--instruments-model", f"{run}/none"],
        "serve.py": ["--model", m, "--data", d, "--clients", "2", "--seconds", "1", "--port", str(ctx["port"])],
        "train_speed.py": [
            "--data",
            d,
            "--run-dir",
            run,
            "--steps",
            "2",
            "--batch-targets",
            "16",
            "--epochs",
            "0.2",
            "--max-users",
            "16",
        ],
        "train_speed.py budget": ["--data", d, "--run-dir", run, "--minutes", "0.02", "--max-users", "16"],
    }


CASES = sorted(smoke_cases(dict.fromkeys(("data", "model", "run", "results", "port"), "x")))


def test_every_benchmark_script_has_a_smoke_run():
    scripts = {p.name for p in BENCHMARKS.glob("*.py")} - HELPERS
    missing = sorted(scripts - set(COVERED_ELSEWHERE) - {case.split()[0] for case in CASES})
    assert not missing, f"benchmark scripts without a smoke run in {__file__}: {missing}"


@pytest.fixture(scope="module")
def bench_data(synth_dir, tmp_path_factory):
    """The synthetic dataset with its semantic IDs beside it, as a benchmark's --data expects."""
    data = tmp_path_factory.mktemp("bench") / "data"
    shutil.copytree(synth_dir, data)
    rng = np.random.default_rng(0)
    n = len(np.load(data / "text_emb.npy"))
    for m in ("text", "image"):  # 4 levels, as the released IDs and the default quantizer have
        np.save(data / f"sid_{m}.npy", rng.integers(0, 16, size=(n, 4)))
    return data


def _prepare(script: str, run: Path, data: Path) -> None:
    if script == "real_text.py":
        # its embedding step downloads MiniLM: the cached embedded copy stands in for it (offline tests)
        shutil.copytree(data, run / "data")


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_benchmark_script_smoke_run(case, bench_data, tiny_pipeline, tmp_path, monkeypatch, capsys):
    script, results, run = case.split()[0], tmp_path / "results", tmp_path / "run"
    run.mkdir()
    _prepare(script, run, bench_data)
    committed = sorted((BENCHMARKS / "results").iterdir())
    ctx = {"data": bench_data, "model": tiny_pipeline, "run": run, "results": results, "port": free_port()}
    argv = smoke_cases(ctx)[case]
    monkeypatch.setenv("GENREC_BENCHMARK_RESULTS", str(results))
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / script), *argv])
    before = set(sys.modules)
    try:
        runpy.run_path(str(BENCHMARKS / script), run_name="__main__")
    except SystemExit as e:
        assert e.code in (None, 0), f"{script} exited with {e.code}"
    finally:
        for name in set(sys.modules) - before:  # the scripts import each other as top-level modules
            if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(BENCHMARKS)):
                del sys.modules[name]
    assert sorted((BENCHMARKS / "results").iterdir()) == committed, "a smoke run wrote into benchmarks/results"
    written = sorted(results.glob("*")) if results.is_dir() else []
    for f in written:
        if f.suffix == ".md":
            assert "python benchmarks/" + script in f.read_text(), f"{f.name} does not name its command"
        elif f.suffix == ".json" and isinstance(payload := json.loads(f.read_text()), dict):
            command = payload["written_by"]["command"] if "written_by" in payload else payload["command"]
            assert command.startswith(f"python benchmarks/{script}"), f"{f.name} does not name its command"
    assert written or "smoke run" in capsys.readouterr().out, f"{script} wrote nothing and did not say why"
