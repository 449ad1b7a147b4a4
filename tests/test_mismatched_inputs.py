"""Mismatched artifacts are refused naming both sides; bad files get errors that say where (issue 20)."""

import json

import numpy as np
import pytest

from genrec.data import load_dataset_dir
from genrec.data.synth import SynthConfig, write_synthetic_dataset
from genrec.errors import DataError, GenRecError
from genrec.pipeline import GenRecPipeline
from genrec.tokenizer import SemanticIDTokenizer
from genrec.tokenizer.build import build_tokenizer

from conftest import genrec_cli
from test_pipeline import save_pipeline


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("d") / "data", SynthConfig(n_items=60, n_users=80, seed=1))


def quantizer_folder(path, n_items, levels=3, codebook_size=32, config_levels=3, item_ids=None):
    path.mkdir()
    rng = np.random.default_rng(0)
    for m in ("text", "image"):
        np.save(path / f"sid_{m}.npy", rng.integers(0, codebook_size, size=(n_items, levels)))
    (path / "config.json").write_text(json.dumps({"codebook_size": codebook_size, "num_levels": config_levels}))
    if item_ids is not None:
        (path / "item_codes.jsonl").write_text("".join(json.dumps({"item_id": i}) + "\n" for i in item_ids))
    return path


# -- tokenizer vs quantizer vs dataset ----------------------------------------------------------------
def test_tokenizer_takes_the_quantizer_codebook_as_a_bound(small, tmp_path):
    data = load_dataset_dir(small)
    q = quantizer_folder(tmp_path / "q", data.n_items, item_ids=data.item_ids)
    assert build_tokenizer(data, q).codebook_size("text") == 32
    codes = np.load(q / "sid_text.npy")
    codes[7, 1] = 999
    np.save(q / "sid_text.npy", codes)
    with pytest.raises(DataError, match=r"row 7 .* outside 0..31"):
        build_tokenizer(data, q)  # not a vocabulary grown to 1000 codes per level


def test_tokenizer_refuses_ids_of_another_depth_than_the_quantizer(small, tmp_path):
    data = load_dataset_dir(small)
    q = quantizer_folder(tmp_path / "q", data.n_items, levels=2, config_levels=3)
    with pytest.raises(DataError, match="sid_text.npy has 2 levels but .* num_levels=3"):
        build_tokenizer(data, q)


def test_quantizer_of_other_items_is_refused(small, tmp_path):
    data = load_dataset_dir(small)
    ids = list(data.item_ids)
    ids[5], ids[6] = ids[6], ids[5]  # same items, another row order: every ID would land on a neighbour
    q = quantizer_folder(tmp_path / "q", data.n_items, item_ids=ids)
    with pytest.raises(DataError, match=f"quantized from other items .* row 5 is '{ids[5]}' there"):
        build_tokenizer(data, q)
    r = genrec_cli("tokenize", "--data", small, "--quantizer", q, "--out", tmp_path / "tok", check=False)
    assert (
        r.returncode == 2
        and r.stderr.splitlines()[-1].startswith("genrec tokenize: error:")
        and "Traceback" not in r.stderr
    )
    assert not (tmp_path / "tok").exists()


def test_pipeline_refuses_a_tokenizer_it_was_not_trained_with(tmp_path):
    model = save_pipeline(tmp_path / "m")
    tok = SemanticIDTokenizer.from_pretrained(model)
    (model / "genrec_train_config.json").write_text(json.dumps({"fingerprint": tok.fingerprint()}))
    GenRecPipeline.from_pretrained(model)  # the tokenizer it was trained with

    other = {m: (c + (c >= 0)) % 6 for m, c in tok.catalog.codes.items()}  # another quantizer's IDs
    SemanticIDTokenizer.from_codes(tok.item_ids, other, codebook_size=6).save_pretrained(model)
    with pytest.raises(GenRecError, match=r"trained with tokenizer .* \(another quantizer or catalogue\)"):
        GenRecPipeline.from_pretrained(model)

    bigger = SemanticIDTokenizer.from_codes(tok.item_ids, dict(tok.catalog.codes), codebook_size=40)
    bigger.save_pretrained(model)
    (model / "genrec_train_config.json").unlink()  # even an older folder without the record
    with pytest.raises(GenRecError, match=f"has {len(bigger)} tokens but the generator only {len(tok)} embedding"):
        GenRecPipeline.from_pretrained(model)


# -- datasets that cannot be trained on ------------------------------------------------------------------
def test_a_dataset_without_users_is_refused_by_inspect_and_train(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "items.jsonl").write_text("".join(json.dumps({"item_id": f"i{n}"}) + "\n" for n in range(4)))
    (d / "sequences.jsonl").write_text(json.dumps({"user_id": "u", "items": ["i0", "i1"]}) + "\n")
    with pytest.raises(DataError, match="no user has >= 3 interactions .1 users dropped"):
        load_dataset_dir(d)
    r = genrec_cli("inspect", d, check=False)
    assert (
        r.returncode == 2
        and r.stderr.splitlines()[-1].startswith("genrec inspect: error:")
        and "sequences.jsonl" in r.stderr
    )


@pytest.mark.parametrize(
    "rows, match",
    [("all_nan", "every row is NaN, so no item has this modality"), ("huge", r"row 3 has norm 1e\+30 .*normalise")],
)
def test_embeddings_that_would_break_the_quantizer_are_refused(small, tmp_path, rows, match):
    import shutil

    d = shutil.copytree(small, tmp_path / "d")
    emb = np.load(d / "text_emb.npy")
    if rows == "all_nan":
        emb[:] = np.nan
    else:
        emb[3, 0] = 1e30
    np.save(d / "text_emb.npy", emb)
    with pytest.raises(DataError, match=match):
        load_dataset_dir(d)


def test_malformed_json_says_where_and_shows_the_text(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "items.jsonl").write_text('{"item_id": "a"}\n{"item_id": "b" "title": "x"}\n')
    with pytest.raises(
        DataError,
        match=r"items.jsonl:2: malformed JSON \(Expecting ',' delimiter at column 17, "
        r"near '\{\"item_id\": \"b\" \"title\"",
    ):
        load_dataset_dir(d)


def test_a_broken_catalogue_names_its_file(tmp_path):
    model = save_pipeline(tmp_path / "m")
    catalog = model / "catalog.json"
    catalog.write_text('{"item_ids": [1, 2],\n "modalities": {"text": {"codes": [[0], [1]]\n}')
    with pytest.raises(GenRecError, match=r"catalog.json: malformed JSON .* at the end \(line 3\), after .*cut short"):
        SemanticIDTokenizer.from_pretrained(model)
    catalog.write_text(json.dumps({"item_ids": [1, 2], "modalities": {"text": {"codes": [[0], [1]]}}}))
    with pytest.raises(GenRecError, match="catalog.json: not a genrec item catalogue .*codebook_size"):
        SemanticIDTokenizer.from_pretrained(model)
