"""The doors a Hugging Face user tries: the registered pipeline task, and GenRecPipeline's transformers-style
loading, placing and publishing (Hub parts against the local test Hub)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import pipeline

from genrec.cli import main as cli
from genrec.errors import GenRecError
from genrec.pipeline import GenRecPipeline

from hub_server import hub  # noqa: F401  (a fixture)


@pytest.fixture(scope="module")
def pipe(tiny_pipeline):
    return GenRecPipeline.from_pretrained(tiny_pipeline)


def ids_of(records):
    return [r["item_id"] for r in records]


def test_pipeline_task_ranks_like_genrec_pipeline(tiny_pipeline, pipe):
    task = pipeline("next-item-recommendation", model=str(tiny_pipeline))
    items = pipe.tokenizer.item_ids
    one = task([items[1], items[2]], k=4)
    assert ids_of(one) == pipe.recommend([items[1], items[2]], k=4).item_ids
    assert one[0]["title"] == pipe.tokenizer.catalog.describe(one[0]["item_id"])["title"]
    two = task([[items[3]], [items[4], items[5]]], modality="text")
    assert [ids_of(r) for r in two] == [
        r.item_ids for r in pipe.recommend([[items[3]], [items[4], items[5]]], modality="text")
    ]
    with pytest.raises(TypeError, match="unknown parameters"):
        task([items[1]], temperature=0.7)
    with pytest.raises(TypeError, match="list of item ids"):
        task("not a list")


def test_from_pretrained_takes_transformers_keywords(tiny_pipeline, pipe, tmp_path):
    history = pipe.tokenizer.item_ids[:3]
    expected = pipe.recommend(history, k=5).item_ids
    half = GenRecPipeline.from_pretrained(tiny_pipeline, dtype="bfloat16")
    assert half.dtype == torch.bfloat16 and half.model.dtype == torch.bfloat16
    auto = GenRecPipeline.from_pretrained(tiny_pipeline, device_map="auto")
    assert auto.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert auto.to("cpu") is auto and auto.device.type == "cpu" and auto(history, k=5).item_ids == expected
    with pytest.raises(GenRecError, match="one device"):
        GenRecPipeline.from_pretrained(tiny_pipeline, device_map={"encoder": "cpu", "decoder": "cuda:1"})
    with pytest.raises(GenRecError, match="floating-point"):
        GenRecPipeline.from_pretrained(tiny_pipeline, dtype="int8")
    shutil.copytree(tiny_pipeline, tmp_path / "repo" / "recommender")
    nested = GenRecPipeline.from_pretrained(tmp_path / "repo", subfolder="recommender")
    assert nested.recommend(history, k=5).item_ids == expected
    with pytest.raises(GenRecError, match="no subfolder"):
        GenRecPipeline.from_pretrained(tmp_path / "repo", subfolder="elsewhere")


def test_push_to_hub_and_back_with_revision_cache_dir_and_local_files_only(hub, tiny_pipeline, tmp_path, capsys):
    live = GenRecPipeline.from_pretrained(tiny_pipeline)
    history = live.tokenizer.item_ids[:3]
    first = live.push_to_hub("tester/doors")
    live.ranking_config = live.ranking_config.with_overrides(num_beams=5, k=5)  # a second commit that ranks differently
    live.push_to_hub("tester/doors")
    old = GenRecPipeline.from_pretrained("tester/doors", revision=first.oid, cache_dir=tmp_path / "cache")
    assert old.ranking_config.num_beams == GenRecPipeline.from_pretrained(tiny_pipeline).ranking_config.num_beams
    new = GenRecPipeline.from_pretrained("tester/doors", cache_dir=tmp_path / "cache")
    assert new.ranking_config.num_beams == 5 and new.recommend(history).item_ids == live.recommend(history).item_ids
    assert (
        cli(
            ["recommend", "--model", "tester/doors", "--revision", first.oid, "--json", "--history", *map(str, history)]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["num_beams"] == old.ranking_config.num_beams
    hub.stop()  # no Hub: the cached snapshot only
    cached = GenRecPipeline.from_pretrained("tester/doors", cache_dir=tmp_path / "cache", local_files_only=True)
    assert cached.ranking_config.num_beams == 5
    with pytest.raises(GenRecError, match="local_files_only"):
        GenRecPipeline.from_pretrained("tester/doors", cache_dir=tmp_path / "empty", local_files_only=True)


def test_train_generator_takes_callbacks_and_a_trainer_subclass(synth_dir, quantizer_dir, tmp_path):
    from transformers import TrainerCallback

    from genrec.trainers import GenRecTrainer, train_generator

    seen = {"steps": 0, "losses": 0}

    class CountSteps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            seen["steps"] += 1

    class CountingTrainer(GenRecTrainer):
        def compute_loss(self, *args, **kwargs):
            seen["losses"] += self.model.training  # evaluation computes losses too
            return super().compute_loss(*args, **kwargs)

    run = dict(quantizer=quantizer_dir, profile="tiny", seed=3, max_steps=4)
    train_generator(synth_dir, tmp_path / "gen", callbacks=[CountSteps()], trainer_class=CountingTrainer, **run)
    assert seen == {"steps": 4, "losses": 4}
    with pytest.raises(GenRecError, match="subclass of GenRecTrainer"):
        train_generator(synth_dir, tmp_path / "other", trainer_class=dict, **run)
