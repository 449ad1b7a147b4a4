"""Training levers: embedding init, length-bucket batching, the wall-clock budget."""

import json

import numpy as np
import pytest
import torch

from genrec.data import load_dataset_dir
from genrec.errors import GenRecError
from genrec.modeling import GenRecT5Config, GenRecT5ForConditionalGeneration
from genrec.trainers.budget import TimeBudgetCallback, WallClock, budget_lr_factor
from genrec.trainers.generator_trainer import make_training_args, ranked_modality, train_generator
from genrec.trainers.sampling import LengthBucketSampler


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
    torch.testing.assert_close(default.encoder.block[0].layer[0].SelfAttention.q.weight.std(),
                               small.encoder.block[0].layer[0].SelfAttention.q.weight.std(), rtol=0.1, atol=0)
    small.save_pretrained(tmp_path)
    loaded = GenRecT5ForConditionalGeneration.from_pretrained(tmp_path)
    assert loaded.config.embedding_init_std == 0.01
    torch.testing.assert_close(loaded.shared.weight, small.shared.weight)  # loading never re-initialises


# ---- batching -------------------------------------------------------------------------------------
def _batches(order, size):
    return [order[i:i + size] for i in range(0, len(order), size)]


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


def test_budget_run_stops_on_time_evaluates_ranking_and_keeps_the_best(synth_dir, quantizer_dir, tmp_path,
                                                                       monkeypatch):
    from genrec.trainers import budget as budget_module

    monkeypatch.setattr(budget_module, "time", TickingTime())
    budget = 0.06  # minutes of ticking time
    out = train_generator(synth_dir, tmp_path / "gen", quantizer=quantizer_dir, profile="tiny", seed=3,
                          tasks=["seqrec", "seqimage"], max_train_minutes=budget, eval_every_minutes=budget / 3,
                          rank_eval_users=40, warmup_steps=0.1)
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


# ---- prefix softmax -------------------------------------------------------------------------------
def test_prefix_softmax_training_logs_its_loss_and_the_pipeline_decodes_with_it(synth_dir, quantizer_dir, tmp_path):
    from genrec.pipeline import GenRecPipeline

    out = train_generator(synth_dir, tmp_path / "gen", quantizer=quantizer_dir, profile="tiny", seed=3,
                          tasks=["seqrec", "seqimage", "item2image"], max_steps=40,
                          model_overrides={"id_softmax": "prefix"})
    record = json.loads((out / "genrec_train_config.json").read_text())
    logs = [h for h in record["log_history"] if "lm_loss" in h]
    # 16 codes per level: a uniform guess over legal codes costs at most ln 16 per code
    assert logs[0]["lm_loss"] <= np.log(16) + 0.1 and logs[-1]["lm_loss"] < logs[0]["lm_loss"]
    pipe = GenRecPipeline.from_pretrained(out)
    assert pipe.model.config.id_softmax == "prefix"
    data = load_dataset_dir(synth_dir)
    res = pipe.rank(data.splits["test"]["history"][:5], "text", k=10)
    for scores in res.scores:  # log-probabilities of distinct IDs (items sharing an ID share its score)
        assert max(scores) <= 0 and np.logaddexp.reduce(np.unique(scores)) <= 1e-6
