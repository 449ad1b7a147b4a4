"""One-pass sequence training (``training_mode="sequences"``, causal history attention): the same loss as
per-row training on the same targets, and histories ranked the way they were trained."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

import genrec
from genrec.errors import GenRecError
from genrec.generation import IDConstraint, constrained_beam_search
from genrec.generation.scoring import score_ids
from genrec.modeling.factory import build_generator
from genrec.modeling.modeling_genrec_t5 import masked_mean, paired_info_nce
from genrec.pipeline import GenRecPipeline
from genrec.sequence_tasks import build_sequence_dataset, sequence_windows
from genrec.trainers import PROFILES
from genrec.trainers.generator_run import train_generator
from genrec.trainers.generator_trainer import GenRecCollator
from genrec.trainers.id_loss import packed_id_loss, prefix_softmax_loss

from conftest import train_tiny

OLD_FOLDER = Path(__file__).parent / "data" / "generator-before-sequences"


@pytest.fixture(scope="module")
def trained(synth_dir, quantizer_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("seq") / "gen"
    train_generator(synth_dir, out, quantizer=quantizer_dir, profile="tiny", seed=3, training_mode="sequences")
    return out


def causal_model(tok, softmax, attn="sdpa"):
    cfg = {
        **PROFILES["tiny"]["model"],
        "num_layers": 2,
        "num_decoder_layers": 2,
        "id_softmax": softmax,
        "history_attention": "causal",
        "implicit_weight": 0.5,
        "attn_implementation": attn,
    }
    model = build_generator(tok, seed=0, **cfg).eval()
    torch.nn.init.normal_(model.encoder.recency.weight, std=0.5)  # zero at init: make the recency rule count
    return model


def short_sequences(data, n=40, max_history=20):
    """Training sequences of one window each, so that every target's row history is its window prefix."""
    seqs = [s[:-2] for s in data.sequences.values() if len(s) - 2 <= max_history + 1]
    assert len(seqs) >= n
    return seqs[:n]


def row_batch(tok, seqs, collator):
    """The per-row examples of the same targets (text and image view of each, paired; grouped by user)."""
    features, pair_ids, groups = [], [], []
    for user, s in enumerate(seqs):
        for t in range(1, len(s)):
            for task, m in (("seqrec", "text"), ("seqimage", "image")):
                features.append(
                    {
                        "input_ids": tok.encode_task_input(task, s[:t], m, max_items=20),
                        "labels": tok.encode_rows([s[t]], m) + [tok.eos_token_id],
                    }
                )
                pair_ids.append(len(pair_ids) // 2)
                groups.append(user)
    batch = collator.seq2seq(features)
    batch["pair_ids"], batch["pair_groups"] = torch.tensor(pair_ids), torch.tensor(groups)
    return batch


@pytest.mark.parametrize("softmax,attn", [("prefix", "sdpa"), ("prefix", "eager"), ("full", "sdpa")])
def test_one_pass_loss_is_the_mean_of_the_per_row_losses(tok, data, softmax, attn):
    model = causal_model(tok, softmax, attn)
    seqs = short_sequences(data)
    units = build_sequence_dataset(seqs, tok, ["seqrec", "seqimage"], 20)
    collator = GenRecCollator(tok, score_eos=softmax == "full")
    batch = collator(units.__getitems__(list(range(len(units)))))
    constraint = IDConstraint.from_tokenizer(tok, tok.modalities) if softmax == "prefix" else None
    with torch.no_grad():
        out = model(**batch)
        one_pass = packed_id_loss(out.target_states, batch["labels"], model.get_output_embeddings(), constraint)
        rows = row_batch(tok, seqs, collator)
        per_row = model(input_ids=rows["input_ids"], attention_mask=rows["attention_mask"], labels=rows["labels"])
        row_loss = (
            per_row.loss if constraint is None else prefix_softmax_loss(per_row.logits, rows["labels"], constraint)
        )
        states = model.get_encoder()(input_ids=rows["input_ids"], attention_mask=rows["attention_mask"])[0]
        # one user's prefixes are not each other's negatives, in either mode
        row_nce = paired_info_nce(
            masked_mean(states, rows["attention_mask"]), rows["pair_ids"], 0.07, rows["pair_groups"]
        )
    assert int(batch["decoder_segment_ids"].max(1).values.sum()) == len(rows["input_ids"])  # the same targets
    assert one_pass.item() == pytest.approx(row_loss.item(), abs=1e-5)
    assert out.implicit_loss.item() == pytest.approx(row_nce.item(), abs=1e-5)


def test_a_prefix_is_encoded_alike_alone_and_inside_a_longer_history(tok, data):
    """What makes the one pass exact, and what ranking relies on: causal history attention."""
    seq = short_sequences(data, n=1)[0][:6]
    for attention, same in (("causal", True), ("full", False)):
        model = build_generator(tok, seed=0, **{**PROFILES["tiny"]["model"], "history_attention": attention}).eval()
        short, long = (torch.tensor([tok.encode_task_input("seqrec", seq[:n], "text")]) for n in (3, 6))
        with torch.no_grad():
            a = model.get_encoder()(input_ids=short)[0][0]
            b = model.get_encoder()(input_ids=long)[0][0]
        width = 1 + 3 * tok.num_levels("text")  # the task token and three items; the EOS sees only itself
        assert torch.allclose(a[:width], b[:width], atol=1e-5) is same
        assert torch.allclose(a[-1], b[-1], atol=1e-5) is same


def test_windows_train_every_target_once_with_enough_history():
    for max_history in (1, 2, 5, 20):
        for n in range(1, 90):
            windows = sequence_windows(n, max_history)
            targets = [p for start, first, end in windows for p in range(first, end)]
            assert targets == list(range(1, n))
            for k, (start, first, end) in enumerate(windows):
                assert end - start <= max_history + 1
                assert k == 0 or first - start >= max(1, max_history // 2)


def test_sequence_mode_refuses_what_it_cannot_train(synth_dir, quantizer_dir, tmp_path):
    with pytest.raises(GenRecError, match="history_dropout"):
        train_generator(
            synth_dir,
            tmp_path / "a",
            quantizer=quantizer_dir,
            profile="tiny",
            training_mode="sequences",
            history_dropout=0.3,
        )
    with pytest.raises(GenRecError, match="history_attention='causal'"):
        train_generator(
            synth_dir,
            tmp_path / "b",
            quantizer=quantizer_dir,
            profile="tiny",
            training_mode="sequences",
            model_overrides={"history_attention": "full"},
        )


def test_a_sequence_trained_model_ranks_alike_through_every_route(trained):
    """recommend, transformers' generate() + the logits processor, and rescoring's teacher forcing all read
    a history through the causal rule the model was trained with (it lives in the saved config)."""
    record = json.loads((trained / "genrec_train_config.json").read_text())
    assert record["training_args"]["training_mode"] == "sequences"
    losses = [e["loss"] for e in record["log_history"] if "loss" in e]
    assert losses[-1] < losses[0]
    model, tok = AutoModelForSeq2SeqLM.from_pretrained(trained), AutoTokenizer.from_pretrained(trained)
    assert model.config.history_attention == "causal"
    pipe = GenRecPipeline.from_pretrained(trained)
    history = tok.item_ids[3:8]
    for modality in ("text", "image"):
        out = model.generate(
            **tok.history_inputs(history, modality),
            logits_processor=[genrec.TrieConstrainedLogitsProcessor.for_model(model, tok, modality)],
        )
        items = [i for seq in out for i in tok.decode_items(seq, modality)]
        assert items[:10] == pipe.recommend(history, k=10, modality=modality, exclude_history=False).item_ids
        # rescoring gives each beam's ID its beam score, so the fusion reads one history rule
        inputs = tok.history_inputs(history, modality)
        c = IDConstraint.from_tokenizer(tok, [modality])
        beams = constrained_beam_search(model, inputs["input_ids"], inputs["attention_mask"], c, num_beams=20)
        kept = beams.leaves[0] >= 0
        got = score_ids(
            model,
            inputs["input_ids"],
            inputs["attention_mask"],
            c,
            torch.zeros(1, dtype=torch.long),
            beams.tokens[0][kept],
            torch.zeros(int(kept.sum()), dtype=torch.long),
        )
        assert got.tolist() == pytest.approx(beams.scores[0][kept].tolist(), abs=1e-4)


@pytest.mark.skipif(not OLD_FOLDER.is_dir(), reason="committed model folder missing")
def test_a_folder_saved_before_sequence_training_ranks_as_it_did():
    """A generator folder written by the code before training modes existed (commit a997eaf, tiny profile,
    with its rankings then) loads with full attention and ranks exactly as before."""
    expected = json.loads((OLD_FOLDER.parent / "generator-before-sequences.json").read_text())
    pipe = GenRecPipeline.from_pretrained(OLD_FOLDER)
    assert pipe.model.config.history_attention == "full"
    for case in expected:
        rec = pipe.recommend(case["history"], k=10, modality=case["modality"], exclude_history=False)
        assert rec.item_ids == case["item_ids"]
        assert rec.scores == pytest.approx(case["scores"], abs=1e-4)


def test_lora_trains_a_sequence_model_in_sequences(trained, synth_dir, tmp_path):
    out = train_tiny(
        synth_dir,
        tmp_path / "lora",
        trained / "quantizer",
        peft="lora",
        base=str(trained),
        training_mode="sequences",
        max_steps=10,
    )
    record = json.loads((out / "genrec_train_config.json").read_text())
    assert [e["loss"] for e in record["log_history"] if "loss" in e]
    pipe = GenRecPipeline.from_pretrained(out)
    assert pipe.model.config.history_attention == "causal"
    assert len(pipe.recommend(pipe.tokenizer.item_ids[3:8], k=10).item_ids) == 10


def test_target_batches_hold_about_the_batch_size_in_targets_and_split_across_processes():
    from genrec.trainers.sampling import TargetBatchSampler

    gen = torch.Generator().manual_seed(0)
    targets = torch.randint(1, 21, (500,), generator=gen)
    lengths = targets + 1
    one = list(TargetBatchSampler(lengths, targets, 64, generator=torch.Generator().manual_seed(1)))
    assert sorted(i for b in one for i in b) == list(range(500))  # every unit once an epoch
    sums = [int(targets[b].sum()) for b in one]
    assert max(sums) <= 64 + 19 and sorted(sums)[len(sums) // 2] >= 50  # about 64 targets, never a unit count
    assert abs(len(one) - len(TargetBatchSampler(lengths, targets, 64))) <= 3
    shares = [
        list(TargetBatchSampler(lengths, targets, 64, 2, rank, generator=torch.Generator().manual_seed(1)))
        for rank in (0, 1)
    ]
    assert len(shares[0]) == len(shares[1]) and not {i for b in shares[0] for i in b} & {
        i for b in shares[1] for i in b
    }
