"""Two processes through accelerate (gloo on a CPU-only machine): data-parallel training and sharded evaluation."""

import json
import socket
import subprocess
import sys
import tempfile

import pytest

from conftest import run_genrec


def launch(*args, timeout=600):
    """``accelerate launch --multi_gpu --num_processes 2 -m genrec ...`` (torchrun underneath; on a machine
    without CUDA genrec joins the processes over gloo)."""
    with socket.socket() as s:  # a free port, so parallel test runs never meet
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(port),
        "-m",
        "genrec",
        *map(str, args),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tempfile.gettempdir())


def last_eval_loss(model_dir):
    record = json.loads((model_dir / "genrec_train_config.json").read_text())
    return [e["eval_loss"] for e in record["log_history"] if "eval_loss" in e][-1], record


@pytest.fixture(scope="module")
def two_runs(synth_dir, quantizer_dir, tmp_path_factory):
    """The same training at one global batch of 64: one process x 64, two processes x 32."""
    out = tmp_path_factory.mktemp("ddp")
    common = ["train", "--data", synth_dir, "--quantizer", quantizer_dir, "--profile", "tiny", "--max-steps", "40"]
    run_genrec(*common, "--out", out / "one", "--batch-size", "64")
    proc = launch(*common, "--out", out / "two", "--batch-size", "32")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_two_process_training_matches_one_process(two_runs):
    out, proc = two_runs
    one, rec_one = last_eval_loss(out / "one")
    two, rec_two = last_eval_loss(out / "two")
    # data-parallel: twice the examples per optimizer step, so the same epochs as the 64-batch run
    assert rec_two["log_history"][-1]["epoch"] == pytest.approx(rec_one["log_history"][-1]["epoch"], rel=0.02)
    assert two == pytest.approx(one, rel=0.05)
    assert proc.stdout.count("wrote") == 1  # the folder is written, and reported, by the main process only


def test_sharded_evaluation_equals_one_process(two_runs, synth_dir):
    out, _ = two_runs
    run_genrec("evaluate", "--model", out / "two", "--data", synth_dir, "--out", out / "m1.json")
    proc = launch("evaluate", "--model", out / "two", "--data", synth_dir, "--out", out / "m2.json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "m1.json").read_text()) == json.loads((out / "m2.json").read_text())
    assert proc.stdout.count("NDCG@10") == 1  # printed once


def test_two_process_sequence_training_matches_one_process(synth_dir, quantizer_dir, tmp_path):
    """training_mode=sequences under accelerate: each process collates its own sequence units."""
    common = [
        "train",
        "--data",
        synth_dir,
        "--quantizer",
        quantizer_dir,
        "--profile",
        "tiny",
        "--max-steps",
        "30",
        "--training-mode",
        "sequences",
    ]
    run_genrec(*common, "--out", tmp_path / "one", "--batch-size", "64")
    proc = launch(*common, "--out", tmp_path / "two", "--batch-size", "32")
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, _ = last_eval_loss(tmp_path / "one")
    two, record = last_eval_loss(tmp_path / "two")
    assert record["model_config"]["history_attention"] == "causal"
    assert two == pytest.approx(one, rel=0.05)


def test_two_processes_print_no_warning_and_no_line_once_per_process(two_runs):
    from test_quiet import noise

    _, proc = two_runs
    assert noise(proc.stdout + "\n" + proc.stderr) == []  # no DDP unused-parameter warning, no INFO per rank
