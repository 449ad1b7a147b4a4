"""Output folders never destroy user files; checkpoints never run code (issue 20)."""

import json
import os

import pytest
import torch

from genrec.data.synth import SynthConfig, write_synthetic_dataset
from genrec.utils import ARTIFACT_MARKER, OutputPathError, artifact_kind, atomic_output_dir, check_output_dir

from conftest import genrec_cli

SMALL = SynthConfig(n_items=60, n_users=80, seed=1)


def test_check_output_dir_refuses_what_it_could_destroy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for path, inputs, match in (
        (tmp_path / "notes.txt", (), "is a file"),
        (tmp_path, (), "current directory"),
        (tmp_path.parent, (), "current directory"),
        (data, [data], "would replace the input"),
        (data, [data / "sub" / "x.npy"], "would replace the input"),
    ):
        with pytest.raises(OutputPathError, match=match):
            check_output_dir(path, "tokenizer", inputs)
    check_output_dir(data / "sub", "tokenizer")  # an empty folder holds nothing to lose
    (data / "sub" / "f").write_text("x")
    for path in (data, data / "sub"):
        with pytest.raises(OutputPathError, match="did not write"):
            check_output_dir(path, "tokenizer")
    # allowed: new, empty, or --overwrite of a foreign folder (never an input or the working directory)
    assert check_output_dir(tmp_path / "new", "tokenizer") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty", "tokenizer")
    check_output_dir(data, "tokenizer", overwrite=True)
    with pytest.raises(OutputPathError, match="current directory"):
        check_output_dir(tmp_path, "tokenizer", overwrite=True)


def test_only_a_genrec_artifact_of_the_same_kind_is_replaced(tmp_path):
    out = tmp_path / "tok"
    with atomic_output_dir(out, "tokenizer") as tmp:
        (tmp / "a.json").write_text("1")
    assert artifact_kind(out) == "tokenizer" and json.loads((out / ARTIFACT_MARKER).read_text())["genrec_version"]
    with atomic_output_dir(out, "tokenizer") as tmp:  # a rerun replaces its own artifact
        (tmp / "b.json").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == [ARTIFACT_MARKER, "b.json"]
    with pytest.raises(OutputPathError, match="is a genrec tokenizer folder, not a quantizer folder"):
        with atomic_output_dir(out, "quantizer"):
            pass
    with pytest.raises(RuntimeError):  # a failed write leaves the old artifact and no temp folder
        with atomic_output_dir(out, "tokenizer") as tmp:
            (tmp / "c.json").write_text("3")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"] and (out / "b.json").is_file()


@pytest.mark.slow
def test_cli_refuses_to_write_over_its_input_or_a_file(tmp_path):
    data = write_synthetic_dataset(tmp_path / "d", SMALL)
    (data / "my_notes.txt").write_text("keep me")
    r = genrec_cli("tokenize", "--data", str(data), "--out", str(data), check=False)
    assert r.returncode == 2 and "would replace the input" in r.stderr and "Traceback" not in r.stderr
    r = genrec_cli("synth", "--out", str(data / "items.jsonl"), check=False)
    assert r.returncode == 2 and "is a file" in r.stderr
    r = genrec_cli("synth", "--out", str(data), check=False)  # a dataset genrec wrote, but with the user's notes
    assert r.returncode == 0  # same kind: replaced, as documented
    foreign = tmp_path / "project"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    r = genrec_cli("synth", "--out", str(foreign), check=False)
    assert r.returncode == 2 and "did not write" in r.stderr and (foreign / "thesis.tex").read_text() == "years of work"
    r = genrec_cli("synth", "--out", str(foreign), "--overwrite", "--n-items", "60", "--n-users", "80", check=False)
    assert r.returncode == 0 and not (foreign / "thesis.tex").exists()


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_crafted_quantizer_checkpoint_is_refused_without_running(tmp_path, monkeypatch):
    from genrec.trainers import QuantizerTrainingArguments, train_quantizer

    monkeypatch.chdir(tmp_path)
    data = write_synthetic_dataset(tmp_path / "d", SMALL)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    from genrec.trainers.quantizer_trainer import CHECKPOINT_FILE

    torch.save({"model": _Payload()}, ckpt / CHECKPOINT_FILE)
    args = QuantizerTrainingArguments(epochs=1, checkpoint_dir=str(ckpt), resume=True, progress=False)
    with pytest.raises(Exception, match="not a readable genrec quantizer checkpoint"):
        train_quantizer(
            data, tmp_path / "q", dict(num_levels=2, codebook_size=8, latent_dim=4, hidden_dims=[8], n_clusters=4), args
        )
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "q").exists()


def test_synth_refuses_sizes_it_cannot_meet_instead_of_looping(tmp_path):
    from genrec.errors import DataError

    with pytest.raises(DataError, match=r"n_items \(1\) must be >= max_len \(30\)"):
        SynthConfig(n_items=1, n_users=5)
    with pytest.raises(DataError, match="n_users must be >= 1"):
        SynthConfig(n_users=0)
    r = genrec_cli("synth", "--out", str(tmp_path / "s"), "--n-items", "1", "--n-users", "5", check=False)
    assert r.returncode == 2 and "n_items (1) must be >= max_len" in r.stderr and not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "flag,value",
    [("--max-steps", "0"), ("--batch-size", "0"), ("--lr", "-1"), ("--epochs", "nan"), ("--max-train-minutes", "x")],
)
def test_train_refuses_values_out_of_range_in_one_line(flag, value, tmp_path):
    r = genrec_cli("train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), flag, value, check=False)
    assert r.returncode == 2 and f"argument {flag}" in r.stderr and "Traceback" not in r.stderr


def test_a_folder_shipping_code_is_refused_without_running_or_prompting(tmp_path):
    from genrec.errors import GenRecError
    from genrec.pipeline import GenRecPipeline

    model = tmp_path / "model"
    model.mkdir()
    marker = tmp_path / "pwned"
    (model / "config.json").write_text(
        json.dumps(
            {
                "model_type": "evil_t5",
                "architectures": ["EvilModel"],
                "auto_map": {
                    "AutoConfig": "modeling_evil.EvilConfig",
                    "AutoModelForSeq2SeqLM": "modeling_evil.EvilModel",
                },
            }
        )
    )
    (model / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    with pytest.raises(GenRecError, match="cannot load the generator"):
        GenRecPipeline.from_pretrained(model)  # stdin is not a terminal here: a prompt would hang or fail
    assert not marker.exists()


@pytest.mark.slow
def test_evaluate_out_never_replaces_a_file_it_did_not_write_nor_a_folder(tmp_path, monkeypatch):
    """Issue 37, item 1: ``genrec evaluate --out`` once turned items.jsonl or the model's weights into a metrics
    JSON. The path is checked before anything is loaded or ranked, so no model is needed here."""
    monkeypatch.chdir(tmp_path)
    data = write_synthetic_dataset(tmp_path / "d", SMALL)
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    items = (data / "items.jsonl").read_bytes()
    for out, match in (
        (data / "items.jsonl", "not a metrics file genrec wrote"),
        (model / "model.safetensors", "not a metrics file genrec wrote"),
        (data, "is a folder"),
        (".", "is a folder"),
    ):
        proc = genrec_cli("evaluate", "--model", model, "--data", data, "--out", out, check=False)
        assert proc.returncode == 2 and match in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert (data / "items.jsonl").read_bytes() == items and (model / "model.safetensors").read_bytes() == b"weights"
    assert not [p for p in tmp_path.rglob(".*tmp*")]  # nothing half-written left behind
    from genrec.eval import write_metrics
    from genrec.eval.ranking import is_metrics_file
    from genrec.utils import check_output_file

    earlier = write_metrics({"NDCG@10": 0.1, "n_users": 3}, tmp_path / "metrics.json", echo=False)
    assert check_output_file(earlier, "metrics", is_metrics_file) == earlier  # a rerun replaces its own output


@pytest.mark.slow
def test_a_diverged_training_writes_nothing_and_says_what_to_change(tmp_path):
    """Issue 37, items 4 and 5: NaN weights were saved as a trained model with exit 0; a NaN popularity
    correction was written into item_prior.json."""
    data = write_synthetic_dataset(tmp_path / "d", SMALL)
    q = tmp_path / "q"
    q.mkdir()
    rng = __import__("numpy").random.default_rng(0)
    for m in ("text", "image"):
        __import__("numpy").save(q / f"sid_{m}.npy", rng.integers(0, 8, size=(SMALL.n_items, 3)))
    common = ("train", "--data", data, "--quantizer", q, "--profile", "tiny", "--max-steps", "4")
    proc = genrec_cli(*common, "--out", tmp_path / "m", "--lr", "1e30", "--max-grad-norm", "0", check=False)
    assert proc.returncode == 2 and "training diverged" in proc.stderr and "lower --lr" in proc.stderr, proc.stderr
    assert not (tmp_path / "m").exists()
    proc = genrec_cli(*common, "--out", tmp_path / "m", "--popularity-correction", "nan", check=False)
    assert proc.returncode == 2 and "popularity_correction must be a finite number" in proc.stderr, proc.stderr
    proc = genrec_cli(
        "quantize", "--data", data, "--out", tmp_path / "qd", "--epochs", "2", "--lr", "1e30", check=False
    )
    assert proc.returncode == 2 and "quantizer training diverged" in proc.stderr, proc.stderr
    assert not (tmp_path / "qd").exists()
