"""Training levers: embedding init, length-bucket batching, the wall-clock budget."""

import json
import re

import numpy as np
import pytest
import torch

from genrec.data import load_dataset_dir
from genrec.errors import GenRecError
from genrec.modeling import GenRecT5Config, GenRecT5ForConditionalGeneration
from genrec.trainers.budget import TimeBudgetCallback, WallClock, budget_lr_factor
from genrec.trainers.generator_config import make_training_args
from genrec.trainers.generator_trainer import ranked_modality
from genrec.trainers.sampling import LengthBucketSampler

from conftest import train_tiny


# ---- embedding init -------------------------------------------------------------------------------
def test_embedding_init_std_sets_the_tied_token_table_and_survives_save_load(tmp_path):
    kw = dict(vocab_size=500, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=2)
    torch.manual_seed(0)
    default = GenRecT5ForConditionalGeneration(GenRecT5Config(**kw))
    torch.manual_seed(0)
    small = GenRecT5ForConditionalGeneration(GenRecT5Config(embedding_init_std=0.01, **kw))
    assert default.shared.weight.std().item() == pytest.approx(1.0, abs=0.05)  # T5's init
    assert small.shared.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert small.lm_head.weight.data_ptr() == small.shared.weight.data_ptr()  # still tied
    # other weights are untouched by the switch
    torch.testing.assert_close(
        default.encoder.block[0].layer[0].SelfAttention.q.weight.std(),
        small.encoder.block[0].layer[0].SelfAttention.q.weight.std(),
        rtol=0.1,
        atol=0,
    )
    small.save_pretrained(tmp_path)
    loaded = GenRecT5ForConditionalGeneration.from_pretrained(tmp_path)
    assert loaded.config.embedding_init_std == 0.01
    torch.testing.assert_close(loaded.shared.weight, small.shared.weight)  # loading never re-initialises


# ---- batching -------------------------------------------------------------------------------------
def _batches(order, size):
    return [order[i : i + size] for i in range(0, len(order), size)]


def test_length_bucket_sampler_keeps_padding_low_and_shuffles_whole_batches():
    from transformers.trainer_pt_utils import get_length_grouped_indices

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 21, size=5003).tolist()
    torch.manual_seed(0)
    order = list(LengthBucketSampler(lengths, 32, megabatch_batches=10))
    assert sorted(order) == list(range(len(lengths)))
    batches = _batches(order, 32)
    assert all(len(b) == 32 for b in batches[:-1]) and len(batches[-1]) == len(lengths) % 32  # short batch last
    spread = np.mean([np.ptp([lengths[i] for i in b]) for b in batches])
    assert spread < 4  # random batches of 32 span ~18 lengths

    def cycle_corr(order):
        """Correlation of a batch's max length with its position inside its run of 10 batches."""
        maxima = [max(lengths[i] for i in b) for b in _batches(order, 32)[:-1]]
        return np.corrcoef(np.arange(len(maxima)) % 10, maxima)[0, 1]

    hf = get_length_grouped_indices(lengths, 32, mega_batch_mult=10, generator=torch.Generator().manual_seed(0))
    assert cycle_corr(hf) < -0.8  # transformers' sampler: long-to-short within every megabatch
    assert abs(cycle_corr(order)) < 0.15  # ours: no cycle
    torch.manual_seed(1)
    assert list(LengthBucketSampler(lengths, 32)) != order  # a new order per epoch / seed


def test_batching_choice_reaches_the_trainer(tmp_path):
    assert make_training_args(tmp_path, "tiny", batching="random").train_sampling_strategy == "random"
    assert make_training_args(tmp_path, "tiny", batching="length_buckets").train_sampling_strategy == "group_by_length"
    with pytest.raises(GenRecError, match="unknown batching"):
        make_training_args(tmp_path, "tiny", batching="sorted")


# ---- wall-clock budget ----------------------------------------------------------------------------
def test_cpu_profile_trains_the_next_item_tasks_and_others_keep_all_six(tmp_path):
    from genrec import TASKS
    from genrec.cli import build_parser

    assert make_training_args(tmp_path, "cpu").tasks == ["seqrec", "seqimage"]  # issue 14's measured winner
    assert make_training_args(tmp_path, "paper").tasks == list(TASKS) == make_training_args(tmp_path, "tiny").tasks
    assert make_training_args(tmp_path, "cpu", tasks=list(TASKS)).tasks == list(TASKS)
    args = build_parser().parse_args(["train", "--data", "d", "--out", "o"])
    assert not hasattr(args, "tasks")  # the CLI leaves the choice to the profile
    args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--tasks", "seqrec,item2image"])
    assert args.tasks == ["seqrec", "item2image"]


def test_budget_schedule_warms_up_then_anneals_to_zero():
    assert budget_lr_factor(0.0, 0.1) == 0.0
    assert budget_lr_factor(0.05, 0.1) == pytest.approx(0.5)
    assert budget_lr_factor(0.1, 0.1) == pytest.approx(1.0)
    assert budget_lr_factor(0.55, 0.1) == pytest.approx(0.5)
    assert budget_lr_factor(1.0, 0.1) == pytest.approx(0.0)
    assert budget_lr_factor(1.7, 0.1) == pytest.approx(0.0)  # past the budget (the last step) stays at 0
    with pytest.raises(ValueError):
        TimeBudgetCallback(WallClock(), 0, 1)


def test_ranked_modality_follows_the_sequential_tasks():
    assert ranked_modality(["seqrec"]) == "text"
    assert ranked_modality(["seqimage", "item2image"]) == "image"
    assert ranked_modality(["seqrec", "seqimage"]) == "fused"


class TickingTime:
    """Stands in for the budget module's ``time``: every reading advances 16 ms, so a budget run is the same
    number of steps on any machine (tests never depend on the machine's speed)."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        self.now += 0.016
        return self.now


def test_budget_run_stops_on_time_evaluates_ranking_and_keeps_the_best(synth_dir, quantizer_dir, tmp_path, monkeypatch):
    from genrec.trainers import budget as budget_module

    monkeypatch.setattr(budget_module, "time", TickingTime())
    budget = 0.06  # minutes of ticking time
    out = train_tiny(
        synth_dir,
        tmp_path / "gen",
        quantizer_dir,
        tasks=["seqrec", "seqimage"],
        max_train_minutes=budget,
        eval_every_minutes=budget / 3,
        rank_eval_users=40,
        warmup_steps=0.1,
    )
    record = json.loads((out / "genrec_train_config.json").read_text())
    history = record["log_history"]
    evals = [h for h in history if "eval_ndcg@10" in h]
    # the tiny profile's 60 steps do not cap a budget run: it runs on the clock
    assert max(h["step"] for h in history) > 60
    assert budget <= record["train_minutes"] < budget + 0.01
    assert len(evals) >= 3 and all(0 <= h["eval_ndcg@10"] <= 1 and "train_minutes" in h for h in evals)
    minutes = [h["train_minutes"] for h in evals]
    assert minutes == sorted(minutes) and minutes[-1] >= budget
    assert record["best_metric"] == max(h["eval_ndcg@10"] for h in evals)
    assert record["training_args"]["metric_for_best_model"] == "eval_ndcg@10"
    lrs = [h["learning_rate"] for h in history if "learning_rate" in h]
    peak = record["training_args"]["learning_rate"]
    assert max(lrs) > 0.8 * peak and lrs[-1] < 0.1 * peak  # warmed up, then annealed by the clock


def test_a_budget_runs_progress_bar_counts_minutes_of_the_budget(
    synth_dir, quantizer_dir, tmp_path, monkeypatch, capsys
):
    """Issue 33: a budget run's bar showed its placeholder step ceiling (1,178,000 steps, a 140-hour ETA)."""
    from genrec.trainers import budget as budget_module

    monkeypatch.setattr(budget_module, "time", TickingTime())
    train_tiny(
        synth_dir,
        tmp_path / "gen",
        quantizer_dir,
        tasks=["seqrec"],
        max_train_minutes=0.02,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        disable_tqdm=False,
    )
    bars = capsys.readouterr().err.replace("\r", "\n")
    assert "/0.02 min [" in bars and "step " in bars, bars[-2000:]
    totals = [int(t) for t in re.findall(r"\| *\d+/(\d+) \[", bars)]  # the step bars (evaluation's among them)
    assert all(t < 1000 for t in totals), totals  # none counts to the placeholder step ceiling


# ---- prefix softmax -------------------------------------------------------------------------------
def test_prefix_softmax_training_logs_its_loss_and_the_pipeline_decodes_with_it(synth_dir, quantizer_dir, tmp_path):
    from genrec.pipeline import GenRecPipeline

    out = train_tiny(
        synth_dir,
        tmp_path / "gen",
        quantizer_dir,
        tasks=["seqrec", "seqimage", "item2image"],
        max_steps=40,
        max_history=6,
        model_overrides={"id_softmax": "prefix"},
    )
    record = json.loads((out / "genrec_train_config.json").read_text())
    logs = [h for h in record["log_history"] if "lm_loss" in h]
    # 16 codes per level: a uniform guess over legal codes costs at most ln 16 per code
    assert logs[0]["lm_loss"] <= np.log(16) + 0.1 and logs[-1]["lm_loss"] < logs[0]["lm_loss"]
    pipe = GenRecPipeline.from_pretrained(out)
    assert pipe.model.config.id_softmax == "prefix"
    data = load_dataset_dir(synth_dir)
    res = pipe.rank(data.splits["test"]["history"][:5], modality="text", k=10)
    for scores in res.scores:  # log-probabilities of distinct IDs (items sharing an ID share its score)
        assert max(scores) <= 0 and np.logaddexp.reduce(np.unique(scores)) <= 1e-6
    assert pipe.max_history == 6  # served with the history length it was trained with
    # the folder carries the training interaction counts the popularity correction divides out
    from genrec.eval import train_item_counts

    assert pipe.item_prior["counts"] == train_item_counts(data).tolist()
    corrected = pipe.rank(data.splits["test"]["history"][:5], modality="text", k=10, popularity_correction=1.0)
    assert corrected.rows != res.rows
    with pytest.raises(GenRecError, match="needs item counts"):
        GenRecPipeline(pipe.model, pipe.tokenizer).rank(
            data.splits["test"]["history"][:1], modality="text", popularity_correction=0.5
        )


# ---- task schedule -------------------------------------------------------------------------------
def test_length_bucket_sampler_draws_each_groups_share_afresh_every_epoch():
    groups = [0] * 400 + [1] * 100
    lengths = list(np.random.default_rng(0).integers(1, 20, 500))
    sampler = LengthBucketSampler(
        lengths, batch_size=16, generator=torch.Generator().manual_seed(0), groups=groups, shares=[1.0, 0.3]
    )
    assert len(sampler) == 430
    epochs = [list(sampler) for _ in range(2)]
    for rows in epochs:
        assert len(rows) == len(set(rows)) == 430
        assert sum(r < 400 for r in rows) == 400  # every row of a full-share group, once
    drawn = [{r for r in rows if r >= 400} for rows in epochs]
    assert all(len(d) == 30 for d in drawn) and drawn[0] != drawn[1]
    with pytest.raises(ValueError, match="shares must be in"):
        LengthBucketSampler(lengths, 16, groups=groups, shares=[1.0, 0.0])


def test_task_weights_reach_the_sampler_and_bad_weights_are_refused(synth_dir, quantizer_dir, tmp_path):
    from genrec.cli.train import _task_weights
    from genrec.data import load_dataset_dir
    from genrec.modeling.factory import build_generator
    from genrec.tokenizer.build import build_tokenizer
    from genrec.trainers.generator_trainer import GenRecTrainer, build_datasets

    assert _task_weights("item2image=0.25, seqitem2image=0.5") == {"item2image": 0.25, "seqitem2image": 0.5}
    with pytest.raises(Exception, match="TASK=SHARE"):
        _task_weights("item2image")
    for bad, match in (
        ({"nope": 0.5}, "task_weights must map"),
        ({"item2image": 1.5}, "task_weights must map"),
        ({"seqrec": 0.5}, "share one weight"),
    ):
        with pytest.raises(GenRecError, match=match):
            make_training_args(tmp_path, "tiny", task_weights=bad)
    with pytest.raises(GenRecError, match="length_buckets"):
        make_training_args(tmp_path, "tiny", task_weights={"item2image": 0.5}, batching="random")
    args = make_training_args(tmp_path, "tiny", task_weights={"seqitem2image": 0.25, "seqimage2item": 0.25})
    data = load_dataset_dir(synth_dir)
    tok = build_tokenizer(data, quantizer_dir)
    train, valid = build_datasets(data, tok, args)
    trainer = GenRecTrainer(
        model=build_generator(tok, **{"d_model": 16, "d_ff": 32, "num_layers": 1}),
        args=args,
        train_dataset=train,
        eval_dataset=valid,
        processing_class=tok,
    )
    sampler = trainer._get_train_sampler()
    units = train.with_format(None)["unit"]
    names = train.features["unit"].names
    per_unit = np.bincount(units, minlength=len(names))
    expected = sum(
        round(0.25 * n) if names[u] in ("seqitem2image", "seqimage2item") else n for u, n in enumerate(per_unit)
    )
    assert len(sampler) == expected < len(train)
    drawn = np.bincount([units[i] for i in sampler], minlength=len(names))
    assert drawn[names.index("seqitem2image")] == round(0.25 * per_unit[names.index("seqitem2image")])
    assert drawn[names.index("item2image")] == per_unit[names.index("item2image")]


def test_item_tasks_train_only_on_the_listed_items_and_bad_lists_are_refused(synth_dir, quantizer_dir, tmp_path):
    from genrec.data import load_dataset_dir
    from genrec.tokenizer.build import build_tokenizer
    from genrec.trainers.generator_trainer import build_datasets

    data = load_dataset_dir(synth_dir)
    tok = build_tokenizer(data, quantizer_dir)
    listed = [tok.item_ids[r] for r in (5, 2, 9)]
    (tmp_path / "items.txt").write_text(f"{listed[0]}\n\n{listed[1]}\n{listed[2]}\n")
    train, _ = build_datasets(
        data, tok, make_training_args(tmp_path, "tiny", item_task_items=str(tmp_path / "items.txt"))
    )
    table = train.with_format(None)
    names = train.features["unit"].names
    for task in ("item2image", "image2item"):
        rows = [i for u, i in zip(table["unit"], table["index"]) if u == names.index(task)]
        assert sorted(rows) == [2, 5, 9]
    full, _ = build_datasets(data, tok, make_training_args(tmp_path, "tiny"))
    assert len(full) - len(train) == 2 * (len(tok.item_ids) - 3)  # the default: every item, in both tasks
    (tmp_path / "bad.txt").write_text(f"{listed[0]}\nno-such-item\n")
    with pytest.raises(GenRecError, match=r"bad.txt:2: unknown item id 'no-such-item'"):
        build_datasets(data, tok, make_training_args(tmp_path, "tiny", item_task_items=str(tmp_path / "bad.txt")))
    (tmp_path / "twice.txt").write_text(f"{listed[0]}\n{listed[1]}\n{listed[0]}\n")
    with pytest.raises(GenRecError, match=r"twice.txt:3: .* listed twice \(first on line 1\)"):
        build_datasets(data, tok, make_training_args(tmp_path, "tiny", item_task_items=str(tmp_path / "twice.txt")))
    with pytest.raises(GenRecError, match="trains no item task"):
        build_datasets(
            data,
            tok,
            make_training_args(
                tmp_path, "tiny", tasks=["seqrec", "seqimage"], item_task_items=str(tmp_path / "items.txt")
            ),
        )
    with pytest.raises(GenRecError, match="no file"):
        build_datasets(data, tok, make_training_args(tmp_path, "tiny", item_task_items=str(tmp_path / "none.txt")))


def test_history_dropout_reaches_the_train_set_only(synth_dir, quantizer_dir, tmp_path):
    from genrec.tokenizer.build import build_tokenizer
    from genrec.trainers.generator_trainer import build_datasets

    data = load_dataset_dir(synth_dir)
    tok = build_tokenizer(data, quantizer_dir)
    kw = dict(tasks=["seqrec", "seqimage"], max_eval_samples=50)
    plain_train, plain_valid = build_datasets(data, tok, make_training_args(tmp_path, "tiny", **kw))
    train, valid = build_datasets(data, tok, make_training_args(tmp_path, "tiny", history_dropout=0.5, **kw))
    length = lambda ds: sum(len(x) for i in range(200) for x in ds[i]["input_ids"])  # noqa: E731
    assert length(train) < 0.85 * length(plain_train)
    assert [valid[i] for i in range(50)] == [plain_valid[i] for i in range(50)]  # validation reads it all


# ---- removed encoder experiments (issue 14: item_encoder, item_embeddings) -------------------------
def test_a_folder_of_a_removed_encoder_experiment_is_refused_not_loaded_as_plain_t5():
    from genrec.modeling import GenRecT5Config

    for rejected in ({"item_pooled_encoder": True}, {"num_items": 30}):
        with pytest.raises(ValueError, match="rejected encoder experiments"):
            GenRecT5Config(**rejected)


def test_id_embeddings_start_at_the_quantizers_codebooks(synth_dir, quantizer_dir, tmp_path):
    from genrec.modeling.factory import build_generator, init_id_embeddings_from_codebooks
    from genrec.tokenizer.build import build_tokenizer
    from genrec.trainers import QuantizerTrainingArguments, train_quantizer

    qdir = tmp_path / "q"
    quantizer, _ = train_quantizer(
        synth_dir,
        qdir,
        dict(num_levels=3, codebook_size=16, latent_dim=8, hidden_dims=[32], n_clusters=16),
        QuantizerTrainingArguments(epochs=3, batch_size=128, eval_every=3, progress=False),
    )
    data = load_dataset_dir(synth_dir)
    tok = build_tokenizer(data, qdir)
    model = build_generator(tok, d_model=32, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2)
    before = model.get_input_embeddings().weight.detach().clone()
    assert init_id_embeddings_from_codebooks(model, tok, qdir, seed=0) == ["text", "image"]
    after = model.get_input_embeddings().weight.detach()
    start, size = tok.level_token_start("text", 0), tok.codebook_size("text")
    rows, old = after[start : start + size], before[start : start + size]
    assert not torch.equal(rows, old) and rows.std().item() == pytest.approx(old.std().item(), rel=1e-4)
    assert torch.equal(after[: tok.level_token_start("text", 0)], before[: tok.level_token_start("text", 0)])
    # distances between the codes' vectors follow their codebook distances (a random projection keeps them)
    cb = quantizer.rqvae["text"].codebooks[0].detach()
    rank = lambda d: d.flatten().argsort().argsort().float()  # noqa: E731
    corr = torch.corrcoef(torch.stack([rank(torch.cdist(cb, cb)), rank(torch.cdist(rows, rows))]))[0, 1]
    assert corr > 0.8
    with pytest.raises(GenRecError, match="precomputed semantic-ID files have no codebooks"):
        init_id_embeddings_from_codebooks(model, tok, quantizer_dir)
    other = tmp_path / "other"
    train_quantizer(
        synth_dir,
        other,
        dict(num_levels=3, codebook_size=16, latent_dim=8, hidden_dims=[32], n_clusters=16),
        QuantizerTrainingArguments(epochs=1, batch_size=128, eval_every=1, progress=False, seed=3),
    )
    with pytest.raises(GenRecError, match="not the tokenizer's text IDs"):
        init_id_embeddings_from_codebooks(model, tok, other)


def test_id_label_smoothing_trains_is_recorded_and_bad_values_are_refused(synth_dir, quantizer_dir, tmp_path):
    for bad in (-0.1, 1.0):
        with pytest.raises(GenRecError, match="id_label_smoothing must be in"):
            make_training_args(tmp_path, "tiny", id_label_smoothing=bad)
    with pytest.raises(GenRecError, match="needs id_softmax='prefix'"):
        train_tiny(
            synth_dir, tmp_path / "full", quantizer_dir, id_label_smoothing=0.1, model_overrides={"id_softmax": "full"}
        )
    assert not (tmp_path / "full").exists()
    out = train_tiny(synth_dir, tmp_path / "smooth", quantizer_dir, id_label_smoothing=0.1, max_steps=10)
    record = json.loads((out / "genrec_train_config.json").read_text())
    assert record["training_args"]["id_label_smoothing"] == 0.1


def _one_decoder_step(model) -> dict:
    """A two-token input and the decoder's first step: enough to compare two ways of calling ``model``."""
    ids = torch.tensor([[model.config.pad_token_id + 5, model.config.eos_token_id]])
    return {"input_ids": ids, "decoder_input_ids": torch.full((1, 1), model.config.decoder_start_token_id)}


def test_bf16_trains_on_the_cpu_and_validation_ranks_in_the_weights_own_precision(synth_dir, quantizer_dir, tmp_path):
    """bf16 without CUDA trains (TrainingArguments wants use_cpu), and the trainer's validation ranking calls
    the plain forward (accelerate leaves the model's forward wrapped in autocast), as the saved model ranks."""
    gaps = []

    def probe(model, tokenizer):
        step = _one_decoder_step(model)
        called, plain = model(**step).logits, type(model).forward(model, **step).logits
        gaps.append((called - plain).abs().max().item())
        return {"ndcg@10": 0.0}

    out = train_tiny(synth_dir, tmp_path / "gen", quantizer_dir, bf16=True, ranking_metrics=probe)
    args = json.loads((out / "genrec_train_config.json").read_text())["training_args"]
    assert args["bf16"] is True and args["use_cpu"] is True
    assert gaps and max(gaps) == 0.0
    model = GenRecT5ForConditionalGeneration.from_pretrained(out)
    step = _one_decoder_step(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the probe can tell: autocast moves these logits
        mixed = model(**step).logits.float()
    assert (mixed - model(**step).logits).abs().max().item() > 0
