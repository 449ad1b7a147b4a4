"""What `genrec push` deploys: the Inference Endpoints handler in a pushed model repo, and the demo Space
(`genrec push --space`), both pulled back from the local test Hub and run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml
from huggingface_hub import snapshot_download

from genrec.hub import push_to_hub
from genrec.pipeline import GenRecPipeline
from genrec.serving.hub_files import push_space

from hub_server import hub  # noqa: F401  (hub is a fixture)


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_pushed_model_carries_an_endpoint_handler_that_answers_like_recommend(hub, tiny_pipeline, tmp_path):
    push_to_hub(tiny_pipeline, "tester/tiny-rec")
    snap = Path(snapshot_download("tester/tiny-rec", cache_dir=tmp_path / "cache"))
    assert (snap / "requirements.txt").read_text().startswith("genrec==")
    handler = load_module(snap / "handler.py", "pushed_handler").EndpointHandler(str(snap))
    pipe = GenRecPipeline.from_pretrained(tiny_pipeline)
    ids = pipe.tokenizer.item_ids
    one = handler({"inputs": [ids[1], ids[2]], "parameters": {"k": 4}})
    rec = pipe.recommend([ids[1], ids[2]], k=4)
    assert [x["item_id"] for x in one] == rec.item_ids
    assert one[0]["title"] == pipe.tokenizer.catalog.describe(rec.item_ids[0])["title"]
    many = handler({"inputs": [[ids[1]], [ids[3], ids[4]]]})
    assert [[x["item_id"] for x in lst] for lst in many] == [
        r.item_ids for r in pipe.recommend([[ids[1]], [ids[3], ids[4]]])
    ]
    assert [x["item_id"] for x in handler({"inputs": {"history": [ids[1]]}})] == pipe.recommend([ids[1]]).item_ids
    with pytest.raises(ValueError, match="unknown parameters"):
        handler({"inputs": [ids[1]], "parameters": {"temperature": 1.0}})
    with pytest.raises(ValueError, match="inputs"):
        handler({"inputs": "a string"})


def test_demo_space_loads_the_model_from_the_hub(hub, tiny_pipeline, tmp_path):
    push_to_hub(tiny_pipeline, "tester/tiny-rec")
    push_space("tester/tiny-demo", "tester/tiny-rec")
    snap = Path(snapshot_download("tester/tiny-demo", repo_type="space", cache_dir=tmp_path / "cache"))
    assert sorted(p.name for p in snap.iterdir()) == [".gitattributes", "README.md", "app.py", "requirements.txt"]
    meta = yaml.safe_load((snap / "README.md").read_text().split("---")[1])
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["models"] == ["tester/tiny-rec"]
    assert (snap / "requirements.txt").read_text().startswith("genrec[serve]==")
    app = load_module(snap / "app.py", "pushed_space_app")  # builds the page, does not launch it
    import gradio

    assert isinstance(app.demo, gradio.Blocks)
    pipe = GenRecPipeline.from_pretrained(tiny_pipeline)
    history = pipe.tokenizer.item_ids[:2]
    assert app.pipeline.recommend(history, k=5).item_ids == pipe.recommend(history, k=5).item_ids


def test_push_space_from_the_command_line(hub, tiny_pipeline, capsys):
    from genrec.cli import main as cli

    assert (
        cli(["push", "--model", str(tiny_pipeline), "--repo-id", "tester/cli-rec", "--space", "tester/cli-demo"]) == 0
    )
    assert capsys.readouterr().out.count("http") == 2
    assert ("space", "tester/cli-demo") in hub.repos and ("model", "tester/cli-rec") in hub.repos
    assert cli(["push", "--space", "tester/cli-demo"]) == 2
    assert "--model-repo" in capsys.readouterr().err
