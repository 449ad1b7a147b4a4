"""Generator training: model + implicit loss, task builder, Trainer runs (tiny profile), resume, LoRA, CLI."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

import genrec  # registers the Auto classes
from genrec.data import load_dataset_dir
from genrec.errors import GenRecError
from genrec.modeling import GenRecT5ForConditionalGeneration
from genrec.modeling.factory import VocabMismatchError, build_generator
from genrec.modeling.lora import load_generator
from genrec.tasks import TaskConfigError, build_task_dataset
from genrec.tokenizer import SemanticIDTokenizer
from genrec.trainers import PROFILES
from genrec.trainers.generator_config import make_training_args
from genrec.trainers.generator_run import train_generator
from genrec.trainers.generator_trainer import GenRecCollator, GenRecTrainer

from conftest import genrec_cli, train_tiny
from hub_server import hub  # noqa: F401  (a fixture)

LEVELS, CODES = 3, 16  # conftest's quantizer_dir


@pytest.fixture(scope="module")
def trained(synth_dir, quantizer_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "gen"
    train_generator(synth_dir, out, quantizer=quantizer_dir, profile="tiny", seed=3)
    return out


def tiny_model(tok, **kw):
    return build_generator(tok, **{**PROFILES["tiny"]["model"], **kw})


def batch_of(tok, data, n=8, tasks=("seqrec", "seqimage")):
    ds = build_task_dataset(data.splits["train"], tok, tasks)
    return GenRecCollator(tok)([ds[i] for i in range(n)])


# ---- task builder ---------------------------------------------------------------------------------
def test_tasks_are_lazy_recipes_with_task_token_and_target_id(tok, data):
    split = data.splits["train"]
    ds = build_task_dataset(split, tok, max_history=3)
    assert ds.format["type"] == "custom"  # with_transform: token ids are made on read
    assert ds.data.column_names == ["unit", "index", "length"]
    units = ds.features["unit"].names
    assert units[0] == "seqrec+seqimage" and set(units[1:]) == {
        "item2image",
        "image2item",
        "seqitem2image",
        "seqimage2item",
    }
    unit_col = np.asarray(ds.data.column("unit"))
    counts = np.bincount(unit_col, minlength=len(units))
    assert counts[0] == len(split) and counts[units.index("item2image")] == data.n_items
    # length (input items, for length-grouped batches): the capped history, or 1 for an item task
    lengths, index = np.asarray(ds.data.column("length")), np.asarray(ds.data.column("index"))
    assert lengths[unit_col == 0].tolist() == [min(len(split[int(i)]["history"]), 3) for i in index[unit_col == 0]]
    assert set(lengths[unit_col == units.index("item2image")]) == {1} and lengths.max() == 3

    row = split[0]
    pair = ds[0]
    assert pair["paired"] and len(pair["input_ids"]) == 2
    text_in, image_in = pair["input_ids"]
    hist = row["history"][-3:]
    assert text_in == [tok.task_token_id("seqrec")] + tok.encode_rows(hist, "text") + [tok.eos_token_id]
    assert image_in[0] == tok.task_token_id("seqimage") and image_in[1:-1] == tok.encode_rows(hist, "image")
    assert pair["labels"] == [tok.encode_rows([row["target"]], m) + [tok.eos_token_id] for m in ("text", "image")]

    i2i = ds[int(np.flatnonzero(np.asarray(ds.data.column("unit")) == units.index("item2image"))[5])]
    assert not i2i["paired"]
    assert i2i["input_ids"][0] == [tok.task_token_id("item2image")] + tok.encode_rows([5], "text") + [tok.eos_token_id]
    assert i2i["labels"][0] == tok.encode_rows([5], "image") + [tok.eos_token_id]


def test_history_dropout_leaves_items_out_of_each_view_on_its_own(tok, data):
    split = data.splits["train"]
    long = [i for i in range(len(split)) if len(split[i]["history"]) >= 6][:200]
    plain = build_task_dataset(split, tok, ("seqrec", "seqimage"), max_history=20).select(long)
    dropped = build_task_dataset(
        split, tok, ("seqrec", "seqimage"), max_history=20, history_dropout=0.5, seed=1
    ).select(long)
    n_items = lambda ids, m: (len(ids) - 2) // tok.num_levels(m)  # noqa: E731  (task token and EOS around)
    full = [[n_items(x, m) for x, m in zip(plain[i]["input_ids"], ("text", "image"))] for i in range(len(long))]
    kept = [[n_items(x, m) for x, m in zip(dropped[i]["input_ids"], ("text", "image"))] for i in range(len(long))]
    assert all(1 <= k <= f for ks, fs in zip(kept, full) for k, f in zip(ks, fs))  # never empty, never longer
    share = sum(map(sum, kept)) / sum(map(sum, full))
    assert 0.4 < share < 0.6  # about half the items stay
    assert sum(t != i for t, i in kept) > len(long) / 4  # the text and image views draw on their own
    assert [dropped[i]["labels"] for i in range(5)] == [plain[i]["labels"] for i in range(5)]  # targets kept
    with pytest.raises(TaskConfigError, match="history_dropout"):
        build_task_dataset(split, tok, history_dropout=1.0)


def test_task_switches_and_missing_modality(data):
    codes = {m: np.random.default_rng(1).integers(0, 8, (data.n_items, 2)) for m in ("text", "image")}
    codes["image"][:10] = -1  # items 0..9 have no image ID
    tok = SemanticIDTokenizer.from_codes(data.item_ids, codes, codebook_size=8)
    split = data.splits["train"]
    ds = build_task_dataset(split, tok, tasks=["seqimage", "item2image"])
    assert ds.features["unit"].names == ["seqimage", "item2image"]
    units = np.asarray(ds.data.column("unit"))
    assert (units == 1).sum() == data.n_items - 10  # item tasks need both IDs
    targets = np.asarray(split["target"])
    # no image target, or no history item with an image -> no seqimage sample
    usable = (targets >= 10) & np.array([max(h) >= 10 for h in split["history"]])
    assert (units == 0).sum() == int(usable.sum()) < len(split)
    with pytest.raises(TaskConfigError, match="unknown task 'seqvideo'"):
        build_task_dataset(split, tok, tasks=["seqrec", "seqvideo"])


def test_collator_pairs_views_and_pads_labels(tok, data):
    batch = batch_of(tok, data, n=4)
    assert batch["pair_ids"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert batch["input_ids"].shape == batch["attention_mask"].shape and batch["input_ids"].shape[0] == 8
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tok.pad_token_id).all()
    assert batch["labels"].shape == (8, LEVELS + 1)


# ---- model ----------------------------------------------------------------------------------------
def test_implicit_loss_is_added_and_switches_off(tok, data):
    batch = batch_of(tok, data)
    model = tiny_model(tok).eval()
    out = model(**batch)
    assert out.implicit_loss is not None and out.implicit_loss.item() > 0.1
    w = model.config.implicit_weight
    assert torch.allclose(out.loss, out.lm_loss + w * out.implicit_loss)
    # one encoder pass feeds both the decoder and the alignment loss: same LM loss as plain T5
    plain = model(**{k: v for k, v in batch.items() if k != "pair_ids"})
    assert plain.implicit_loss is None and torch.allclose(plain.loss, out.lm_loss)
    model.config.implicit_weight = 0.0
    off = model(**batch)
    assert off.implicit_loss is None and torch.allclose(off.loss, out.lm_loss)


def test_vocab_mismatch_and_bad_profile_fail_clearly(tok, data, tmp_path):
    model = build_generator(tok, **{**PROFILES["tiny"]["model"]})
    model.resize_token_embeddings(len(tok) + 5)
    ds = build_task_dataset(data.splits["train"], tok)
    with pytest.raises(VocabMismatchError, match=f"has {len(tok) + 5} tokens but the tokenizer has {len(tok)}"):
        GenRecTrainer(
            model=model,
            args=make_training_args(tmp_path, "tiny"),
            train_dataset=ds,
            eval_dataset=ds,
            data_collator=GenRecCollator(tok),
            processing_class=tok,
        )
    with pytest.raises(GenRecError, match="unknown profile"):
        make_training_args(tmp_path, "huge")
    with pytest.raises(GenRecError, match="training arguments: .*load_best_model_at_end"):  # TrainingArguments' check
        make_training_args(tmp_path, "tiny", load_best_model_at_end=True, eval_strategy="steps", save_strategy="epoch")
    with pytest.raises(TaskConfigError, match="unknown task"):
        make_training_args(tmp_path, "tiny", tasks=["seqrec", "nexttweet"])


def test_profiles_are_yaml_data_files_and_a_users_file_works_like_a_bundled_one(tmp_path):
    from genrec.trainers import bundled_profiles, load_profile
    from genrec.trainers.profiles import PROFILE_DIR

    assert bundled_profiles() == ["cpu", "paper", "tiny"]
    assert PROFILES["cpu"]["model"]["num_layers"] == 2 and PROFILES["cpu"]["args"]["learning_rate"] == 2e-3
    assert PROFILES["cpu"]["args"]["tasks"] == ["seqrec", "seqimage"]
    mine = tmp_path / "mine.yaml"
    mine.write_text((PROFILE_DIR / "tiny.yaml").read_text().replace("learning_rate: 5.0e-3", "learning_rate: 1.0e-4"))
    assert load_profile(mine)["model"] == PROFILES["tiny"]["model"]
    assert make_training_args(tmp_path / "o", str(mine)).learning_rate == 1e-4
    assert make_training_args(tmp_path / "o", str(mine), learning_rate=3e-3).learning_rate == 3e-3  # flags win
    bad = {
        "broken.yaml": "model: [1, 2",
        "list.yaml": "- 1\n- 2\n",
        "section.yaml": "trainer: {}\n",
        "model_key.yaml": "model: {d_modle: 64}\n",
    }
    messages = {
        "broken.yaml": "not valid YAML",
        "list.yaml": "sections 'model' and 'args'",
        "section.yaml": "sections 'model' and 'args'",
        "model_key.yaml": r"unknown settings \['d_modle'\]",
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(GenRecError, match=messages[name]):
            load_profile(tmp_path / name)
    (tmp_path / "args_key.yaml").write_text("args: {learning_rat: 0.1}\n")
    with pytest.raises(GenRecError, match=r"unknown training arguments \['learning_rat'\]"):
        make_training_args(tmp_path / "o", str(tmp_path / "args_key.yaml"))
    with pytest.raises(GenRecError, match="unknown profile 'nowhere.yaml'"):
        load_profile("nowhere.yaml")


# ---- training -------------------------------------------------------------------------------------
def test_training_lowers_loss_and_writes_a_loadable_pipeline_folder(trained, tok, data):
    names = {p.name for p in trained.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer_config.json",
        "catalog.json",
        "genrec_train_config.json",
        "quantizer",
    } <= names
    record = json.loads((trained / "genrec_train_config.json").read_text())
    assert record["profile"] == "tiny" and record["seed"] == 3 and record["tasks"][0] == "seqrec"
    logs = [h for h in record["log_history"] if "loss" in h]
    # the tiny profile's prefix softmax starts near ln 16 (16 legal codes per level) on random codes,
    # where only the catalogue's trie and the synthetic histories' structure can be learned
    assert logs[0]["lm_loss"] < np.log(CODES) + 0.3 and logs[-1]["loss"] < logs[0]["loss"] - 0.2
    assert all(h["implicit_loss"] > 0 for h in logs)
    evals = [h["eval_loss"] for h in record["log_history"] if "eval_loss" in h]
    assert len(evals) == 3 and evals[-1] < evals[0]

    model = AutoModelForSeq2SeqLM.from_pretrained(trained).eval()
    loaded_tok = AutoTokenizer.from_pretrained(trained)
    assert isinstance(model, GenRecT5ForConditionalGeneration) and len(loaded_tok) == model.config.vocab_size
    batch = batch_of(loaded_tok, data)
    # the trained model beats a fresh one on held-in data under the loss it trained on, and generate() runs
    from genrec.generation import IDConstraint
    from genrec.trainers.id_loss import prefix_softmax_loss

    assert model.config.id_softmax == "prefix"
    constraint = IDConstraint.from_tokenizer(loaded_tok, loaded_tok.modalities)

    def id_loss(m):
        return prefix_softmax_loss(m(**batch).logits, batch["labels"], constraint)

    assert id_loss(model) < id_loss(tiny_model(loaded_tok).eval())
    gen = model.generate(batch["input_ids"][:2], attention_mask=batch["attention_mask"][:2])
    assert gen.shape[1] <= LEVELS + 2


def test_no_implicit_ablation_logs_no_implicit_loss(synth_dir, quantizer_dir, tmp_path):
    out = train_tiny(
        synth_dir, tmp_path / "gen", quantizer_dir, implicit=False, max_steps=10, tasks=["seqrec", "seqimage"]
    )
    record = json.loads((out / "genrec_train_config.json").read_text())
    assert record["implicit"] is False and record["model_config"]["implicit_weight"] == 0.0
    logs = [h for h in record["log_history"] if "loss" in h]
    assert logs and all("implicit_loss" not in h for h in logs)


def test_resume_reaches_the_same_weights(synth_dir, quantizer_dir, tmp_path):
    kw = dict(
        quantizer=quantizer_dir,
        profile="tiny",
        seed=5,
        max_steps=30,
        save_steps=15,
        save_total_limit=None,
        load_best_model_at_end=False,
    )  # tiny logs every 5 steps: the losses before 15 are all logged
    full = train_generator(synth_dir, tmp_path / "full", checkpoint_dir=tmp_path / "ck_full", **kw)
    # "interrupted" run: a fresh process state, resuming from the full run's step-15 checkpoint
    import shutil

    shutil.copytree(tmp_path / "ck_full" / "checkpoint-15", tmp_path / "ck_resumed" / "checkpoint-15")
    # a later save cut short by a kill (no trainer_state.json): skipped, not resumed from
    partial = tmp_path / "ck_resumed" / "checkpoint-30"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"\x00" * 10)
    resumed = train_generator(
        synth_dir, tmp_path / "resumed", checkpoint_dir=tmp_path / "ck_resumed", resume=True, **kw
    )
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    # train_loss is the whole run's mean, not only the 15 resumed steps'
    losses = [
        json.loads((out / "genrec_train_config.json").read_text())["train_metrics"]["train_loss"]
        for out in (full, resumed)
    ]
    assert losses[1] == pytest.approx(losses[0], abs=2e-3)
    mid = load_file(tmp_path / "ck_full" / "checkpoint-15" / "model.safetensors")
    assert not torch.equal(mid["shared.weight"], a["shared.weight"])
    # resuming those checkpoints with another quantizer's IDs (same items, new codes) is refused
    other = tmp_path / "other_quantizer"
    other.mkdir()
    for m in ("text", "image"):
        codes = np.load(quantizer_dir / f"sid_{m}.npy")
        np.save(other / f"sid_{m}.npy", (codes + 1) % 16)
    with pytest.raises(GenRecError, match="was trained on catalogue"):
        train_generator(
            synth_dir,
            tmp_path / "mixed",
            checkpoint_dir=tmp_path / "ck_resumed",
            resume=True,
            **{**kw, "quantizer": other, "max_steps": 40},
        )
    with pytest.raises(GenRecError, match="was trained on catalogue and tasks"):  # or with other tasks
        train_generator(
            synth_dir,
            tmp_path / "mixed",
            checkpoint_dir=tmp_path / "ck_resumed",
            resume=True,
            **{**kw, "tasks": ["seqrec", "seqimage"], "max_steps": 40},
        )
    with pytest.raises(GenRecError, match="no complete checkpoint"):
        train_generator(synth_dir, tmp_path / "none", checkpoint_dir=tmp_path / "ck_none", resume=True, **kw)


def test_plain_generate_with_the_models_defaults_equals_recommend(trained):
    """The transformers route, as README and the model card show it."""
    from genrec.pipeline import GenRecPipeline

    model, tok = AutoModelForSeq2SeqLM.from_pretrained(trained), AutoTokenizer.from_pretrained(trained)
    history = tok.item_ids[3:8]
    for modality in ("text", "image"):
        out = model.generate(
            **tok.history_inputs(history, modality),
            logits_processor=[genrec.TrieConstrainedLogitsProcessor.for_model(model, tok, modality)],
        )
        assert len(out) == model.generation_config.num_beams == 20  # every beam comes back
        items = [i for seq in out for i in tok.decode_items(seq, modality)]
        expected = (
            GenRecPipeline.from_pretrained(trained)
            .recommend(history, k=10, modality=modality, exclude_history=False)
            .item_ids
        )
        assert items[:10] == expected


def test_lora_adapter_trains_saves_loads_and_changes_outputs(trained, synth_dir, data, tmp_path):
    # fine-tune on the same catalogue (new-item token rows: see the next test)
    out = train_tiny(
        synth_dir,
        tmp_path / "lora",
        trained / "quantizer",
        peft="lora",
        base=str(trained),
        max_steps=20,
        save_steps=10,
        learning_rate=2e-2,
    )
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"} <= names
    assert "model.safetensors" not in names  # only the adapter
    base = AutoModelForSeq2SeqLM.from_pretrained(trained).eval()
    adapted = load_generator(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    batch = batch_of(tok, data)
    with torch.no_grad():
        diff = (adapted(**batch).logits - base(**batch).logits).abs().max()
    assert diff > 1e-3
    assert any("lora_" in k for k in load_file(out / "adapter_model.safetensors"))


def test_lora_on_a_catalogue_with_new_items_trains_serves_and_pushes(trained, synth_dir, tmp_path, monkeypatch, hub):
    """`genrec train --peft lora --base M` where the catalogue gained items: the new ID tokens train, and
    the adapter folder serves from another working directory (base recorded by absolute path)."""
    import shutil

    from genrec.hub import push_to_hub
    from genrec.modeling import embedding_rows
    from genrec.pipeline import GenRecPipeline

    d = shutil.copytree(synth_dir, tmp_path / "d")
    q = shutil.copytree(trained / "quantizer", tmp_path / "q")
    new = ["new-a", "new-b"]
    with open(d / "items.jsonl", "a", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"item_id": i, "title": i}) + "\n" for i in new)
    for f in ("text_emb.npy", "image_emb.npy"):
        emb = np.load(d / f)
        np.save(d / f, np.vstack([emb, emb[:2]]))
    base_items = [json.loads(line)["item_id"] for line in (synth_dir / "items.jsonl").read_text().splitlines()]
    with open(d / "sequences.jsonl", "a", encoding="utf-8") as fh:  # 60 users who go on to the new items
        fh.writelines(
            json.dumps({"user_id": f"n{u}", "items": [base_items[u], base_items[u + 1], *new, *new]}) + "\n"
            for u in range(60)
        )
    for m in ("text", "image"):  # the new items' IDs use codes no base item has
        codes = np.load(q / f"sid_{m}.npy")
        free = [c for c in np.ndindex(16, 16, 16) if c not in set(map(tuple, codes.tolist()))][:2]
        np.save(q / f"sid_{m}.npy", np.vstack([codes, np.array(free)]))
    monkeypatch.chdir(tmp_path)
    out = train_tiny(
        d, tmp_path / "lora", q, peft="lora", base=str(trained), max_steps=150, save_steps=150, learning_rate=2e-2
    )
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(trained.resolve())
    monkeypatch.chdir(synth_dir)  # elsewhere
    pipe = GenRecPipeline.from_pretrained(out)
    assert pipe.tokenizer.item_ids[-2:] == new
    history = [base_items[0], base_items[1], "new-a"]
    rec = pipe.recommend(history, k=20)
    assert "new-b" in rec.item_ids
    r = genrec_cli("recommend", "--model", out, "--history", *history, "--k", "20", "--json")
    assert json.loads(r.stdout.splitlines()[-1])["item_ids"] == rec.item_ids
    from peft import AutoPeftModelForSeq2SeqLM

    peft_model = AutoPeftModelForSeq2SeqLM.from_pretrained(out)
    assert embedding_rows(peft_model) == len(pipe.tokenizer)
    push_to_hub(trained, "tester/base")
    info = push_to_hub(out, "tester/lora-new-items", base_repo_id="tester/base")
    files = hub.repos[("model", "tester/lora-new-items")].commits[info.oid].files
    assert json.loads(files["adapter_config.json"].data)["base_model_name_or_path"] == "tester/base"
    assert "tokenizer_config.json" in files and "catalog.json" in files


def test_lora_trains_rows_of_new_item_tokens(trained, tok):
    from genrec.modeling.lora import build_lora_model, new_token_indices

    size = tok.codebook_size("text")  # a new item whose ID uses code tokens no base item uses
    new = SemanticIDTokenizer.from_codes(
        list(tok.item_ids) + ["new-a"],
        {m: np.vstack([tok.catalog.codes[m], [[size - 1] * LEVELS]]) for m in tok.modalities},
        codebook_size=size,
    )
    idx = new_token_indices(AutoTokenizer.from_pretrained(trained), new)
    assert idx == sorted(int(t) for m in new.modalities for t in new.item_token_ids(m)[-1])
    model = build_lora_model(str(trained), new)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("trainable_tokens" in n for n in trainable) and any("lora_A" in n for n in trainable)
    wrong = SemanticIDTokenizer.from_codes(tok.item_ids, dict(tok.catalog.codes), codebook_size=size + 4)
    with pytest.raises(GenRecError, match="changes .* token ids"):
        new_token_indices(AutoTokenizer.from_pretrained(trained), wrong)


def test_trainer_batches_units_of_similar_length(tok, data, tmp_path):
    """The default sampler (length buckets) reads the recipes' length column, and batches pad far less."""
    from genrec.trainers.generator_trainer import build_datasets
    from genrec.trainers.sampling import LengthBucketSampler

    args = make_training_args(tmp_path, "tiny", per_device_train_batch_size=16)
    assert args.batching == "length_buckets" and args.train_sampling_strategy == "group_by_length"
    train, valid = build_datasets(data, tok, args)
    trainer = GenRecTrainer(
        model=tiny_model(tok),
        args=args,
        train_dataset=train,
        eval_dataset=valid,
        data_collator=GenRecCollator(tok),
        processing_class=tok,
    )
    lengths = np.asarray(train.with_format(None)["length"])
    torch.manual_seed(0)
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, LengthBucketSampler) and sampler.lengths.tolist() == lengths.tolist()
    grouped = list(sampler)
    assert sorted(grouped) == list(range(len(train)))

    def padding(order):  # padded history slots per unit when batching in this order
        batches = [lengths[order[i : i + 16]] for i in range(0, len(order), 16)]
        return sum(int(b.max() * len(b) - b.sum()) for b in batches) / len(order)

    assert padding(grouped) < 0.25 * padding(torch.randperm(len(train)).tolist())
    # the data loader's batches are the sampler's buckets: one history length (+-) per batch
    batch = next(iter(trainer.get_train_dataloader()))
    widths = batch["attention_mask"].sum(1)
    assert int(widths.max() - widths.min()) <= 2 * LEVELS


# ---- CLI ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_train_writes_folder_and_reports_bad_input(synth_dir, quantizer_dir, tmp_path):
    out = tmp_path / "gen"
    r = genrec_cli(
        "train",
        "--data",
        synth_dir,
        "--quantizer",
        quantizer_dir,
        "--out",
        out,
        "--profile",
        "tiny",
        "--max-steps",
        "8",
        "--tasks",
        "seqrec,seqimage,item2image",
        "--max-history",
        "10",
        "--weight-decay",
        "0.05",
        "--save-total-limit",
        "1",
        "--lr",
        "1e-3",
    )  # any TrainingArguments field
    assert r.stdout.strip().splitlines()[-1] == f"wrote {out}" and "implicit_loss" in r.stdout
    assert (out / "model.safetensors").is_file() and (out / "quantizer" / "sid_text.npy").is_file()
    record = json.loads((out / "genrec_train_config.json").read_text())
    assert record["tasks"] == ["seqrec", "seqimage", "item2image"]
    assert {
        k: record["training_args"][k] for k in ("weight_decay", "save_total_limit", "learning_rate", "max_steps")
    } == {"weight_decay": 0.05, "save_total_limit": 1, "learning_rate": 1e-3, "max_steps": 8}
    assert record["training_args"]["per_device_train_batch_size"] == 32  # unset: the tiny profile's
    # served with the history length it was trained with: recommend() and evaluate read the last 10 items
    from genrec.pipeline import GenRecPipeline

    pipe = GenRecPipeline.from_pretrained(out)
    long = list(range(30))
    assert pipe.max_history == 10
    assert pipe.recommend(long, k=5).item_ids == pipe.recommend(long[-10:], k=5).item_ids
    ev = genrec_cli("evaluate", "--model", out, "--data", synth_dir, "--max-users", "20", check=False)
    assert ev.returncode == 0, ev.stderr
    bad = genrec_cli(
        "train",
        "--data",
        synth_dir,
        "--quantizer",
        quantizer_dir,
        "--out",
        tmp_path / "x",
        "--profile",
        "tiny",
        "--tasks",
        "seqrec,seqvideo",
        check=False,
    )
    assert bad.returncode == 2 and "unknown task 'seqvideo'" in bad.stderr and "Traceback" not in bad.stderr
    nosid = genrec_cli("train", "--data", synth_dir, "--out", tmp_path / "y", "--profile", "tiny", check=False)
    assert nosid.returncode == 2 and "sid_text.npy" in nosid.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.slow
def test_train_uses_the_tokenizer_stage_output_byte_for_byte(synth_dir, quantizer_dir, tmp_path):
    """`genrec train --tokenizer DIR`: the tokenize stage's folder (here with sentencepiece text pieces) is
    what the model is trained with and ships; a tokenizer of other items or other IDs is refused."""
    tok_dir = tmp_path / "tok"
    genrec_cli("tokenize", "--data", synth_dir, "--quantizer", quantizer_dir, "--out", tok_dir, "--text-vocab", "120")
    genrec_cli(
        "train",
        "--data",
        synth_dir,
        "--quantizer",
        quantizer_dir,
        "--tokenizer",
        tok_dir,
        "--out",
        tmp_path / "m",
        "--profile",
        "tiny",
        "--max-steps",
        "4",
    )
    for name in ("catalog.json", "catalog_codes.safetensors", "spiece.model"):
        assert (tmp_path / "m" / name).read_bytes() == (tok_dir / name).read_bytes()
    assert (
        AutoTokenizer.from_pretrained(tmp_path / "m").get_vocab() == AutoTokenizer.from_pretrained(tok_dir).get_vocab()
    )
    other = tmp_path / "other_ids"
    other.mkdir()
    for m in ("text", "image"):
        np.save(other / f"sid_{m}.npy", np.load(quantizer_dir / f"sid_{m}.npy")[::-1].copy())
    proc = genrec_cli(
        "train",
        "--data",
        synth_dir,
        "--quantizer",
        other,
        "--tokenizer",
        tok_dir,
        "--out",
        tmp_path / "m2",
        "--profile",
        "tiny",
        "--max-steps",
        "4",
        check=False,
    )
    assert proc.returncode == 2 and "the tokenizer's text IDs differ from" in proc.stderr


def test_a_profile_on_a_text_only_dataset_trains_the_tasks_its_ids_allow(synth_dir, quantizer_dir, tmp_path, caplog):
    """The profile's image tasks are dropped, with one line saying so; named tasks are still checked as given."""
    import shutil

    from genrec.pipeline import GenRecPipeline

    text_only = tmp_path / "text-only"
    shutil.copytree(synth_dir, text_only, ignore=shutil.ignore_patterns("image_emb.npy", "sid_*.npy"))
    shutil.copy(quantizer_dir / "sid_text.npy", text_only / "sid_text.npy")
    with caplog.at_level("WARNING", logger="genrec.train"):
        out = train_generator(text_only, tmp_path / "gen", profile="tiny", seed=3, max_steps=10)
    assert [r.message for r in caplog.records if "lacks" in r.message] == [
        "profile tiny: training seqrec; seqimage,item2image,image2item,seqitem2image,seqimage2item need image "
        "semantic IDs, which this dataset lacks"
    ]
    record = json.loads((out / "genrec_train_config.json").read_text())
    assert record["tasks"] == ["seqrec"]
    rec = GenRecPipeline.from_pretrained(out).recommend(load_dataset_dir(text_only).item_ids[:3], k=10)
    assert len(rec.item_ids) == 10 and all(set(s) <= {"text"} for s in rec.sources)
    with pytest.raises(TaskConfigError, match="seqimage"):
        train_generator(text_only, tmp_path / "gen2", profile="tiny", tasks=["seqrec", "seqimage"], max_steps=2)


def test_loading_the_best_checkpoint_or_resuming_warns_of_no_missing_keys(synth_dir, quantizer_dir, tmp_path, caplog):
    """Issue 36, noise: "There were missing keys in the checkpoint model loaded: [...embed_tokens..., lm_head]" on
    every run and resume. Those are one tied tensor, saved once: tied again, not reported."""
    kw = dict(quantizer=quantizer_dir, profile="tiny", seed=5, save_steps=5, checkpoint_dir=tmp_path / "ck")
    with caplog.at_level("WARNING"):
        out = train_generator(synth_dir, tmp_path / "m", max_steps=10, **kw)  # loads its best checkpoint at the end
        train_generator(synth_dir, tmp_path / "m", max_steps=15, resume=True, **kw)
    assert "missing keys" not in caplog.text
    model = AutoModelForSeq2SeqLM.from_pretrained(out)
    assert model.lm_head.weight.data_ptr() == model.shared.weight.data_ptr()


def test_a_lora_adapter_builds_and_loads_without_the_gradient_checkpointing_future_warning(trained, tmp_path):
    """Issue 36, noise: PEFT's read of a deprecated transformers property warned on every adapter train/load."""
    import warnings

    from genrec.modeling.lora import build_lora_model

    tok = AutoTokenizer.from_pretrained(trained)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_lora_model(str(trained), tok).save_pretrained(tmp_path / "adapter")
        tok.save_pretrained(tmp_path / "adapter")
        load_generator(tmp_path / "adapter")
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]
