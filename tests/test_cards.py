"""Model cards state what ran: the dataset as given, the evaluated split and users, the epochs and steps the
run made, only real loss weights, and limitations that agree with add-items."""

from __future__ import annotations

import json
import shutil

import yaml

from genrec.cli import main as cli
from genrec.hub import card_facts
from genrec.hub_cards import render_card


def test_card_of_a_short_validation_run_states_what_ran(tiny_pipeline, synth_dir, tmp_path, capsys):
    model = tmp_path / "m"
    shutil.copytree(tiny_pipeline, model)
    argv = ["evaluate", "--model", str(model), "--data", str(synth_dir), "--split", "valid", "--max-users", "10"]
    assert cli(argv) == 0
    kind, facts = card_facts(model)
    text = str(render_card(kind, repo_id="tester/m", **facts))
    meta = yaml.safe_load(text.split("---")[1])
    assert "datasets" not in meta  # a local folder is not a Hub dataset
    assert f"**{synth_dir.name}** (a local dataset folder, not on the Hub)" in text
    assert "the **valid** split" in text and "**10 users**" in text and "not a held-out result" in text
    record = json.loads((model / "genrec_train_config.json").read_text())
    assert record["training_args"]["max_steps"] > 0  # the tiny profile stops on steps, before its epochs
    assert f"| `epochs run` | {record['train_metrics']['epoch']:.2f} |" in text
    assert f"| `optimizer steps run` | {record['training_args']['max_steps']} |" in text
    assert "num_train_epochs" not in text
    losses = next(line for line in text.splitlines() if line.startswith("- Loss weights"))
    assert "implicit_weight" in losses and "neftune" not in losses and "prediction_loss_only" not in losses
    assert "genrec\n  add-items" in text or "genrec add-items" in text


def test_a_hub_dataset_is_named_in_the_metadata(tiny_pipeline, tmp_path):
    model = tmp_path / "m"
    shutil.copytree(tiny_pipeline, model)
    record = json.loads((model / "genrec_train_config.json").read_text())
    (model / "genrec_train_config.json").write_text(json.dumps({**record, "data": "someone/instruments"}))
    kind, facts = card_facts(model)
    text = str(render_card(kind, repo_id="tester/m", **facts))
    assert yaml.safe_load(text.split("---")[1])["datasets"] == ["someone/instruments"]
    assert "not on the Hub" not in text
