"""RankingConfig (issue 34): every ranking setting saved beside the model, read on load, overridable per call."""

import json
import math
import shutil

import numpy as np
import pytest

from genrec.data.synth import SynthConfig, write_synthetic_dataset
from genrec.errors import GenRecError
from genrec.layout import RANKING_CONFIG_FILE
from genrec.pipeline import GenRecPipeline
from genrec.ranking import RankingConfig


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from genrec.trainers.generator_run import train_generator

    root = tmp_path_factory.mktemp("rc")
    data = write_synthetic_dataset(root / "d", SynthConfig(n_items=60, n_users=80, seed=1))
    q = root / "q"
    q.mkdir()
    rng = np.random.default_rng(0)
    for m in ("text", "image"):
        np.save(q / f"sid_{m}.npy", rng.integers(0, 8, size=(60, 3)))
    return train_generator(
        data, root / "m", quantizer=q, profile="tiny", seed=5, max_steps=10, popularity_correction=0.25
    )


def test_train_writes_the_ranking_settings_and_the_pipeline_reads_them(model):
    saved = json.loads((model / RANKING_CONFIG_FILE).read_text())
    assert saved["popularity_correction"] == 0.25 and saved["num_beams"] == 20 and saved["coverage_power"] == "inf"
    pipe = GenRecPipeline.from_pretrained(model)
    assert pipe.ranking_config == RankingConfig(popularity_correction=0.25)
    assert pipe.ranking_config.coverage_power == math.inf


def test_a_changed_saved_value_changes_recommend_and_a_call_overrides_it(model, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(model, folder)
    history = GenRecPipeline.from_pretrained(folder).tokenizer.item_ids[3:8]
    before = GenRecPipeline.from_pretrained(folder).recommend(history)
    assert len(before.item_ids) == 10
    saved = json.loads((folder / RANKING_CONFIG_FILE).read_text())
    (folder / RANKING_CONFIG_FILE).write_text(json.dumps({**saved, "k": 4, "modality": "text"}))
    pipe = GenRecPipeline.from_pretrained(folder)
    after = pipe.recommend(history)
    assert len(after.item_ids) == 4 and all(s == ["text"] for s in after.sources)
    assert pipe.recommend(history, k=6, modality="fused").item_ids == before.item_ids[:6]  # per-call overrides
    assert pipe(history).item_ids == after.item_ids  # the pipeline is callable, like a transformers pipeline
    pipe.save_pretrained(tmp_path / "again")  # the settings travel on
    assert json.loads((tmp_path / "again" / RANKING_CONFIG_FILE).read_text())["k"] == 4


def test_a_folder_without_the_file_ranks_with_the_defaults_and_its_beam_count(model, tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(model, folder)
    (folder / RANKING_CONFIG_FILE).unlink()
    generation = json.loads((folder / "generation_config.json").read_text())
    (folder / "generation_config.json").write_text(
        json.dumps({**generation, "num_beams": 12, "num_return_sequences": 12})
    )
    pipe = GenRecPipeline.from_pretrained(folder)
    assert pipe.ranking_config == RankingConfig(num_beams=12)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"k": 30}, "k=30 must be between 1 and num_beams=20"),
        ({"fusion": "vote"}, "unknown fusion rule 'vote'"),
        ({"popularity_correction": float("nan")}, "popularity_correction must be a finite number"),
        ({"cold_start_share": 2}, r"cold_start_share must be in \[0, 1\]"),
        ({"modality_weights": {"text": -1}}, "modality_weights"),
        ({"beams": 5}, r"unknown ranking settings \['beams'\]"),
    ],
)
def test_bad_settings_are_refused_by_name(model, tmp_path, bad, match):
    pipe = GenRecPipeline.from_pretrained(model)
    with pytest.raises(GenRecError, match=match):
        pipe.rank([[0, 1]], **bad)
    folder = tmp_path / "m"
    shutil.copytree(model, folder)
    saved = json.loads((folder / RANKING_CONFIG_FILE).read_text())
    (folder / RANKING_CONFIG_FILE).write_text(json.dumps({**saved, **bad}, default=str).replace("NaN", '"nan"'))
    with pytest.raises(GenRecError):
        GenRecPipeline.from_pretrained(folder)
