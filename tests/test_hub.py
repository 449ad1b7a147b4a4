"""Publishing to the Hub, against a real HTTP server speaking the Hub API (tests/hub_server.py).

The real huggingface_hub / transformers / peft / datasets clients do every request; the fixture
``hub`` points them at the local server (see hub_server.point_clients_at for why constants are
patched), and one test runs the ``genrec push`` CLI in a fresh process configured by environment only.
"""

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard, snapshot_download
from transformers import T5Config, T5ForConditionalGeneration

from genrec.errors import GenRecError
from genrec.hub import HubError, card_facts, push_to_hub
from genrec.hub_cards import render_card
from genrec.hub_rankings import push_rankings, rankings_dataset

from conftest import run_genrec
from hub_server import DROP, HubServer, hub, hub_env  # noqa: F401  (hub is a fixture)

METRICS = {
    "dataset": "synthetic-300",
    "split": "test",
    "HR@1": 0.0125,
    "HR@10": 0.1375,
    "NDCG@10": 0.0712345,
    "num_users": 400,
}
TRAIN_CONFIG = {
    "tasks": ["seqrec", "seqimage"],
    "learning_rate": 0.001,
    "epochs": 2,
    "seed": 7,
    "implicit": {"lambda": 0.01, "tau": 0.07},
}
QUANTIZER_METRICS = {"text": {"collision_rate": 0.02, "codebook_usage": [0.9, 0.8]}}


def tiny_t5(seed=0):
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=64,
        d_model=16,
        d_ff=32,
        d_kv=8,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    return T5ForConditionalGeneration(config).eval()


def folder_digest(path: Path) -> dict[str, str]:
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def predict(model, ids=(5, 9, 17, 3)):
    """Next-token logits for a fixed history (what ranking is built on) and a beam search."""
    with torch.no_grad():
        inputs = torch.tensor([ids])
        logits = model(input_ids=inputs, decoder_input_ids=torch.tensor([[0, 7, 11]])).logits
        beams = model.generate(
            input_ids=inputs,
            max_new_tokens=4,
            num_beams=4,
            num_return_sequences=4,
            do_sample=False,
            eos_token_id=None,
            output_scores=True,
            return_dict_in_generate=True,
        )
    return logits, beams.sequences, beams.sequences_scores


def assert_same_predictions(a, b):
    for x, y in zip(predict(a), predict(b)):
        assert torch.equal(x, y)


@pytest.fixture
def model_dir(tmp_path):
    """A pipeline-shaped folder: generator at top level, quantizer/, metrics, train config, local README."""
    d = tmp_path / "model"
    tiny_t5().save_pretrained(d)
    (d / "metrics.json").write_text(json.dumps(METRICS))
    (d / "genrec_train_config.json").write_text(json.dumps(TRAIN_CONFIG))
    (d / "quantizer").mkdir()
    (d / "quantizer" / "quantizer_metrics.json").write_text(json.dumps(QUANTIZER_METRICS))
    (d / "quantizer" / "codes.npy").write_bytes(bytes(range(256)) * 4)
    (d / "README.md").write_text("local notes, not the card\n")
    return d


def test_push_folder_and_load_back_from_a_clean_cache(hub, model_dir, tmp_path):
    before = folder_digest(model_dir)
    info = push_to_hub(model_dir, "tester/tiny-genrec", rankings_repo_id="tester/tiny-rankings")
    assert folder_digest(model_dir) == before  # the local folder is only read

    repo = hub.repos[("model", "tester/tiny-genrec")]
    assert len(repo.commits) == 2 and hub.calls("commit") == 1  # creation + ONE upload commit
    assert repo.branches["main"] == info.oid

    local = tiny_t5()
    loaded = T5ForConditionalGeneration.from_pretrained("tester/tiny-genrec", cache_dir=tmp_path / "c1").eval()
    for (name, a), (_, b) in zip(local.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert_same_predictions(loaded, local)

    snap = Path(snapshot_download("tester/tiny-genrec", cache_dir=tmp_path / "c2"))
    pulled = folder_digest(snap)
    added = ("README.md", ".gitattributes", "handler.py", "requirements.txt")  # the card, the Endpoints handler
    assert {k: v for k, v in pulled.items() if k not in added} == {k: v for k, v in before.items() if k != "README.md"}
    assert "class EndpointHandler" in (snap / "handler.py").read_text()
    assert repo.commits[info.oid].files["model.safetensors"].lfs  # weights went through LFS

    card = ModelCard.load(snap / "README.md")
    assert "local notes" not in card.text
    values = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert values == {"HR@1": 0.0125, "HR@10": 0.1375, "NDCG@10": 0.0712345}
    assert {r.dataset_split for r in card.data.eval_results} == {"test"}
    assert "datasets/tester/tiny-rankings" in card.text and "text.collision_rate" in card.text
    assert "`learning_rate` | 0.001" in card.text and "`seqimage`" in card.text


def test_existing_repo_branch_and_unchanged_files(hub, model_dir):
    from huggingface_hub import HfApi

    HfApi().create_repo("tester/existing")
    push_to_hub(model_dir, "tester/existing")  # the repo exists: reused, not an error
    main_head = hub.repos[("model", "tester/existing")].branches["main"]
    uploads = hub.calls("lfs-upload")

    (model_dir / "metrics.json").write_text(json.dumps({**METRICS, "HR@10": 0.2}))
    info = push_to_hub(model_dir, "tester/existing", revision="dev")
    repo = hub.repos[("model", "tester/existing")]
    assert repo.branches["main"] == main_head and repo.branches["dev"] == info.oid
    assert json.loads(repo.commits[info.oid].files["metrics.json"].data)["HR@10"] == 0.2
    assert hub.calls("lfs-upload") == uploads  # the weights were already on the Hub: not sent again


def test_rankings_roundtrip_with_load_dataset(hub, tmp_path):
    import datasets

    rows = [
        {
            "user_id": "u1",
            "history": ["a", "b"],
            "items": ["c", "d"],
            "scores": [1.5, -0.25],
            "per_modality": {
                "text": {"items": ["c", "e"], "scores": [-0.1, -0.7]},
                "image": {"items": ["d", "c"], "scores": [-0.2, -0.3]},
            },
        },
        {
            "user_id": "u2",
            "history": ["c"],
            "items": ["a"],
            "scores": [0.5],
            "per_modality": {"text": {"items": ["a"], "scores": [-0.5]}},
        },
    ]
    push_rankings(rows, "tester/tiny-rankings")
    back = datasets.load_dataset("tester/tiny-rankings", cache_dir=str(tmp_path / "ds"))
    assert list(back) == ["test"]
    got = back["test"].to_list()
    assert [r["user_id"] for r in got] == ["u1", "u2"]
    assert got[0]["items"] == ["c", "d"] and got[0]["scores"] == [1.5, -0.25]
    assert got[0]["image_items"] == ["d", "c"] and got[1]["image_items"] == [] and got[1]["text_scores"] == [-0.5]
    assert got[1]["history"] == ["c"]


def test_rankings_rows_are_validated():
    with pytest.raises(GenRecError, match="row 1: 'scores' must be a list of one score per item"):
        rankings_dataset(
            [
                {"user_id": "u", "history": [], "items": ["a"], "scores": [0.1]},
                {"user_id": "v", "history": [], "items": ["a", "b"], "scores": [0.1]},
            ]
        )
    with pytest.raises(GenRecError, match="row 0, per_modality.text: 'items'"):
        rankings_dataset(
            [
                {
                    "user_id": "u",
                    "history": [],
                    "items": [],
                    "scores": [],
                    "per_modality": {"text": {"items": [3], "scores": [0.1]}},
                }
            ]
        )


def test_lora_adapter_loads_on_its_base(hub, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    tiny_t5(seed=1).save_pretrained(tmp_path / "base")
    push_to_hub(tmp_path / "base", "tester/base")
    base = T5ForConditionalGeneration.from_pretrained("tester/base", cache_dir=tmp_path / "c0")
    torch.manual_seed(3)  # init_lora_weights=False: random, non-zero B, so the adapter changes outputs
    peft_model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, target_modules=["q", "v"], init_lora_weights=False)
    ).eval()
    peft_model.save_pretrained(tmp_path / "adapter")
    before = folder_digest(tmp_path / "adapter")
    push_to_hub(tmp_path / "adapter", "tester/adapter")
    assert folder_digest(tmp_path / "adapter") == before

    fresh_base = T5ForConditionalGeneration.from_pretrained("tester/base", cache_dir=tmp_path / "c1")
    loaded = PeftModel.from_pretrained(fresh_base, "tester/adapter", cache_dir=tmp_path / "c1").eval()
    assert_same_predictions(loaded, peft_model)
    plain = T5ForConditionalGeneration.from_pretrained("tester/base").eval()
    assert not torch.allclose(predict(loaded)[0], predict(plain)[0])  # the adapter is really applied

    card = ModelCard.load("tester/adapter")
    assert card.data.base_model == "tester/base" and card.data.library_name == "peft"
    assert card.data.eval_results is None  # no metrics file: no claimed numbers
    assert "## Evaluation" not in card.text


def test_card_contains_only_measured_numbers():
    card = render_card("generator", repo_id="tester/x", metrics=METRICS, train_config=TRAIN_CONFIG)
    parsed = ModelCard(str(card))
    assert {r.metric_name: r.metric_value for r in parsed.data.eval_results} == {
        "HR@1": 0.0125,
        "HR@10": 0.1375,
        "NDCG@10": 0.0712345,
    }
    assert "| HR@10 | 0.1375 |" in parsed.text and "| NDCG@10 | 0.0712 |" in parsed.text
    assert "`num_users` | 400" in parsed.text  # an evaluation fact, not a metric
    assert "synthetic-300" in parsed.text

    bare = ModelCard(str(render_card("generator", repo_id="tester/x")))
    assert bare.data.eval_results is None and "model-index" not in str(bare)
    assert "## Evaluation" not in bare.text and "## Hyper-parameters" not in bare.text
    assert "## Codebook statistics" in str(render_card("quantizer", repo_id="t/q", quantizer_metrics=QUANTIZER_METRICS))
    with pytest.raises(ValueError, match="base_model_name_or_path"):
        render_card("adapter", repo_id="t/a", adapter_config={"r": 4})


def test_card_facts_reads_the_folder(model_dir, tmp_path):
    kind, facts = card_facts(model_dir)
    assert kind == "generator" and facts["metrics"] == METRICS and facts["has_quantizer"]
    assert facts["quantizer_metrics"] == QUANTIZER_METRICS and facts["model_config"]["d_model"] == 16
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenRecError, match="not a genrec model folder"):
        card_facts(tmp_path / "empty")
    (model_dir / "metrics.json").write_text("{not json")
    with pytest.raises(GenRecError, match=r"metrics.json: malformed JSON \(Expecting property name .* at column 2"):
        card_facts(model_dir)


def test_missing_folder_is_a_clear_error(hub, tmp_path):
    with pytest.raises(GenRecError, match="does not exist"):
        push_to_hub(tmp_path / "nope", "tester/nope")
    assert hub.requests == []
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    with pytest.raises(HubError, match="invalid repository id 'a/b/c'"):
        push_to_hub(tmp_path / "m", "a/b/c")


def test_server_down_is_a_clear_error(model_dir, tmp_path, monkeypatch):
    from hub_server import point_clients_at

    server = HubServer().start()
    point_clients_at(server.url, tmp_path / "hf_home", monkeypatch)
    server.stop()  # nothing listens there any more: connection refused
    before = folder_digest(model_dir)
    with pytest.raises(HubError, match="connection to the Hub failed.*run the same command again"):
        push_to_hub(model_dir, "tester/down")
    assert folder_digest(model_dir) == before


def test_bad_token_is_a_clear_error(hub, model_dir):
    hub.bad_tokens.add("hf_bad")
    with pytest.raises(HubError, match="rejected the access token.*401"):
        push_to_hub(model_dir, "tester/tiny", token="hf_bad")
    with pytest.raises(HubError, match="rejected the access token"):
        push_rankings([{"user_id": "u", "history": [], "items": ["a"], "scores": [0.0]}], "tester/r", token="hf_bad")
    assert not hub.repos


@pytest.mark.parametrize("failure", [500, DROP], ids=["http-500", "dropped-connection"])
def test_interrupted_upload_then_retry(hub, model_dir, tmp_path, failure):
    before = folder_digest(model_dir)
    hub.fail_next("commit", failure)
    with pytest.raises(HubError, match="run the same command again"):
        push_to_hub(model_dir, "tester/flaky")
    assert folder_digest(model_dir) == before
    repo = hub.repos[("model", "tester/flaky")]
    assert len(repo.commits) == 1  # nothing half-committed
    uploads = hub.calls("lfs-upload")
    assert uploads == 2  # model.safetensors and quantizer/codes.npy reached LFS storage

    info = push_to_hub(model_dir, "tester/flaky")
    assert hub.calls("lfs-upload") == uploads  # the retry reuses them
    assert repo.branches["main"] == info.oid and len(repo.commits) == 2
    loaded = T5ForConditionalGeneration.from_pretrained("tester/flaky", cache_dir=tmp_path / "c").eval()
    assert_same_predictions(loaded, tiny_t5())


def test_cli_push_in_a_fresh_process(model_dir, tmp_path):
    """`genrec push` configured by environment variables only, as a user would run it."""
    server = HubServer().start()
    try:
        env = {**os.environ, **hub_env(server.url, tmp_path / "hf_home")}
        cmd = ["push", "--model", model_dir, "--repo-id", "tester/cli", "--private"]
        ok = run_genrec(*cmd, check=False, env=env, timeout=120)
        assert ok.returncode == 0, ok.stderr
        repo = server.repos[("model", "tester/cli")]
        assert repo.private and ok.stdout.strip().endswith(repo.branches["main"])
        assert "README.md" in repo.commits[repo.branches["main"]].files

        server.bad_tokens.add("hf_bad")
        bad = run_genrec(*cmd, "--token", "hf_bad", check=False, env=env, timeout=120)
        assert bad.returncode == 2
        assert "genrec push: error:" in bad.stderr and "rejected the access token" in bad.stderr
        assert "Traceback" not in bad.stderr
    finally:
        server.stop()


def test_server_listing_routes_match_the_client(hub, model_dir):
    """Routes the loaders call (tree, paths-info, refs) answer as the client expects."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

    api = HfApi()
    push_to_hub(model_dir, "tester/listing", revision="dev")
    files = {f.path for f in api.list_repo_tree("tester/listing", revision="dev", recursive=True)}
    assert {"config.json", "quantizer", "quantizer/codes.npy", "README.md"} <= files
    assert [f.path for f in api.list_repo_tree("tester/listing", "quantizer", revision="dev")] == [
        "quantizer/codes.npy",
        "quantizer/quantizer_metrics.json",
    ]
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree("tester/listing", "no_such_folder", revision="dev"))
    infos = api.get_paths_info("tester/listing", ["config.json", "quantizer", "missing.txt"], revision="dev")
    assert sorted((i.path, type(i).__name__) for i in infos) == [
        ("config.json", "RepoFile"),
        ("quantizer", "RepoFolder"),
    ]
    assert {b.name for b in api.list_repo_refs("tester/listing").branches} == {"main", "dev"}
    assert api.list_repo_files("tester/listing") == [".gitattributes"]  # main untouched
    with pytest.raises(RevisionNotFoundError):
        api.model_info("tester/listing", revision="nope")


# -- hygiene: what a push may publish, and how long it may wait --------------------------------------
def test_push_refuses_symbolic_links(hub, model_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("hf_live_token")
    (model_dir / "notes.txt").symlink_to(secret)
    with pytest.raises(GenRecError, match="notes.txt is a symbolic link"):
        push_to_hub(model_dir, "tester/linked")
    assert ("model", "tester/linked") not in hub.repos  # refused before anything reached the Hub


def test_private_push_makes_an_existing_public_repo_private(hub, model_dir):
    from huggingface_hub import HfApi

    HfApi().create_repo("tester/was-public")
    assert not hub.repos[("model", "tester/was-public")].private
    push_to_hub(model_dir, "tester/was-public", private=True)
    assert hub.repos[("model", "tester/was-public")].private


def test_private_rankings_make_an_existing_public_dataset_private_before_uploading(hub, caplog):
    """Issue 37, item 3: `--push-rankings R --private` (recommend and evaluate) left a public R public and
    published user histories."""
    from huggingface_hub import HfApi

    rows = [{"user_id": "u1", "history": ["a", "b"], "items": ["c"], "scores": [0.5]}]
    HfApi().create_repo("tester/ranks", repo_type="dataset")
    with caplog.at_level("WARNING", logger="genrec.hub"):
        push_rankings(rows, "tester/ranks")  # public stays public, and says what it publishes
    assert not hub.repos[("dataset", "tester/ranks")].private
    assert "publishing 1 users' histories in the public dataset tester/ranks" in caplog.text
    caplog.clear()
    hub.requests.clear()
    with caplog.at_level("WARNING", logger="genrec.hub"):
        push_rankings(rows * 2, "tester/ranks", private=True)
    assert hub.repos[("dataset", "tester/ranks")].private and "publishing" not in caplog.text
    routes = [route for _, route, _ in hub.requests]
    assert "settings" in routes and "commit" in routes and routes.index("settings") < routes.index("commit")


def test_rankings_never_replace_a_dataset_genrec_did_not_write(hub, tmp_path):
    """Issue 37, item 1's twin on the Hub: --push-rankings into the user's own dataset replaced its split."""
    from huggingface_hub import HfApi

    from genrec.hub_rankings import check_rankings_target

    api = HfApi()
    api.create_repo("tester/mine", repo_type="dataset")
    api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="train.csv", repo_id="tester/mine", repo_type="dataset")
    rows = [{"user_id": "u1", "history": ["a"], "items": ["c"], "scores": [0.5]}]
    with pytest.raises(HubError, match="'tester/mine' exists and does not hold genrec rankings \\(it has train.csv\\)"):
        push_rankings(rows, "tester/mine")
    assert api.list_repo_files("tester/mine", repo_type="dataset") == [".gitattributes", "train.csv"]
    check_rankings_target("tester/new-one")  # new: fine
    push_rankings(rows, "tester/ours")
    check_rankings_target("tester/ours")  # genrec's own rankings: a rerun replaces them
    push_rankings(rows * 2, "tester/ours")


def test_repush_deletes_stale_files_in_the_same_commit(hub, model_dir):
    push_to_hub(model_dir, "tester/stale")
    (model_dir / "metrics.json").unlink()
    (model_dir / "quantizer" / "codes.npy").unlink()
    commits = hub.calls("commit")
    info = push_to_hub(model_dir, "tester/stale")
    files = set(hub.repos[("model", "tester/stale")].commits[info.oid].files)
    assert "metrics.json" not in files and "quantizer/codes.npy" not in files
    assert {".gitattributes", "README.md", "model.safetensors", "quantizer/quantizer_metrics.json"} <= files
    assert hub.calls("commit") == commits + 1


def test_pushed_files_hold_no_local_absolute_paths(hub, model_dir):
    local = {
        **TRAIN_CONFIG,
        "data": "/home/alice/private/catalogue",
        "training_args": {"output_dir": "/home/alice/runs/m.checkpoints", "run_name": "relative/ok"},
    }
    (model_dir / "genrec_train_config.json").write_text(json.dumps(local))
    before = folder_digest(model_dir)
    info = push_to_hub(model_dir, "tester/paths")
    assert folder_digest(model_dir) == before  # only the pushed copy is rewritten
    files = hub.repos[("model", "tester/paths")].commits[info.oid].files
    pushed = json.loads(files["genrec_train_config.json"].data)
    assert pushed["data"] == "catalogue" and pushed["training_args"]["output_dir"] == "m.checkpoints"
    assert pushed["training_args"]["run_name"] == "relative/ok" and pushed["seed"] == TRAIN_CONFIG["seed"]
    assert not any(b"/home/alice" in blob.data for blob in files.values())


def test_push_to_a_hub_that_never_answers_fails_in_time(model_dir, tmp_path, monkeypatch):
    import time

    from hub_server import SilentServer, point_clients_at

    monkeypatch.setenv("GENREC_HUB_TIMEOUT", "2")
    with SilentServer() as silent:
        point_clients_at(silent.url, tmp_path / "hf_home", monkeypatch)
        start = time.monotonic()
        with pytest.raises(HubError, match="did not answer in time.*GENREC_HUB_TIMEOUT"):
            push_to_hub(model_dir, "tester/hung")
    assert time.monotonic() - start < 60


def test_default_hub_timeout_bounds_a_push_under_a_minute():
    from huggingface_hub.utils import get_session

    from genrec.hub import DEFAULT_HUB_TIMEOUT_S, hub_timeouts

    before = get_session().timeout
    with hub_timeouts() as seconds:
        assert seconds == DEFAULT_HUB_TIMEOUT_S < 60
        assert get_session().timeout.read == seconds
    assert get_session().timeout == before  # the user's client settings come back


def test_cached_repo_loads_while_the_hub_never_answers(hub, model_dir, tmp_path, monkeypatch):
    import time

    from huggingface_hub import constants

    from genrec.hub import fetch_from_hub

    from hub_server import SilentServer, point_clients_at

    push_to_hub(model_dir, "tester/cached")
    first = fetch_from_hub("tester/cached")
    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 2)
    monkeypatch.delenv("GENREC_HUB_TIMEOUT", raising=False)  # issue 37 item 11: it waited this default (30 s)
    with SilentServer() as silent:
        point_clients_at(silent.url, tmp_path / "hf_home", monkeypatch)
        start = time.monotonic()
        again = fetch_from_hub("tester/cached")
        assert time.monotonic() - start < 10
    assert again == first and (again / "model.safetensors").is_file()


def test_offline_without_a_cached_snapshot_is_one_consistent_error(hub, monkeypatch, caplog):
    """Issue 37 item 11: it said both "using the cached snapshot" and "cannot find a cached snapshot"."""
    from huggingface_hub import constants

    from genrec.hub import fetch_from_hub

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with caplog.at_level("WARNING", logger="genrec.hub"):
        with pytest.raises(GenRecError) as info:
            fetch_from_hub("tester/never-cached")
    assert str(info.value) == (
        "cannot fetch 'tester/never-cached': HF_HUB_OFFLINE is set, and the HF cache holds "
        "no snapshot of it; load it once with the Hub reachable"
    )
    assert "cached snapshot" not in caplog.text


def test_card_lists_the_settings_that_matter_and_names_the_dataset():
    train = {
        "data": "/home/alice/amazon-instruments",
        "tasks": ["seqrec"],
        "seed": 3,
        "training_args": {"learning_rate": 0.002, "logging_steps": 50, "output_dir": "/x/y", "weight_decay": 0.0},
        "model_config": {"d_model": 128, "implicit_weight": 0.01},
    }
    card = render_card("generator", repo_id="u/m", train_config=train, metrics={"split": "test", "NDCG@10": 0.1})
    # a local folder is named in the text, not listed as a Hub dataset in the metadata
    assert card.data.datasets is None and card.data.pipeline_tag is None
    assert "**amazon-instruments** (a local dataset folder, not on the Hub)" in card.text
    assert card.data.eval_results[0].dataset_name == "amazon-instruments"
    assert "`training_args.learning_rate` | 0.002" in card.text and "`model_config.d_model` | 128" in card.text
    assert "logging_steps" not in card.text and "output_dir" not in card.text and "/x/y" not in card.text
    assert "Loss weights: `model_config.implicit_weight` = 0.01." in card.text


def test_trainer_push_to_hub_publishes_the_complete_pipeline_once(hub, synth_dir, quantizer_dir, tmp_path):
    from genrec.trainers import train_generator

    train_generator(
        synth_dir,
        tmp_path / "m",
        quantizer=quantizer_dir,
        profile="tiny",
        max_steps=5,
        save_steps=5,
        push_to_hub=True,
        hub_model_id="tester/trained",
    )
    repo = hub.repos[("model", "tester/trained")]
    files = set(repo.commits[repo.branches["main"]].files)
    assert {
        "model.safetensors",
        "catalog.json",
        "generation_config.json",
        "genrec_train_config.json",
        "item_prior.json",
        "quantizer/sid_text.npy",
        "README.md",
    } <= files
    assert hub.calls("commit") == 1  # the finished folder, not Trainer's checkpoint pushes


def test_an_adapter_on_a_local_base_is_published_with_the_bases_repo_id(hub, tmp_path):
    from peft import LoraConfig, get_peft_model

    tiny_t5(seed=1).save_pretrained(tmp_path / "base")
    base = T5ForConditionalGeneration.from_pretrained(tmp_path / "base")
    get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q", "v"])).save_pretrained(tmp_path / "adapter")
    with pytest.raises(GenRecError, match="local folder .* --base-repo-id"):
        push_to_hub(tmp_path / "adapter", "tester/a")  # nobody else could load that base
    assert ("model", "tester/a") not in hub.repos
    push_to_hub(tmp_path / "base", "tester/base")
    info = push_to_hub(tmp_path / "adapter", "tester/a", base_repo_id="tester/base")
    files = hub.repos[("model", "tester/a")].commits[info.oid].files
    assert json.loads(files["adapter_config.json"].data)["base_model_name_or_path"] == "tester/base"
    assert ModelCard(files["README.md"].data.decode()).data.base_model == "tester/base"


def test_pushing_an_unchanged_folder_says_nothing_changed(hub, model_dir, caplog):
    push_to_hub(model_dir, "tester/same")
    commits = len(hub.repos[("model", "tester/same")].commits)
    with caplog.at_level("INFO"):
        push_to_hub(model_dir, "tester/same")
    assert len(hub.repos[("model", "tester/same")].commits) == commits  # the Hub made no empty commit
    said = [r.getMessage() for r in caplog.records]
    assert any("already holds these files: nothing to commit" in m for m in said)
    assert not any(m.startswith("pushed ") or "Skipping to prevent empty commit" in m for m in said)
