"""Data from the Hub: `genrec push-dataset` publishes a dataset folder that `load_dataset` reads by config and
`--data USER/NAME` trains on; `datasets` objects train too (against the local test Hub)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from datasets import load_dataset

from genrec.cli import main as cli
from genrec.data import load_dataset_dir
from genrec.data.hub_dataset import push_dataset
from genrec.errors import DataError
from genrec.pipeline import GenRecPipeline
from genrec.trainers import train_generator

from hub_server import hub  # noqa: F401  (hub is a fixture)


def test_a_pushed_dataset_loads_by_config_and_as_a_genrec_dataset(hub, synth_dir, capsys):
    push_dataset(synth_dir, "tester/synth")
    local = load_dataset_dir(synth_dir)
    items = load_dataset("tester/synth", "items", split="train")
    sequences = load_dataset("tester/synth", "sequences", split="train")
    assert items["item_id"] == local.item_ids and items[0]["title"] == local.items[0]["title"]
    assert len(sequences) == len((synth_dir / "sequences.jsonl").read_text().splitlines())
    remote = load_dataset_dir("tester/synth")
    assert remote.item_ids == local.item_ids and remote.sequences == local.sequences
    assert set(remote.embeddings) == set(local.embeddings)
    for m in local.embeddings:
        assert np.array_equal(remote.embeddings[m], local.embeddings[m])
    assert cli(["inspect", "tester/synth"]) == 0
    assert f"{len(local.sequences)} users, {len(local.item_ids)} items" in capsys.readouterr().out


def test_train_on_a_hub_dataset_and_on_datasets_objects(hub, synth_dir, quantizer_dir, tmp_path):
    push_dataset(synth_dir, "tester/synth")
    run = dict(quantizer=quantizer_dir, profile="tiny", seed=3, max_steps=3)
    hub_run = train_generator("tester/synth", tmp_path / "hub", **run)
    assert json.loads((hub_run / "genrec_train_config.json").read_text())["data"] == "tester/synth"
    splits = {c: load_dataset("tester/synth", c, split="train") for c in ("items", "sequences")}
    mem_run = train_generator(splits, tmp_path / "mem", **run)
    a, b = GenRecPipeline.from_pretrained(hub_run), GenRecPipeline.from_pretrained(mem_run)
    assert a.tokenizer.catalog.fingerprint() == b.tokenizer.catalog.fingerprint()
    with pytest.raises(DataError, match="missing \\['sequences'\\]"):
        train_generator({"items": splits["items"]}, tmp_path / "bad", **run)
