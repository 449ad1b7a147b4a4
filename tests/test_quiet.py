"""A normal run is quiet: train, evaluate, push and LoRA fine-tuning print no warning line and no line twice
(progress bars aside). Each command runs in a fresh process, as a user runs it."""

from __future__ import annotations

import contextlib
import os
import re

import pytest

from conftest import run_genrec
from hub_server import hub, hub_env  # noqa: F401  (hub is a fixture)

PROGRESS = re.compile(r"\d+%\||it/s|s/it|\[\d+:\d+")  # tqdm's bar lines


def noise(output: str) -> list[str]:
    """Warning lines, lines printed more than once, and transformers' load/save bars of a command's output."""
    lines = [line.strip() for line in output.replace("\r", "\n").splitlines()]
    bars = sorted({line.split(":")[0] for line in lines if re.match(r"(Writing model shards|Loading weights)", line)})
    lines = [line for line in lines if line and not PROGRESS.search(line)]
    warnings = [line for line in lines if re.search(r"warn", line, re.I)]
    repeated = sorted({line for line in lines if lines.count(line) > 1})
    return warnings + [f"(twice) {line}" for line in repeated] + bars


@pytest.mark.slow
def test_train_evaluate_push_and_lora_print_no_warning_and_no_line_twice(hub, synth_dir, quantizer_dir, tmp_path):
    env = {**os.environ, **hub_env(hub.url, tmp_path / "hf_home")}
    m, lora = tmp_path / "m", tmp_path / "lora"
    steps = ["--profile", "tiny", "--max-steps", "4", "--save-steps", "2"]
    commands = [
        ("train", "--data", synth_dir, "--quantizer", quantizer_dir, "--out", m, *steps),
        ("evaluate", "--model", m, "--data", synth_dir, "--max-users", "20"),
        ("push", "--model", m, "--repo-id", "tester/quiet"),
        ("push", "--model", m, "--repo-id", "tester/quiet"),  # unchanged: says so, once
        (
            "train",
            "--data",
            synth_dir,
            "--quantizer",
            quantizer_dir,
            "--out",
            lora,
            "--peft",
            "lora",
            "--base",
            m,
            *steps,
        ),
    ]
    for argv in commands:
        run = run_genrec(*argv, env=env, check=False)
        assert run.returncode == 0, run.stderr[-3000:]
        assert noise(run.stdout + "\n" + run.stderr) == [], f"genrec {argv[0]}"


def test_checkpoints_saved_in_the_same_second_do_not_warn_about_mtime(tmp_path):
    """Trainer's checkpoint rotation warns "mtime may not be reliable" when two checkpoints are less than a
    second apart (a fast machine, a tiny model) and falls back to step order, which is right for ours:
    training drops that one message and keeps every other warning of the logger."""
    import logging

    from transformers.trainer_utils import sort_checkpoints

    from genrec.utils import quiet_logger

    for step in (2, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
        os.utime(tmp_path / f"checkpoint-{step}", (1e9, 1e9))
    log = logging.getLogger("transformers.trainer_utils")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    log.addHandler(handler)
    try:
        for quiet in (True, False):
            logging.Logger.warning_once.cache_clear()  # transformers says it once per process
            with quiet_logger(log.name, "mtime may not be reliable") if quiet else contextlib.nullcontext():
                order = sort_checkpoints(str(tmp_path), use_mtime=True)
                log.warning("another warning")
            assert [os.path.basename(p) for p in order] == ["checkpoint-2", "checkpoint-4"]
            mtime = [m for m in seen if "mtime" in m]
            assert (mtime == []) if quiet else len(mtime) == 1, seen
            assert seen.count("another warning") == 1
            seen.clear()
    finally:
        log.removeHandler(handler)
