"""Reliability round three (issue 37): resumes, item ids, locks, privacy and one-line errors. Each test names
the item it guards; each failed on the main branch before its fix."""

import json
import os
import shutil

import numpy as np
import pytest

from genrec.data.synth import SynthConfig, write_synthetic_dataset
from genrec.errors import GenRecError

from conftest import genrec_cli

SMALL = SynthConfig(n_items=60, n_users=80, seed=1)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A tiny dataset, random 3-level IDs and a 10-step run with checkpoints at 5 and 10."""
    from genrec.trainers.generator_run import train_generator

    root = tmp_path_factory.mktemp("small")
    data = write_synthetic_dataset(root / "d", SMALL)
    q = root / "q"
    q.mkdir()
    rng = np.random.default_rng(0)
    for m in ("text", "image"):
        np.save(q / f"sid_{m}.npy", rng.integers(0, 8, size=(SMALL.n_items, 3)))
    kw = dict(quantizer=q, profile="tiny", seed=5, save_steps=5, save_total_limit=2)
    model = train_generator(data, root / "m", checkpoint_dir=root / "ck", max_steps=10, **kw)
    return dict(root=root, data=data, q=q, kw=kw, model=model, ck=root / "ck")


def _copy_checkpoints(small, tmp_path):
    ck = tmp_path / "ck"
    shutil.copytree(small["ck"], ck)
    return ck


def _train_argv(small, *more) -> list:
    """`genrec train` on the small dataset and IDs with the tiny profile, then ``more`` flags."""
    return ["train", "--data", small["data"], "--quantizer", small["q"], "--profile", "tiny", *more]


def test_a_longer_resume_survives_its_checkpoint_being_rotated_away(small, tmp_path):
    """Item 2: the resumed checkpoint-10 is deleted by rotation during the run and was read again at its end."""
    from genrec.trainers.generator_run import train_generator

    ck = _copy_checkpoints(small, tmp_path)
    out = train_generator(small["data"], tmp_path / "m", checkpoint_dir=ck, resume=True, max_steps=30, **small["kw"])
    record = json.loads((out / "genrec_train_config.json").read_text())
    assert record["train_metrics"]["epoch"] > 0 and record["log_history"][-1]["step"] == 30
    assert sorted(p.name for p in ck.glob("checkpoint-*")) == ["checkpoint-25", "checkpoint-30"]


def _other_quantizer(small, tmp_path):
    other = tmp_path / "other_q"
    other.mkdir()
    for m in ("text", "image"):
        np.save(other / f"sid_{m}.npy", (np.load(small["q"] / f"sid_{m}.npy") + 1) % 8)
    return other


def test_resume_checks_the_fingerprint_however_the_checkpoint_is_named(small, tmp_path):
    """Item 6: another quantizer's checkpoint was refused only through --checkpoint-dir."""
    from genrec.trainers.generator_run import train_generator

    alone = tmp_path / "elsewhere" / "checkpoint-10"
    shutil.copytree(small["ck"] / "checkpoint-10", alone)  # named on its own, no genrec_run.json beside it
    kw = {**small["kw"], "quantizer": _other_quantizer(small, tmp_path)}
    with pytest.raises(GenRecError, match="was trained on catalogue"):
        train_generator(small["data"], tmp_path / "m", resume=str(alone), max_steps=20, **kw)
    with pytest.raises(GenRecError, match="was trained on catalogue and tasks"):
        train_generator(
            small["data"],
            tmp_path / "m",
            resume=str(alone),
            max_steps=20,
            **{**small["kw"], "tasks": ["seqrec", "seqimage"]},
        )
    (alone / "genrec_run.json").unlink()  # no record at all: the checkpoint's own tokenizer still tells
    with pytest.raises(GenRecError, match="was trained on catalogue"):
        train_generator(small["data"], tmp_path / "m", resume=str(alone), max_steps=20, **kw)
    for name in ("catalog.json", "catalog_codes.safetensors", "tokenizer_config.json"):
        (alone / name).unlink()
    with pytest.raises(GenRecError, match="carries neither genrec_run.json nor its tokenizer"):
        train_generator(small["data"], tmp_path / "m", resume=str(alone), max_steps=20, **small["kw"])
    assert not (tmp_path / "m").exists()


def test_resume_refuses_a_finished_or_damaged_checkpoint_in_one_line(small, tmp_path):
    """Item 6: a checkpoint at --max-steps trained one step more; a cut trainer_state.json or weights file, or
    a crafted pickle, was a traceback."""
    from genrec.trainers.generator_run import train_generator

    ck = _copy_checkpoints(small, tmp_path)
    kw = {**small["kw"], "checkpoint_dir": ck}
    with pytest.raises(GenRecError, match="already at step 10, and --max-steps is 10: nothing is left"):
        train_generator(small["data"], tmp_path / "m", resume=True, max_steps=10, **kw)
    state = ck / "checkpoint-10" / "trainer_state.json"
    state.write_text(state.read_text()[:50])
    with pytest.raises(GenRecError, match="trainer_state.json is damaged"):
        train_generator(small["data"], tmp_path / "m", resume=str(ck / "checkpoint-10"), max_steps=12, **kw)
    weights = ck / "checkpoint-5" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(GenRecError, match="model.safetensors is damaged"):
        train_generator(small["data"], tmp_path / "m", resume=str(ck / "checkpoint-5"), max_steps=12, **kw)
    with pytest.raises(GenRecError, match=r"no complete checkpoint .* \(2 incomplete or damaged\)"):
        train_generator(small["data"], tmp_path / "m", resume=True, max_steps=12, **kw)
    assert not (tmp_path / "m").exists()


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_crafted_pickle_in_a_checkpoint_is_one_line_and_runs_nothing(small, tmp_path):
    """Item 6: a crafted pickle in a trainer checkpoint was a 35-line UnpicklingError."""
    import pickle

    ck = _copy_checkpoints(small, tmp_path)
    (ck / "checkpoint-10" / "rng_state.pth").write_bytes(pickle.dumps(_Exploit()))
    argv = _train_argv(small, "--out", tmp_path / "m", "--checkpoint-dir", ck, "--resume", "--max-steps", "12")
    proc = genrec_cli(*argv, check=False, cwd=tmp_path)
    assert proc.returncode == 2 and "is not plain tensors and was not loaded" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "pwned").exists() and not (tmp_path / "m").exists()


@pytest.mark.parametrize("bad", [None, [1, 2], 1.5, True, "", " ", {"a": 1}])
def test_an_item_id_must_be_a_string_or_an_integer(bad, tmp_path):
    """Item 7: such ids passed `inspect` (compared as their text: null became "None") and add-items took null."""
    from genrec.data import load_dataset_dir
    from genrec.tokenizer.catalog import ItemCatalog

    data = write_synthetic_dataset(tmp_path / "d", SMALL)
    lines = (data / "items.jsonl").read_text().splitlines()
    record = json.loads(lines[3])
    lines[3] = json.dumps({**record, "item_id": bad})
    (data / "items.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(GenRecError, match=r"items.jsonl:4: item_id must be a non-empty string or an integer, got "):
        load_dataset_dir(data)
    catalog = ItemCatalog(["a", 7], {"text": np.array([[0, 1], [1, 0]])}, {"text": 2})
    with pytest.raises(GenRecError, match=r"add_items: item_ids\[1\]: item_id must be"):
        catalog.add_items(["b", bad], {"text": np.array([[1, 1], [0, 0]])})
    assert catalog.item_ids == ["a", 7]  # refused whole: nothing was added


def test_a_user_twice_in_a_histories_file_and_an_empty_history_are_refused(small, tmp_path):
    """Item 7: a duplicate user was ranked twice silently; rank([[]]) returned a list."""
    from genrec.data.loading import read_histories
    from genrec.pipeline import GenRecPipeline

    path = tmp_path / "h.jsonl"
    path.write_text(
        '{"user_id": "u1", "history": [1]}\n{"user_id": 2, "history": [3]}\n{"user_id": "u1", "history": [4]}\n'
    )
    with pytest.raises(GenRecError, match=r"h.jsonl:3: user 'u1' again \(first on line 1\)"):
        read_histories(path)
    pipe = GenRecPipeline.from_pretrained(small["model"])
    with pytest.raises(GenRecError, match=r"histories\[1\] is empty"):
        pipe.rank([[0, 1], []])
    assert pipe.recommend([], k=3).sources == [["popular"]] * 3  # recommend's documented rule for no history


def test_a_second_run_into_the_same_output_is_refused_naming_the_first(small, tmp_path):
    """Item 8: two `genrec train` runs into one --out both exited 0, interleaving checkpoints."""
    import subprocess
    import sys

    from genrec.trainers.generator_run import train_generator
    from genrec.utils import OutputPathError, output_lock

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = tmp_path / ".m.lock"
        lock.write_text(
            json.dumps(
                {"pid": holder.pid, "host": __import__("socket").gethostname(), "started": "2026-12-07 10:00:00"}
            )
        )
        with pytest.raises(OutputPathError, match=rf"m is being written by another genrec run \(pid {holder.pid} on "):
            train_generator(small["data"], tmp_path / "m", max_steps=2, **small["kw"])
        assert lock.is_file() and not (tmp_path / "m").exists() and not (tmp_path / "m.checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and taken over; the run's own locks are gone when it ends
    out = train_generator(small["data"], tmp_path / "m", max_steps=2, **small["kw"])
    assert (out / "model.safetensors").is_file() and not list(tmp_path.glob(".*.lock"))
    with output_lock(tmp_path / "x"):
        with output_lock(tmp_path / "x"):  # the same process may re-enter (a trainer writing its own output)
            assert (tmp_path / ".x.lock").is_file()
        assert (tmp_path / ".x.lock").is_file()
    assert not (tmp_path / ".x.lock").exists()


def test_no_output_or_checkpoint_folder_inside_an_input(small, tmp_path):
    """Item 10: `add-items --out M/quantizer --overwrite` replaced the model's own quantizer; --checkpoint-dir
    inside the dataset wrote checkpoints into it."""
    from genrec.trainers.generator_run import train_generator
    from genrec.utils import OutputPathError

    data = tmp_path / "d"
    shutil.copytree(small["data"], data)
    with pytest.raises(OutputPathError, match="--checkpoint-dir .*ck lies inside the input"):
        train_generator(data, tmp_path / "m", checkpoint_dir=data / "ck", max_steps=2, **small["kw"])
    assert not (data / "ck").exists()
    model = tmp_path / "model"
    shutil.copytree(small["model"], model)
    (tmp_path / "new.jsonl").write_text('{"item_id": "new1"}\n')
    np.save(tmp_path / "sid.npy", np.array([[1, 2, 3]]))
    before = sorted(p.name for p in (model / "quantizer").iterdir()) if (model / "quantizer").exists() else None
    proc = genrec_cli(
        "add-items",
        "--model",
        model,
        "--items",
        tmp_path / "new.jsonl",
        "--sid-text",
        tmp_path / "sid.npy",
        "--sid-image",
        tmp_path / "sid.npy",
        "--out",
        model / "quantizer",
        "--overwrite",
        check=False,
    )
    assert proc.returncode == 2 and "lies inside the input" in proc.stderr, proc.stderr
    assert (sorted(p.name for p in (model / "quantizer").iterdir()) if before is not None else None) == before


def _one_line(argv, capsys, code=2, after_progress=False):
    """The command's one error line (``after_progress``: progress bars may come before it, nothing after)."""
    from genrec.cli import main as cli

    assert cli([str(a) for a in argv]) == code
    err = capsys.readouterr().err.strip().splitlines()
    if after_progress:
        err = [line for line in err if "Traceback" in line or line.startswith("genrec ")]
    assert len(err) == 1 and err[0].startswith(f"genrec {argv[0]}: "), err
    return err[0]


def test_bad_devices_bases_and_configs_are_one_line(small, tmp_path, capsys):
    """Items 9 and 10: --device bogus / cuda without CUDA, a LoRA --base that is no model, --base without --peft
    (a fresh model trained instead, silently) and a malformed quantizer/config.json at add-items."""
    import torch

    history = ["--model", small["model"], "--history", "1", "2"]
    assert "--device bogus: not a torch device" in _one_line(["recommend", *history, "--device", "bogus"], capsys)
    if not torch.cuda.is_available():
        assert "this machine has 0 CUDA device(s)" in _one_line(["recommend", *history, "--device", "cuda"], capsys)
    (tmp_path / "notmodel").mkdir()
    (tmp_path / "notmodel" / "config.json").write_text("{}")
    train = _train_argv(small, "--max-steps", "2")
    line = _one_line([*train, "--out", tmp_path / "o1", "--peft", "lora", "--base", tmp_path / "notmodel"], capsys)
    assert "notmodel: not a genrec generator folder or Hub repo" in line
    line = _one_line([*train, "--out", tmp_path / "o2", "--base", small["model"]], capsys)
    assert "is the model LoRA fine-tunes: pass --peft lora with it" in line and not (tmp_path / "o2").exists()
    model = tmp_path / "mq"
    shutil.copytree(small["model"], model)
    (model / "quantizer" / "config.json").write_text('{"bad')
    (tmp_path / "new.jsonl").write_text('{"item_id": "n1"}\n')
    np.save(tmp_path / "e.npy", np.ones((1, 128), dtype=np.float32))
    line = _one_line(
        [
            "add-items",
            "--model",
            model,
            "--items",
            tmp_path / "new.jsonl",
            "--text-emb",
            tmp_path / "e.npy",
            "--image-emb",
            tmp_path / "e.npy",
            "--out",
            tmp_path / "m2",
        ],
        capsys,
    )
    assert "config.json" in line and not (tmp_path / "m2").exists()


def test_bytes_that_are_not_utf8_are_named_by_file_and_line(tmp_path):
    """Item 9: invalid UTF-8 in items.jsonl or a histories file was a UnicodeDecodeError traceback."""
    from genrec.data import load_dataset_dir
    from genrec.data.loading import read_histories

    data = write_synthetic_dataset(tmp_path / "d", SMALL)
    lines = (data / "items.jsonl").read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"title": "', b'"title": "\xff')
    (data / "items.jsonl").write_bytes(b"".join(lines))
    with pytest.raises(GenRecError, match=r"items.jsonl:3: not UTF-8 text \(byte b'\\xff' at column"):
        load_dataset_dir(data)
    (tmp_path / "h.jsonl").write_bytes(b'{"user_id": "a", "history": [1]}\n{"user_id": "\xc3(", "history": [1]}\n')
    with pytest.raises(GenRecError, match=r"h.jsonl:2: not UTF-8 text"):
        read_histories(tmp_path / "h.jsonl")
    csv_data = tmp_path / "d2"
    csv_data.mkdir()
    (csv_data / "items.jsonl").write_bytes(b"".join(lines[:2] + lines[3:]))
    first = json.loads(lines[0])["item_id"]
    (csv_data / "interactions.csv").write_bytes(
        b"user_id,item_id,timestamp\n" + b"".join(f"u{n % 3},{first},{n}\n".encode() for n in range(4)) + b"u\xe9,1,9\n"
    )
    with pytest.raises(GenRecError, match=r"interactions.csv:6: not UTF-8 text"):
        load_dataset_dir(csv_data)


def test_a_failed_write_leaves_no_temp_file_and_is_one_line(tmp_path, capsys, monkeypatch):
    """Item 9: a full disk was a traceback, and evaluate left `.metrics.json.tmpPID` behind."""
    import errno

    from genrec.utils import atomic_write_file, os_error_message

    def full(fh):
        fh.write(b"{partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    (tmp_path / "metrics.json").write_text('{"n_users": 1}')
    with pytest.raises(OSError) as info:
        atomic_write_file(tmp_path / "metrics.json", full)
    assert info.value.filename == str(tmp_path / "metrics.json")
    assert "the disk is full" in os_error_message(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # the old file, whole; no temp file
    assert (tmp_path / "metrics.json").read_text() == '{"n_users": 1}'

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "s" / "items.jsonl"))

    monkeypatch.setattr("genrec.data.synth.write_synthetic_dataset", no_space)
    line = _one_line(["synth", "--out", tmp_path / "s"], capsys)
    assert line.endswith(
        "No space left on device: "
        + str(tmp_path / "s" / "items.jsonl")
        + "; the disk is full: free space and run it again (nothing half-written was kept)"
    )


def _mount_tmpfs(path, options):
    import subprocess

    path.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("needs root and mount to make a full or read-only file system")
    return path


@pytest.fixture
def full_disk(tmp_path):
    import subprocess

    disk = _mount_tmpfs(tmp_path / "full", "size=64k")
    with open(disk / "filler", "wb") as fh:
        try:
            fh.write(b"\0" * 128 * 1024)
        except OSError:
            pass
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_real_full_disk_is_one_line_and_leaves_nothing(small, full_disk, capsys):
    """Item 9 on a real full file system (tmpfs): synth, tokenize, train and evaluate."""
    for argv in (
        ["synth", "--out", full_disk / "s", "--n-items", "60", "--n-users", "80"],
        ["tokenize", "--data", small["data"], "--quantizer", small["q"], "--out", full_disk / "t"],
        _train_argv(small, "--max-steps", "2", "--out", full_disk / "m", "--checkpoint-dir", full_disk.parent / "ck"),
        [
            "evaluate",
            "--model",
            small["model"],
            "--data",
            small["data"],
            "--out",
            full_disk / "metrics.json",
            "--max-users",
            "5",
        ],
    ):
        assert "No space left on device" in _one_line(argv, capsys, after_progress=True)
        assert sorted(p.name for p in full_disk.iterdir()) == ["filler"], argv[0]


def test_a_read_only_output_is_refused_before_the_work(small, tmp_path, capsys):
    """Item 9: a read-only model folder failed at evaluate's end (after the ranking), a read-only --out too."""
    import subprocess

    ro = _mount_tmpfs(tmp_path / "ro", "ro,size=64k")
    try:
        line = _one_line(
            ["evaluate", "--model", small["model"], "--data", small["data"], "--out", ro / "m.json"], capsys
        )
        assert f"output {ro / 'm.json'}: cannot write in {ro}" in line and "read-only" in line
        line = _one_line(["tokenize", "--data", small["data"], "--quantizer", small["q"], "--out", ro / "t"], capsys)
        assert "cannot write in" in line
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)


def test_ctrl_c_during_training_is_one_line_naming_resume(small, tmp_path):
    """Item 9: Ctrl-C during training was a KeyboardInterrupt traceback."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [
            sys.executable,
            "-X",
            "faulthandler",  # a hang is reported with every thread's stack (SIGABRT below)
            "-m",
            "genrec",
            *map(str, _train_argv(small, "--max-steps", "100000", "--out", tmp_path / "m")),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
    )
    deadline = time.time() + 120  # mid-training: the first checkpoint (step 20) is written
    while time.time() < deadline and not list(tmp_path.glob("m.checkpoints/checkpoint-*")):
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        err = proc.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        pytest.fail(f"still running 60 s after Ctrl-C; its stacks:\n{proc.communicate()[1][-6000:]}")
    assert proc.returncode == 130, err[-2000:]
    assert "genrec train: interrupted (checkpoints are kept: run the same command with --resume" in err
    assert "Traceback" not in err and not (tmp_path / "m").exists() and not list(tmp_path.glob(".*.lock"))


def test_synth_refuses_a_nan_noise_and_leaves_no_dataset(tmp_path):
    """Item 5: `synth --noise nan` left an all-NaN dataset in place, with its artifact marker, before failing."""
    from genrec.data.synth import SynthConfig

    for bad in ("nan", "inf"):
        with pytest.raises(GenRecError, match=f"noise must be a finite number >= 0, got {bad}"):
            SynthConfig(noise=float(bad))
    proc = genrec_cli("synth", "--out", tmp_path / "s", "--noise", "nan", check=False)
    assert proc.returncode == 2 and "noise must be a finite number" in proc.stderr and not (tmp_path / "s").exists()


def test_a_model_with_nan_weights_is_refused_at_load_not_served_empty(small, tmp_path):
    """Item 4: a model with NaN weights (written by an older version, or edited) gave an empty table, exit 0."""
    from safetensors.torch import load_file, save_file

    from genrec.pipeline import GenRecPipeline

    model = tmp_path / "m"
    shutil.copytree(small["model"], model)
    weights = load_file(model / "model.safetensors")
    weights["shared.weight"][3, 0] = float("nan")
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(GenRecError, match="1 weight tensors hold NaN or inf .*the training diverged"):
        GenRecPipeline.from_pretrained(model)


def test_a_history_covering_most_of_the_catalogue_still_gets_k_items(small, caplog):
    """Item 10: such a history got fewer than k items (or none) with no word, although eligible items remained:
    the beams were spent on items of the history. Those lists are decoded again with wider beams."""
    from genrec.pipeline import GenRecPipeline

    pipe = GenRecPipeline.from_pretrained(small["model"])
    ids = pipe.tokenizer.item_ids
    with caplog.at_level("INFO", logger="genrec.pipeline"):
        for n in (50, 55, 58):
            rec = pipe.recommend(ids[:n], k=10)
            assert len(rec.item_ids) == min(10, len(ids) - n) and not set(rec.item_ids) & set(ids[:n])
    assert "decoded again with" in caplog.text
    short = pipe.recommend(ids[:5], k=10)  # an ordinary history is ranked as before: nothing decoded again
    assert len(short.item_ids) == 10


@pytest.mark.parametrize(
    "line, expected",
    [
        (
            '{"item_id": 1, "title": "abc',
            'Invalid control character at the end, after \'{"item_id": 1, "title": "abc\': the text is cut short',
        ),
        ('{"item_id": 1,', "Expecting property name enclosed in double quotes at the end, after '{\"item_id\": 1,'"),
        ('{"item_id": "a\tb"}', "Invalid control character at column 15, near"),
    ],
)
def test_a_json_record_cut_at_its_end_is_reported_as_cut_not_at_column_1(line, expected, tmp_path):
    """Item 11: a record cut at the end of its line was reported "at column 1"; messages read "at at column"."""
    from genrec.data import load_dataset_dir

    data = write_synthetic_dataset(tmp_path / "d", SMALL)
    lines = (data / "items.jsonl").read_text().splitlines()
    lines[1] = line
    (data / "items.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(GenRecError) as info:
        load_dataset_dir(data)
    assert f"items.jsonl:2: malformed JSON ({expected}" in str(info.value)
    assert "at at" not in str(info.value) and "column 1," not in str(info.value)


def test_a_tracker_that_is_not_installed_is_one_line_naming_the_extra(tmp_path, capsys):
    """Issue 36: `--report-to tensorboard` without tensorboard was a raw traceback once training started."""
    from transformers.integrations import get_available_reporting_integrations

    if "tensorboard" in get_available_reporting_integrations():
        pytest.skip("tensorboard is installed here")
    line = _one_line(["train", "--data", tmp_path / "d", "--out", tmp_path / "m", "--report-to", "tensorboard"], capsys)
    assert "--report-to tensorboard: not installed; pip install 'genrec[tensorboard]'" in line


def test_a_ctrl_c_swallowed_mid_step_still_stops_training_at_the_step_end(small, tmp_path):
    """A C extension polling for signals may clear the KeyboardInterrupt of a Ctrl-C and carry on (a CI run
    then trained on for minutes): the interrupt must surface at the next step end anyway."""
    import os
    import signal

    from transformers import TrainerCallback

    from genrec.trainers.generator_run import train_generator

    class SwallowedCtrlC(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 3:
                try:
                    os.kill(os.getpid(), signal.SIGINT)
                except KeyboardInterrupt:  # what such an extension does with it
                    self.swallowed_at = state.global_step

    swallow, before = SwallowedCtrlC(), signal.getsignal(signal.SIGINT)
    kw = {**small["kw"], "save_steps": 2}
    with pytest.raises(KeyboardInterrupt):
        train_generator(small["data"], tmp_path / "m", max_steps=1000, callbacks=[swallow], **kw)
    assert swallow.swallowed_at == 3 and not (tmp_path / "m").exists()
    assert sorted(p.name for p in (tmp_path / "m.checkpoints").glob("checkpoint-*")) == ["checkpoint-2"]
    assert signal.getsignal(signal.SIGINT) == before  # the handler is put back
