"""GenRecPipeline and the recommend/evaluate CLIs on real (tiny, random) generators saved to disk."""

import json
import shutil

import numpy as np
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, T5Config, T5ForConditionalGeneration

from genrec.cli import main as cli
from genrec.errors import GenRecError, UnknownItemError
from genrec.modeling import GenRecT5Config
from genrec.pipeline import GenRecPipeline, RankResult
from genrec.tokenizer import SemanticIDTokenizer

from conftest import tiny_t5_config
from hub_server import hub  # noqa: F401  (a fixture)

N_ITEMS = 40


def codes(seed=0):
    rng = np.random.default_rng(seed)
    all_ids = np.stack(np.unravel_index(np.arange(6**3), (6, 6, 6)), axis=1)  # every 3-level ID over 6 codes
    text, image = (all_ids[rng.choice(len(all_ids), N_ITEMS, replace=False)] for _ in range(2))
    text[11] = text[10]  # items 10 and 11 share a text ID (the only collision)
    image[4] = -1  # item 4 has no image ID
    return {"text": text, "image": image}


def save_pipeline(path, config_cls=T5Config, seed=0):
    tok = SemanticIDTokenizer.from_codes([100 + r for r in range(N_ITEMS)], codes(), codebook_size=6)
    torch.manual_seed(seed)
    cfg = tiny_t5_config(tok, config_cls)
    AutoModelForSeq2SeqLM.from_config(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_pipeline(tmp_path_factory.mktemp("pipe") / "model")


@pytest.fixture(scope="module")
def pipe(model_dir):
    return GenRecPipeline.from_pretrained(model_dir)


def test_loads_plain_t5_and_genrec_t5(pipe, tmp_path):
    assert type(pipe.model) is T5ForConditionalGeneration
    import genrec.modeling  # noqa: F401

    other = GenRecPipeline.from_pretrained(save_pipeline(tmp_path / "g", GenRecT5Config))
    assert type(other.model).__name__ == "GenRecT5ForConditionalGeneration"
    rec = other.recommend([100, 101], k=5)
    assert len(rec.item_ids) == 5 and all(i in range(100, 140) for i in rec.item_ids)


def test_a_plain_import_genrec_registers_every_auto_class(tmp_path):
    """In a fresh process (this one imported everything already): `import genrec` alone is enough."""
    import subprocess
    import sys

    from genrec.quantizer import CrossModalRQVAE, CrossModalRQVAEConfig

    gen = save_pipeline(tmp_path / "g", GenRecT5Config)
    CrossModalRQVAE(
        CrossModalRQVAEConfig(input_dims=(8, 8), hidden_dims=(8,), latent_dim=4, num_levels=2, codebook_size=4)
    ).save_pretrained(tmp_path / "q")
    code = f"""
import genrec
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer
from genrec import GenRecPipeline, SemanticIDTokenizer, GenRecT5ForConditionalGeneration, CrossModalRQVAE
assert type(AutoConfig.from_pretrained({str(gen)!r})).__name__ == "GenRecT5Config"
assert isinstance(AutoModelForSeq2SeqLM.from_pretrained({str(gen)!r}), GenRecT5ForConditionalGeneration)
assert isinstance(AutoTokenizer.from_pretrained({str(gen)!r}), SemanticIDTokenizer)
assert isinstance(AutoModel.from_pretrained({str(tmp_path / "q")!r}), CrossModalRQVAE)
assert all(hasattr(genrec, name) for name in genrec.__all__)
print(GenRecPipeline.from_pretrained({str(gen)!r}).recommend([100, 101], k=3).item_ids)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(json.loads(out.stdout.strip().splitlines()[-1])) == 3


@pytest.mark.parametrize("modality", ["text", "image", "fused"])
def test_recommend_ranks_catalogue_items(pipe, modality):
    rec = pipe.recommend([103, 117, 125], k=10, modality=modality)
    assert len(rec.item_ids) == 10 == len(set(rec.item_ids))
    assert set(rec.item_ids) <= set(range(100, 100 + N_ITEMS))
    assert rec.scores == sorted(rec.scores, reverse=True)
    if modality == "image":
        assert 104 not in rec.item_ids  # no image ID: never generated from images
    if modality != "fused":
        assert all(src == [modality] for src in rec.sources)


def test_fused_is_macrec_of_the_modality_lists(pipe):
    """Without rescoring, fusion sees each list as its beams left it (MACRec's rule)."""
    res = pipe.rank([[0, 1, 2]], modality="fused", k=10, rescore=False)
    text_rows, text_scores = res.per_modality["text"][0][0], res.per_modality["text"][1][0]
    image_rows, image_scores = res.per_modality["image"][0][0], res.per_modality["image"][1][0]
    vals = {}
    for rows, scores in ((text_rows, text_scores), (image_rows, image_scores)):
        for r, s in zip(rows, scores):
            vals.setdefault(r, []).append(s / 4)  # 3 levels + EOS: MACRec's length-normalised score
    assert 4 in text_rows  # the item without an image ID, found by the text beams
    for impute in (False, True):
        # imputation: item 4 (no image ID) counts as found by the image list too, with its own score
        expect = {r: sum(v) / len(v) + len(v) - 1 + (impute and r == 4) for r, v in vals.items()}
        best = sorted(expect, key=lambda r: (-expect[r], r))[:10]
        got = pipe.rank([[0, 1, 2]], modality="fused", k=10, impute_missing=impute, rescore=False)
        assert got.rows[0] == best
        assert got.scores[0] == pytest.approx([expect[r] for r in best])
        assert (4 in got.rows[0]) == impute  # only in one list, it needs the imputed +1 to make the top 10
    assert res.rows == got.rows  # imputation is the default
    assert res.invalid == {"text": 0, "image": 0} and res.beams == {"text": 20, "image": 20}


def test_modality_weights_scale_each_list(pipe):
    res = pipe.rank([[0, 1, 2], [5]], modality="fused", k=10)
    text_only = pipe.recombine(res, [[0, 1, 2], [5]], k=10, modality_weights={"text": 1.0, "image": 0.0})
    assert text_only.rows == [r[:10] for r in res.per_modality["text"][0]]  # weight 0 leaves a list out
    half = pipe.recombine(res, [[0, 1, 2], [5]], k=10, modality_weights={"text": 0.5})
    assert half.rows != res.rows  # both found: mean weighted 1:2, bonus 0.5 instead of 1
    for bad in ({"text": -1.0}, {"audio": 1.0}, {"text": 0.0, "image": 0.0}, {"text": float("inf")}):
        with pytest.raises(GenRecError, match="modality_weights"):
            pipe.recombine(res, [[0, 1, 2], [5]], k=10, modality_weights=bad)


def test_items_that_lose_a_modality_stay_rankable_through_the_other(model_dir):
    pipe = GenRecPipeline.from_pretrained(model_dir)
    histories = [[3, 17, 25], [0, 1]]
    text = pipe.rank(histories, modality="text", k=10)
    lost = [100 + r for r in range(0, N_ITEMS, 2)]
    pipe.drop_ids("image", lost)
    half = pipe.rank(histories, modality="fused", k=10)
    assert not {r for rows in half.per_modality["image"][0] for r in rows} & {r - 100 for r in lost}
    assert half.per_modality["text"][0] == text.per_modality["text"][0]  # the text side is untouched
    fresh = GenRecPipeline.from_pretrained(model_dir)
    fresh.drop_ids("image", [103, 117, 125])  # the first user's whole history: its image list reads nothing
    blind = fresh.rank(histories, modality="fused", k=10)
    assert blind.rows[0] == text.rows[0] and blind.rows[1] != text.rows[1]  # weight 0 for that user's image list
    partly = GenRecPipeline.from_pretrained(model_dir)
    partly.drop_ids("image", [103])  # the first user's image list reads 2 of its 3 history items
    part = partly.rank(histories[:1], modality="fused", k=10)
    assert part.rows[0] == text.rows[0]  # the default power (inf): a partly read history drops the list
    linear = partly.recombine(part, histories[:1], k=10, coverage_power=1)
    assert (
        linear.rows
        == partly.recombine(part, histories[:1], k=10, coverage_power=0, modality_weights={"image": 2 / 3}).rows
    )  # weight = coverage ** 1
    assert linear.rows != part.rows
    with pytest.raises(GenRecError, match="coverage_power"):
        partly.recombine(part, histories[:1], k=10, coverage_power=-1)
    pipe.drop_ids("image", range(100, 100 + N_ITEMS))  # no item has an image ID: nothing to decode there
    none = pipe.rank(histories, modality="fused", k=10)
    assert none.rows == text.rows and none.beams["image"] == 0 and none.per_modality["image"][0] == [[], []]
    assert pipe.recommend([103, 117], k=5).item_ids == pipe.recommend([103, 117], k=5, modality="text").item_ids
    with pytest.raises(UnknownItemError, match="999"):
        pipe.drop_ids("text", [999])
    with pytest.raises(GenRecError, match="unknown modality 'audio'"):
        pipe.drop_ids("audio", [100])
    with pytest.raises(GenRecError, match="popularity_correction must be a finite number"):  # issue 37, item 5
        pipe.rank(histories, modality="text", k=10, popularity_correction=float("nan"))


def id_log_likelihood(pipe, task, rows, source, target_codes, modality):
    """log p(ID | task input of ``rows``) by teacher forcing: the sum over its code tokens and the closing EOS."""
    tok = pipe.tokenizer
    inputs = torch.tensor([tok.encode_task_input(task, rows, source, max_items=pipe.max_history)])
    labels = torch.tensor(
        [[tok.code_token_id(modality, lv, int(c)) for lv, c in enumerate(target_codes)] + [tok.eos_token_id]]
    )
    with torch.no_grad():
        logp = pipe.model(input_ids=inputs, labels=labels).logits.log_softmax(-1)
    return float(logp[0].gather(1, labels[0][:, None]).sum())


def test_fusion_scores_every_candidate_under_each_modality_it_has_ids_in(pipe):
    """rescore: an item one modality's beams missed gets that modality's teacher-forced score, so the fused
    list is the candidates ranked by the mean of their two scores (item 4, without an image: its text score)."""
    histories = [[3, 17, 25], [0, 1], [7]]
    res = pipe.rank(histories, modality="fused", k=10)
    plain = pipe.rank(histories, modality="fused", k=10, rescore=False)
    assert plain.rescored == {} and plain.per_modality == res.per_modality and plain.rows != res.rows
    catalog, tasks, scored_by_other = pipe.tokenizer.catalog, {"text": "seqrec", "image": "seqimage"}, 0
    for u, history in enumerate(histories):
        union = {r for rows, _ in res.per_modality.values() for r in rows[u]}
        got = {m: dict(zip(rows[u], scores[u])) for m, (rows, scores) in res.rescored.items()}
        assert set(got["text"]) == union and set(got["image"]) == {r for r in union if catalog.has_ids("image")[r]}
        for m, scores in got.items():
            assert list(scores.values()) == sorted(scores.values(), reverse=True)
            beam = dict(zip(res.per_modality[m][0][u], res.per_modality[m][1][u]))
            assert all(scores[r] == pytest.approx(s, abs=1e-4) for r, s in beam.items())
            for r in [r for r in scores if r not in beam][:3]:
                scored_by_other += 1
                assert scores[r] == pytest.approx(
                    id_log_likelihood(pipe, tasks[m], history, m, catalog.codes[m][r], m), abs=1e-4
                )
        mean = {r: (got["text"][r] + got["image"].get(r, got["text"][r])) / 2 for r in union}
        assert res.rows[u] == sorted(union, key=lambda r: (-mean[r], r))[:10]
    assert scored_by_other >= 6
    seen = pipe.recombine(res, histories, k=10, exclude_history=True)
    assert all(not set(h) & set(rows[u]) for m, (rows, _) in seen.rescored.items() for u, h in enumerate(histories))
    later = pipe.rescore(plain, histories)  # the same scores afterwards; the final lists are recombine's to make
    assert later.rows == [] and pipe.recombine(later, histories, k=10).rows == res.rows
    with pytest.raises(GenRecError, match="different settings"):
        RankResult.concat([res, plain])
    shards = RankResult.concat(
        [pipe.rank(histories[:1], modality="fused"), pipe.rank(histories[1:], modality="fused")]
    ).rescored
    for m, (rows, scores) in res.rescored.items():
        assert shards[m][0] == rows and sum(shards[m][1], []) == pytest.approx(sum(scores, []), abs=1e-5)


def test_rows_sharing_an_id_are_rescored_alike(pipe, monkeypatch):
    """Items 10 and 11 share a text ID: proposed by the image list only, both get its teacher-forced score,
    computed once."""
    import genrec.ranking.rescore

    scored = []
    score_ids = genrec.ranking.rescore.score_ids
    monkeypatch.setattr(genrec.ranking.rescore, "score_ids", lambda *a: scored.append(a[5].tolist()) or score_ids(*a))
    history = [3, 17, 25]
    res = pipe.rank([history], modality="fused", k=10, rescore=False)
    text_rows, text_scores = res.per_modality["text"]
    kept = [(r, x) for r, x in zip(text_rows[0], text_scores[0]) if r not in (10, 11)]
    image_rows, image_scores = res.per_modality["image"]
    res.per_modality["text"] = ([[r for r, _ in kept]], [[x for _, x in kept]])
    res.per_modality["image"] = ([image_rows[0] + [10, 11]], [image_scores[0] + [-50.0, -50.0]])
    got = dict(zip(*[x[0] for x in pipe.rescore(res, [history]).rescored["text"]]))
    expected = id_log_likelihood(pipe, "seqrec", history, "text", pipe.tokenizer.catalog.codes["text"][10], "text")
    assert got[10] == got[11] == pytest.approx(expected, abs=1e-4)
    text_ids = [tuple(ids) for ids in scored[0]]  # the text group is scored first
    assert len(text_ids) == len(set(text_ids)) and len(got) == len(text_ids) + len(kept) + 1


def test_candidate_batches_pad_no_user_to_another_users_count():
    from genrec.ranking.rescore import candidate_batches

    cands = [[1] * 3, [], [1] * 3, [1] * 9, [1] * 2, [1] * 2, [1] * 2, [1] * 20]
    assert candidate_batches(cands, budget=10) == [[0, 2], [3], [4, 5, 6], [7]]  # 20 > budget: alone
    assert candidate_batches([[], []]) == []


def test_a_history_lacking_a_modality_is_read_in_the_other_through_the_cross_task(model_dir):
    histories = [[3, 17, 25], [0, 1]]
    pipe = GenRecPipeline.from_pretrained(model_dir)
    pipe.drop_ids("image", [103])  # the first user's image list could read 2 of its 3 history items
    pipe.train_config["tasks"] = ["seqrec", "seqimage"]  # no cross-modal task learned: nothing changes
    own = pipe.rank(histories, modality="fused", k=10)
    assert own.read == {} and own.rows[0] == own.per_modality["text"][0][0][:10]  # power inf drops the list
    pipe.train_config["tasks"] = ["seqrec", "seqimage", "seqitem2image"]
    res = pipe.rank(histories, modality="fused", k=10)
    assert res.read == {"image": ["text", "image"]}  # text IDs cover the whole first history
    assert pipe.rank([np.array(h) for h in histories], modality="fused", k=10).rows == res.rows  # arrays read the same
    assert res.per_modality["text"] == own.per_modality["text"]
    assert [r[1] for r in res.per_modality.values()] != [r[1] for r in own.per_modality.values()]
    assert [r[1][1] for r in res.per_modality.values()] == [r[1][1] for r in own.per_modality.values()]
    top = res.per_modality["image"][0][0][0]
    image = pipe.tokenizer.catalog.codes["image"][top]
    assert res.per_modality["image"][1][0][0] == pytest.approx(
        id_log_likelihood(pipe, "seqitem2image", histories[0], "text", image, "image"), abs=1e-4
    )
    # the list read a whole history: it counts in the fusion at any power, with the cross-modal weight
    full = pipe.recombine(res, histories, k=10, cross_modal_weight=1)
    assert full.rows[0] != own.rows[0]
    assert full.rows == pipe.recombine(res, histories, k=10, cross_modal_weight=1, coverage_power=0).rows
    assert pipe.rank(histories, modality="fused", k=10, cross_modal_history=False).rows == own.rows
    assert pipe.recombine(res, histories, k=10, cross_modal_weight=0).rows == own.rows  # weight 0: the list left out
    half = pipe.recombine(res, histories, k=10, cross_modal_weight=0.5)
    halved = pipe.recombine(full, histories, k=10, cross_modal_weight=1, modality_weights={"image": 0.5})
    assert half.rows[0] == halved.rows[0] != full.rows[0] and half.rows[1] == full.rows[1] != halved.rows[1]
    with pytest.raises(GenRecError, match="cross_modal_weight"):
        pipe.recombine(res, histories, k=10, cross_modal_weight=-1)
    assert RankResult.concat([res, res]).read == {"image": ["text", "image"] * 2}
    assert RankResult.concat([own, res]).read == {"image": ["image", "image", "text", "image"]}
    both = GenRecPipeline.from_pretrained(model_dir)  # a history lacking IDs in both modalities
    both.train_config["tasks"] = ["seqrec", "seqimage", "seqitem2image"]
    both.drop_ids("image", [103, 117])
    both.drop_ids("text", [125])
    lone = both.rank(
        histories[:1], modality="fused", k=10, cross_modal_weight=0
    )  # no list covers it: weights w/o coverage
    assert lone.read == {"image": ["text"]} and lone.rows[0] == lone.per_modality["text"][0][0][:10]


def test_missing_ids_are_predicted_by_the_item_task(model_dir):
    pipe = GenRecPipeline.from_pretrained(model_dir)
    image = pipe.tokenizer.catalog.codes["image"].copy()
    pipe.drop_ids("image", [100, 101])
    with_image = [r for r in range(2, N_ITEMS) if image[r, 0] >= 0]
    # 40 beams over at most 37 image IDs: the search is exhaustive, so it must find the likeliest ID
    predicted = pipe.predict_ids("image", [0, 4, 7], num_beams=40)
    for row, got in zip([0, 4, 7], predicted):
        scores = {r: id_log_likelihood(pipe, "item2image", [row], "text", image[r], "image") for r in with_image}
        assert got.tolist() == image[max(scores, key=scores.get)].tolist()
    before = pipe.tokenizer.encode_task_input("seqimage", [4, 0, 2], "image")
    filled = pipe.fill_missing_ids("image", num_beams=40)
    assert filled == [100, 101, 104]  # the two dropped and item 4, which never had an image ID
    codes = pipe.tokenizer.catalog.codes["image"]
    assert codes[0].tolist() == predicted[0].tolist() and codes[4].tolist() == predicted[1].tolist()
    assert {tuple(codes[r]) for r in (0, 1, 4)} <= {tuple(image[r]) for r in with_image}  # IDs of real items
    kept = [r for r in range(2, N_ITEMS) if r != 4]
    assert (codes[kept] == image[kept]).all()
    assert pipe.fill_missing_ids("image") == []  # nothing lacks an image ID any more
    after = pipe.tokenizer.encode_task_input("seqimage", [4, 0, 2], "image")
    assert len(before) == 1 + 3 + 1 and len(after) == 1 + 3 * 3 + 1  # the history is read through filled IDs
    assert (
        4 in pipe.rank([[2, 3]], modality="image", k=20, num_beams=40).per_modality["image"][0][0]
    )  # and beams reach it
    pipe.train_config = {"tasks": ["seqrec", "seqimage"]}
    with pytest.raises(GenRecError, match="trained on 'item2image'"):
        pipe.predict_ids("image", [0])
    with pytest.raises(GenRecError, match="no item task predicts 'audio' IDs"):
        pipe.predict_ids("audio", [0])


def test_collided_items_come_together_in_row_order(pipe):
    res = pipe.rank([[10], [0, 1, 2]], modality="text", k=20)
    for rows, scores in zip(*res.per_modality["text"]):
        assert len(rows) == 21  # 20 beams, one of them the shared ID of rows 10 and 11
        i = rows.index(10)
        assert rows[i + 1] == 11 and scores[i] == scores[i + 1]


def test_batched_equals_single_and_is_deterministic_after_save(pipe, tmp_path):
    histories = [[100, 101, 102], [139], [120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 130, 131]]
    batched = pipe.recommend(histories, k=10)
    singles = [pipe.recommend(h, k=10) for h in histories]
    assert [r.item_ids for r in batched] == [r.item_ids for r in singles]
    for a, b in zip(batched, singles):
        assert a.scores == pytest.approx(b.scores, abs=1e-5)
    pipe.save_pretrained(tmp_path / "copy")
    again = GenRecPipeline.from_pretrained(tmp_path / "copy").recommend(histories, k=10)
    assert [r.item_ids for r in again] == [r.item_ids for r in batched]


def test_exclude_history(pipe):
    plain = pipe.recommend([100, 101], k=20, modality="text")
    history = plain.item_ids[:3]
    rec = pipe.recommend(history, k=10, exclude_history=True)
    assert not set(history) & set(rec.item_ids)
    # dropping history items from a ranking afterwards is the same as excluding them while decoding
    rows = [pipe.history_rows(history), pipe.history_rows([100, 101, 102])]
    for modality in ("fused", "text"):
        decoded = pipe.rank(rows, modality=modality, k=10, exclude_history=True)
        after = pipe.recombine(pipe.rank(rows, modality=modality, k=10), rows, k=10, exclude_history=True)
        assert after.rows == decoded.rows
        assert all(a == pytest.approx(d) for a, d in zip(after.scores, decoded.scores))
        assert after.per_modality.keys() == decoded.per_modality.keys()


def test_history_items_are_left_out_and_an_empty_history_gets_popular_items(pipe):
    history = pipe.recommend([100, 101], k=20, exclude_history=False).item_ids[:3]  # items it does propose
    assert pipe.recommend(history, k=10).item_ids == pipe.recommend(history, k=10, exclude_history=True).item_ids
    assert not set(history) & set(pipe.recommend(history, k=10).item_ids)
    counts = [0] * N_ITEMS
    counts[7], counts[3], counts[30] = 5, 9, 2
    with_prior = GenRecPipeline(pipe.model, pipe.tokenizer, item_prior={"counts": counts})
    new_user, old_user = with_prior.recommend([[], [100]], k=3)
    assert new_user.item_ids == [103, 107, 130] and new_user.sources == [["popular"]] * 3
    assert new_user.scores == pytest.approx([9 / 16, 5 / 16, 2 / 16])
    assert old_user.item_ids == pipe.recommend([100], k=3).item_ids


def test_bad_requests_are_clear_errors(pipe, tmp_path):
    with pytest.raises(UnknownItemError, match=r"history\[1\]: unknown item id 'nope'"):
        pipe.recommend([100, "nope"], strict=True)
    # by default unknown ids are dropped (with a warning)
    assert pipe.recommend([100, "nope"]).item_ids == pipe.recommend([100]).item_ids
    with pytest.raises(GenRecError, match="history is empty and this pipeline has no item_prior.json"):
        pipe.recommend([])
    with pytest.raises(GenRecError, match="k=30 must be between 1 and num_beams=20"):
        pipe.recommend([100], k=30)
    # a huge beam is bounded by the IDs there are to find (not padded to a billion rows)
    assert pipe.recommend([100], k=10, num_beams=10**9).item_ids == pipe.recommend([100], k=10, num_beams=5000).item_ids
    with pytest.raises(GenRecError, match="unknown modality 'audio'"):
        pipe.recommend([100], modality="audio")
    with pytest.raises(GenRecError, match="no config.json"):
        GenRecPipeline.from_pretrained(tmp_path)
    with pytest.raises(GenRecError, match="got the string '45'"):
        pipe.recommend("45")  # not the items 4 and 5
    with pytest.raises(GenRecError, match=r"histories\[1\]: catalogue rows \[-1\] are outside"):
        pipe.rank([[3], [-1]], modality="text")


def test_a_truncated_weight_file_is_reported_as_such(model_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(GenRecError, match="cannot load the generator"):
        GenRecPipeline.from_pretrained(broken)


def test_recommend_cli_json_and_table(model_dir, pipe, capsys, tmp_path):
    assert cli(["recommend", "--model", str(model_dir), "--history", "112", "107", "103", "--k", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expect = pipe.recommend([112, 107, 103], k=5)
    assert out["item_ids"] == expect.item_ids and out["scores"] == pytest.approx(expect.scores)
    assert cli(["recommend", "--model", str(model_dir), "--history", "112", "--k", "3", "--modality", "text"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["rank", "item_id", "score", "from", "title"] and len(lines) == 4
    assert lines[1].split()[3] == "text"
    assert cli(["recommend", "--model", str(model_dir), "--history", "999", "--strict"]) == 2
    assert "unknown item id '999'" in capsys.readouterr().err
    with_prior = tmp_path / "with_prior"
    shutil.copytree(model_dir, with_prior)
    (with_prior / "item_prior.json").write_text(json.dumps({"counts": list(range(N_ITEMS))}))
    assert cli(["recommend", "--model", str(with_prior), "--history", "999", "--k", "3"]) == 0  # only unknown ids
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 4 and all(line.split()[3] == "popular" for line in out[1:])


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """A dataset dir over the pipeline's catalogue; users 0-2 end on item 139, seen nowhere else (cold)."""
    d = tmp_path_factory.mktemp("ds")
    rng = np.random.default_rng(0)
    (d / "items.jsonl").write_text("".join(json.dumps({"item_id": 100 + r}) + "\n" for r in range(N_ITEMS)))
    seqs = [
        [100 + int(x) for x in rng.choice(N_ITEMS - 5, 6, replace=False)] + ([139] if u < 3 else []) for u in range(30)
    ]
    (d / "sequences.jsonl").write_text(
        "".join(json.dumps({"user_id": f"u{u}", "items": s}) + "\n" for u, s in enumerate(seqs))
    )
    c = codes()
    c["image"][4] = c["image"][5]  # dataset sid files have no missing rows
    np.save(d / "sid_text.npy", c["text"])
    np.save(d / "sid_image.npy", c["image"])
    return d


def test_evaluate_cli_writes_all_users_metrics(model_dir, pipe, dataset_dir, tmp_path, capsys):
    import genrec.eval

    if not hasattr(genrec.eval, "ranking_metrics"):
        pytest.skip("genrec.eval.ranking_metrics has not landed yet")
    from genrec.data import load_dataset_dir

    out = tmp_path / "m.json"
    assert cli(["evaluate", "--model", str(model_dir), "--data", str(dataset_dir), "--out", str(out)]) == 0
    assert "HR@10" in capsys.readouterr().out
    metrics = json.loads(out.read_text())
    assert {"HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "n_users"} <= set(metrics)
    test = load_dataset_dir(dataset_dir).splits["test"]
    assert metrics["n_users"] == len(test) == 30
    ranked = pipe.rank(test["history"], modality="fused", k=10).rows
    hits = [t in r for r, t in zip(ranked, test["target"])]
    assert metrics["HR@10"] == pytest.approx(sum(hits) / 30)
    assert metrics["cold_start/n_users"] == 3
    assert metrics["cold_start/HR@10"] == pytest.approx(sum(hits[:3]) / 3)
    assert metrics["invalid_id_rate"] == 0.0
    assert metrics["coverage@10"] == pytest.approx(len({i for r in ranked for i in r[:10]}) / N_ITEMS)
    assert 0.0 <= metrics["long_tail@10"] <= 1.0


def test_evaluate_pushes_rankings_that_load_dataset_reads_back(hub, model_dir, pipe, dataset_dir, tmp_path):
    import datasets

    from genrec.data import load_dataset_dir

    assert (
        cli(
            [
                "evaluate",
                "--model",
                str(model_dir),
                "--data",
                str(dataset_dir),
                "--out",
                str(tmp_path / "m.json"),
                "--push-rankings",
                "tester/eval-rankings",
            ]
        )
        == 0
    )
    back = datasets.load_dataset("tester/eval-rankings", cache_dir=str(tmp_path / "ds"))
    assert list(back) == ["test"]
    test = load_dataset_dir(dataset_dir).splits["test"]
    res = pipe.rank(test["history"], modality="fused", k=10)
    got = back["test"].to_list()
    assert [r["user_id"] for r in got] == test["user_id"]
    for u, row in enumerate(got):
        assert row["history"] == [str(100 + r) for r in test[u]["history"]]
        assert row["items"] == [str(100 + r) for r in res.rows[u]]
        assert row["scores"] == pytest.approx(res.scores[u])
        for m in ("text", "image"):
            assert row[f"{m}_items"] == [str(100 + r) for r in res.per_modality[m][0][u]]


def test_recommend_file_of_histories_prints_json_and_pushes(hub, model_dir, pipe, tmp_path, capsys):
    import datasets

    histories = tmp_path / "histories.jsonl"
    histories.write_text('{"user_id": "alice", "history": [100, 101, 102]}\n\n{"user_id": 7, "history": ["120"]}\n')
    assert (
        cli(
            [
                "recommend",
                "--model",
                str(model_dir),
                "--histories",
                str(histories),
                "--k",
                "5",
                "--json",
                "--push-rankings",
                "tester/recs",
            ]
        )
        == 0
    )
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    expected = [pipe.recommend([100, 101, 102], k=5), pipe.recommend(["120"], k=5)]
    assert [r["user_id"] for r in lines] == ["alice", "7"]
    assert [r["items"] for r in lines] == [[str(i) for i in e.item_ids] for e in expected]
    assert [r["sources"] for r in lines] == [e.sources for e in expected]
    back = datasets.load_dataset("tester/recs", cache_dir=str(tmp_path / "ds"))["recommendations"].to_list()
    assert [r["items"] for r in back] == [r["items"] for r in lines] and back[1]["history"] == ["120"]

    histories.write_text('{"user_id": "alice", "history": [100]}\n{"user_id": "bob", "history": [100, 999]}\n')
    assert cli(["recommend", "--model", str(model_dir), "--histories", str(histories)]) == 2
    assert f"{histories}:2 (user 'bob'): history[1]: unknown item id 999" in capsys.readouterr().err
    assert cli(["recommend", "--model", str(model_dir), "--history", "100", "--push-rankings", "tester/x"]) == 2
    assert "use it with --histories FILE" in capsys.readouterr().err


def test_recommend_cli_is_quiet_and_free_of_future_warnings(model_dir):
    import os

    from conftest import run_genrec

    env = {**os.environ, "PYTHONWARNINGS": "error::FutureWarning"}  # = python -W error::FutureWarning
    r = run_genrec("recommend", "--model", model_dir, "--history", "100", "101", env=env, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Warning" not in r.stderr and len(r.stdout.splitlines()) == 11  # header + 10 items


def test_a_rank_result_round_trips_through_json(pipe):
    """Benchmark caches hold rankings as JSON (they were pickles, which a moved class breaks)."""
    res = pipe.rank([[0, 1, 2], [5]], modality="fused", k=10)
    back = RankResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back == res and back.sources(0) == res.sources(0)
