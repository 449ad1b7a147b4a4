import os
from pathlib import Path

import pytest

SHARED_INSTRUMENTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-instruments-mql4grec"

# Tests never reach the network; keep every HF cache inside the test session.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under pytest-xdist each worker is one process per core: one torch thread each (and in the processes they
# start), since two workers of two threads on two cores wait on each other's threads.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(items):
    """Mark each test by what it runs, read from its source, so the markers cannot fall behind the tests:
    ``subprocess`` (the CLI or Python in a child process) and ``distributed`` (several processes)."""
    import inspect

    for item in items:
        try:
            source = inspect.getsource(item.function)
        except (OSError, TypeError, AttributeError):
            continue
        if "run_genrec(" in source or "subprocess." in source:
            item.add_marker(pytest.mark.subprocess)
        if "torchrun" in source or "accelerate launch" in source or item.path.name == "test_distributed.py":
            item.add_marker(pytest.mark.distributed)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    """A small synthetic dataset shared by the whole session (read-only for tests)."""
    from genrec.data.synth import SynthConfig, write_synthetic_dataset

    return write_synthetic_dataset(
        tmp_path_factory.mktemp("synth") / "data", SynthConfig(n_items=300, n_users=400, seed=7)
    )


@pytest.fixture(scope="session")
def quantizer_dir(synth_dir, tmp_path_factory):
    """sid files as a quantizer writes them: random 3-level codes from 16 per level (the quantizer is
    another component, tested on its own)."""
    import numpy as np

    from genrec.data import load_dataset_dir

    n = load_dataset_dir(synth_dir).n_items
    q = tmp_path_factory.mktemp("quantizer")
    rng = np.random.default_rng(0)
    for m in ("text", "image"):
        np.save(q / f"sid_{m}.npy", rng.integers(0, 16, size=(n, 3)))
    return q


@pytest.fixture(scope="session")
def data(synth_dir):
    """The synthetic dataset, loaded (read-only for tests)."""
    from genrec.data import load_dataset_dir

    return load_dataset_dir(synth_dir)


@pytest.fixture(scope="session")
def tok(data, quantizer_dir):
    """A tokenizer over the synthetic catalogue with ``quantizer_dir``'s IDs."""
    from genrec.tokenizer.build import build_tokenizer

    return build_tokenizer(data, quantizer_dir)


@pytest.fixture
def instruments_dir():
    if not SHARED_INSTRUMENTS.is_dir():
        pytest.skip("shared Instruments data not beside the checkout")
    return SHARED_INSTRUMENTS


def tiny_t5_config(tok, config_cls=None):
    """A 2+2-layer, 32-wide T5 config over ``tok``'s vocabulary (the generation and pipeline tests' model)."""
    from transformers import T5Config

    return (config_cls or T5Config)(
        vocab_size=len(tok),
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
    )


def train_tiny(data_dir, out, quantizer, **overrides):
    """A generator of the ``tiny`` profile (seed 3) on ``data_dir``: the tests' one training recipe."""
    from genrec.trainers import train_generator

    return train_generator(data_dir, out, quantizer=quantizer, profile="tiny", seed=3, **overrides)


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_genrec(*args, check=True, cwd=None, env=None, timeout=None):
    """Run the CLI (`python -m genrec`) in a subprocess, from a neutral folder unless ``cwd`` is given."""
    import subprocess
    import sys
    import tempfile

    return subprocess.run(
        [sys.executable, "-m", "genrec", *map(str, args)],
        capture_output=True,
        text=True,
        check=check,
        cwd=cwd or tempfile.gettempdir(),
        env=env,
        timeout=timeout,
    )


def genrec_cli(*args, check=True, cwd=None):
    """Run the CLI in this process (no torch import to pay: about 5 s less than ``run_genrec`` per call) and
    return what ``run_genrec`` does: ``returncode``, ``stdout``, ``stderr`` (INFO logging included, as the
    command prints it). For what needs a fresh process (startup, signals, environment, noise), ``run_genrec``."""
    import contextlib
    import io
    import logging
    import subprocess

    from genrec.cli import main

    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root, here = logging.getLogger(), os.getcwd()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        os.chdir(cwd or here)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as e:  # argparse's usage errors
                code = e.code if isinstance(e.code, int) else 1
    finally:
        os.chdir(here)
        root.removeHandler(handler)
        root.setLevel(level)
    done = subprocess.CompletedProcess(["genrec", *map(str, args)], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"genrec {args[0]} exited {code}:\n{done.stderr[-3000:]}")
    return done


@pytest.fixture(scope="session")
def tiny_pipeline(synth_dir, quantizer_dir, tmp_path_factory):
    """A pipeline folder trained in about a second (tiny profile) on the synthetic data, shared by the
    session's serving tests (read-only: a test that edits a pipeline loads its own copy)."""
    return train_tiny(synth_dir, tmp_path_factory.mktemp("tiny_pipeline") / "gen", quantizer_dir)
