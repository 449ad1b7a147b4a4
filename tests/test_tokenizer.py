import json

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, DataCollatorForSeq2Seq

from genrec.data import load_dataset_dir
from genrec.errors import DataError, MalformedIDError, UnknownItemError
from genrec.tokenizer import SemanticIDTokenizer
from genrec.tokenizer.build import build_tokenizer

from conftest import genrec_cli


def random_catalog(n=200, levels=3, size=8, seed=0):
    """Unique random IDs for n items in two modalities, ids as strings."""
    rng = np.random.default_rng(seed)
    codes = {}
    for m in ("text", "image"):
        flat = rng.choice(size**levels, n, replace=False)
        codes[m] = np.stack([(flat // size**k) % size for k in reversed(range(levels))], axis=1)
    return [f"item{i}" for i in range(n)], codes


@pytest.fixture
def tok():
    ids, codes = random_catalog()
    return SemanticIDTokenizer.from_codes(ids, codes, codebook_size=8)


def test_vocabulary_layout(tok):
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    assert len(tok) == 3 + 6 + 2 * 3 * 8
    assert tok.convert_ids_to_tokens(tok.code_token_id("text", 0, 5)) == "<t1_5>"
    assert tok.convert_ids_to_tokens(tok.code_token_id("image", 2, 7)) == "<i3_7>"
    assert tok.convert_tokens_to_ids("<seqrec>") == tok.task_token_id("seqrec")


def test_encode_decode_round_trip_every_item(tok):
    for m in tok.modalities:
        for row, item in enumerate(tok.item_ids):
            ids = tok.encode_items([item], m)
            assert len(ids) == 3
            assert tok.parse_id(ids, m) == tuple(tok.catalog.codes[m][row])
            assert tok.decode_items(ids, m) == [item]


def test_unknown_and_malformed(tok):
    with pytest.raises(UnknownItemError, match="unknown item id 'nope'"):
        tok.encode_items(["item1", "nope"], "text")
    ids = tok.encode_items(["item1"], "text")
    with pytest.raises(MalformedIDError, match="has 3 tokens, got 2"):
        tok.decode_items(ids[:2], "text")
    with pytest.raises(
        MalformedIDError, match=r"position 2 of a text semantic ID must be a level-2 text code token, got '<t1_"
    ):
        tok.decode_items([ids[0], ids[0], ids[2]], "text")
    with pytest.raises(MalformedIDError, match="position 1 .* got '<i1_"):
        tok.decode_items(tok.encode_items(["item1"], "image"), "text")
    with pytest.raises(DataError, match="unknown task 'bogus'"):
        tok.task_token_id("bogus")
    # a well-formed ID that no item carries decodes to no item
    free = next(c for c in np.ndindex(8, 8, 8) if tok.trie("text").lookup(c) < 0)
    assert tok.decode_items([tok.code_token_id("text", lv, c) for lv, c in enumerate(free)], "text") == []


def test_trie_matches_catalogue(tok):
    trie = tok.trie("text")
    assert trie.n_leaves == 200 and trie.levels == 3 and trie.n_roots == 1
    codes = tok.catalog.codes["text"]
    for row, code in enumerate(codes):
        node = torch.tensor(0)
        for c in code:
            node = trie.child_node(trie.edge(node, torch.tensor(int(c))))
            assert int(node) > 0
        leaf = int(trie.leaf_of(node))
        assert leaf == trie.lookup(code.tolist()) and trie.rows_of_leaf(leaf) == [row]
        assert trie.leaf_codes()[leaf].tolist() == code.tolist()
    # leaves in lexicographic order of their IDs; the children of a node are exactly the catalogue's prefixes
    assert trie.leaf_codes().tolist() == np.unique(codes, axis=0).tolist()
    assert int((trie.edges_of(torch.tensor(0)) >= 0).sum()) == len(np.unique(codes[:, 0]))
    assert trie.lookup([99, 0, 0]) == trie.lookup([0, 0]) == -1


def test_save_load_and_autotokenizer_identical(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert cfg["tokenizer_class"] == "SemanticIDTokenizer"
    for loaded in (SemanticIDTokenizer.from_pretrained(tmp_path), AutoTokenizer.from_pretrained(tmp_path)):
        assert type(loaded) is SemanticIDTokenizer
        assert loaded.get_vocab() == tok.get_vocab()
        assert loaded.item_ids == tok.item_ids
        for m in tok.modalities:
            assert np.array_equal(loaded.catalog.codes[m], tok.catalog.codes[m])
        text = "<seqrec>" + "".join(tok.convert_ids_to_tokens(tok.encode_items(tok.item_ids[:5], "text")))
        assert loaded(text)["input_ids"] == tok(text)["input_ids"]
        assert loaded.encode_items(tok.item_ids[10:20], "image") == tok.encode_items(tok.item_ids[10:20], "image")
    # the codes are stored in binary beside the JSON of item ids
    catalog = json.loads((tmp_path / "catalog.json").read_text())
    assert "codes" not in json.dumps(catalog) and (tmp_path / "catalog_codes.safetensors").is_file()


def test_folders_with_inline_codes_still_load(tok, tmp_path):
    """Tokenizer folders written before the binary codes file: the codes sit in catalog.json."""
    tok.save_pretrained(tmp_path)
    (tmp_path / "catalog_codes.safetensors").unlink()
    (tmp_path / "catalog.json").write_text(
        json.dumps(
            {
                "item_ids": tok.item_ids,
                "modalities": {
                    m: {"codebook_size": tok.codebook_size(m), "codes": tok.catalog.codes[m].tolist()}
                    for m in tok.modalities
                },
            }
        )
    )
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.get_vocab() == tok.get_vocab() and loaded.catalog.fingerprint() == tok.catalog.fingerprint()


def test_a_corrupt_codes_file_is_named(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    (tmp_path / "catalog_codes.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(DataError, match="catalog_codes.safetensors: not a readable safetensors file"):
        SemanticIDTokenizer.from_pretrained(tmp_path)


def test_batch_call_pads_and_keeps_last_items(tok):
    def text(items):
        return "<seqrec>" + "".join(tok.convert_ids_to_tokens(tok.encode_items(items, "text")))

    long, short = tok.item_ids[:10], tok.item_ids[50:51]
    batch = tok([text(long), text(short)], padding=True, truncation=True, max_length=11)
    first = batch["input_ids"][0]
    # task token + the last 3 items (9 tokens) + eos: whole oldest items dropped, never the task token
    assert first == [tok.task_token_id("seqrec")] + tok.encode_items(long[-3:], "text") + [tok.eos_token_id]
    assert batch["input_ids"][1] == [tok.task_token_id("seqrec")] + tok.encode_items(short, "text") + [1] + [0] * 6
    assert batch["attention_mask"][1] == [1] * 5 + [0] * 6

    features = [
        {"input_ids": tok.encode_task_input("seqrec", [0, 1, 2], "text"), "labels": tok.encode_rows([3], "text") + [1]},
        {"input_ids": tok.encode_task_input("seqrec", [4], "text"), "labels": tok.encode_rows([5], "text") + [1]},
    ]
    out = DataCollatorForSeq2Seq(tok)(features)
    assert out["input_ids"].shape == (2, 11) and out["input_ids"][1, 5:].eq(tok.pad_token_id).all()
    assert out["labels"].shape == (2, 4) and out["attention_mask"][1].sum() == 5


def test_encode_task_input_keeps_last_items(tok):
    ids = tok.encode_task_input("seqimage", list(range(30)), "image", max_items=20)
    assert ids[0] == tok.task_token_id("seqimage") and ids[-1] == tok.eos_token_id
    assert ids[1:-1] == tok.encode_rows(list(range(10, 30)), "image")


def test_missing_modality_rows(tmp_path):
    ids, codes = random_catalog(n=20)
    codes["image"][3] = -1
    tok = SemanticIDTokenizer.from_codes(ids, codes, codebook_size=8)
    assert tok.trie("image").n_leaves == 19
    with pytest.raises(DataError, match="item 'item3' has no image semantic ID"):
        tok.encode_items(["item3"], "image")
    assert tok.encode_rows([2, 3, 4], "image", skip_missing=True) == tok.encode_rows([2, 4], "image")
    codes["image"][5, 1] = -1
    with pytest.raises(DataError, match="row 5 .* outside 0..7"):
        SemanticIDTokenizer.from_codes(ids, codes, codebook_size=8)


def test_add_items_keeps_token_ids(tok, tmp_path):
    vocab = tok.get_vocab()
    before = tok.encode_items(tok.item_ids[:50], "text")
    free = [c for c in np.ndindex(8, 8, 8) if tok.trie("text").lookup(c) < 0][:2]
    free_i = [c for c in np.ndindex(8, 8, 8) if tok.trie("image").lookup(c) < 0][:2]
    tok.add_items(["new1", "new2"], {"text": np.array(free), "image": np.array(free_i)})
    assert tok.get_vocab() == vocab and tok.encode_items(tok.item_ids[:50], "text") == before
    assert tok.decode_items(tok.encode_items(["new2"], "text"), "text") == ["new2"]
    tok.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path).decode_items(tok.encode_items(["new1"], "image"), "image") == [
        "new1"
    ]
    with pytest.raises(DataError, match="already in the catalogue"):
        tok.add_items(["new1"], {"text": np.array([free[0]]), "image": np.array([free_i[0]])})
    with pytest.raises(DataError, match="outside 0..7"):
        tok.add_items(["new3"], {"text": np.array([[9, 0, 0]]), "image": np.array([free_i[1]])})
    assert "new3" not in tok.item_ids


def test_sentencepiece_text_vocabulary(synth_dir, tmp_path):
    data = load_dataset_dir(synth_dir)
    ids, codes = random_catalog(n=data.n_items, levels=2, size=32)
    for m in codes:
        np.save(tmp_path / f"sid_{m}.npy", codes[m])
    tok = build_tokenizer(data, tmp_path, text_vocab_size=60)
    base = 3 + 6 + 2 * 2 * 256  # codebooks default to MACRec's 256 codes
    assert len(tok) > base
    enc = tok("<seqrec>" + data.items[0]["title"])["input_ids"]
    assert enc[0] == tok.task_token_id("seqrec") and all(i >= base for i in enc[1:-1])
    assert tok.unk_token_id not in enc
    tok.save_pretrained(tmp_path / "tok")
    loaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert (tmp_path / "tok" / "spiece.model").is_file()
    assert loaded(data.items[5]["title"])["input_ids"] == tok(data.items[5]["title"])["input_ids"]
    # off by default: text outside semantic-ID tokens is unknown
    plain = build_tokenizer(data, tmp_path)
    assert len(plain) == base and plain("brand01 item")["input_ids"] == [2, 2, 1]


def test_instruments_collisions(instruments_dir):
    data = load_dataset_dir(instruments_dir)
    tok = build_tokenizer(data)
    assert tok.catalog.shared_ids("text") == (524, 262)
    assert tok.catalog.shared_ids("image") == (0, 0)
    codes = tok.catalog.codes["text"]
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    first = np.flatnonzero(counts[inverse.ravel()] == 2)[0]
    pair = np.flatnonzero(inverse.ravel() == inverse.ravel()[first])
    assert np.array_equal(codes[pair[0]], codes[pair[1]])
    assert tok.decode_items(tok.encode_rows([pair[0]], "text"), "text") == [
        data.item_ids[pair[0]],
        data.item_ids[pair[1]],
    ]


@pytest.mark.slow
def test_cli_tokenize(tmp_path, synth_dir):
    data = load_dataset_dir(synth_dir)
    qdir = tmp_path / "q"
    qdir.mkdir()
    ids, codes = random_catalog(n=data.n_items, levels=3, size=16)
    codes["text"][[0, 1]] = codes["text"][2]  # three items share one text ID
    for m in codes:
        np.save(qdir / f"sid_{m}.npy", codes[m])
    out = genrec_cli("tokenize", "--data", synth_dir, "--quantizer", qdir, "--out", tmp_path / "tok").stdout
    assert "text: 3 levels x 256 codes; 3 items share 1 IDs" in out
    assert "image: 3 levels x 256 codes; 0 items share 0 IDs" in out
    assert AutoTokenizer.from_pretrained(tmp_path / "tok").item_ids == data.item_ids
    bad = genrec_cli("tokenize", "--data", synth_dir, "--out", tmp_path / "t2", check=False)
    assert bad.returncode == 2 and "no sid_text.npy" in bad.stderr and not (tmp_path / "t2").exists()


def test_display_fields_travel_with_the_catalogue(data, quantizer_dir, tmp_path):
    from genrec.tokenizer.build import build_tokenizer

    tok = build_tokenizer(data, quantizer_dir)
    first = data.items[0]
    assert tok.catalog.describe(first["item_id"]) == {
        "item_id": first["item_id"],
        "title": first["title"],
        "brand": first["brand"],
        "categories": first["categories"],
    }
    fingerprint = tok.catalog.fingerprint()
    tok.catalog.display[0] = {"title": "renamed"}
    assert tok.catalog.fingerprint() == fingerprint  # names are for people; the model's IDs did not change
    free_t = [c for c in np.ndindex(16, 16, 16) if tok.trie("text").lookup(c) < 0][:1]
    free_i = [c for c in np.ndindex(16, 16, 16) if tok.trie("image").lookup(c) < 0][:1]
    with pytest.raises(DataError, match="display fields for 2 items, expected 1"):
        tok.add_items(["amp"], {"text": np.array(free_t), "image": np.array(free_i)}, display=[{}, {}])
    assert "amp" not in tok.catalog
    tok.add_items(["amp"], {"text": np.array(free_t), "image": np.array(free_i)}, display=[{"title": " Amp ", "x": 1}])
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path).catalog
    assert loaded.describe("amp") == {"item_id": "amp", "title": "Amp"}
    assert loaded.describe(first["item_id"])["title"] == "renamed"


def test_recommend_prints_titles(tiny_pipeline, capsys):
    from genrec.cli import main as cli
    from genrec.pipeline import GenRecPipeline

    pipe = GenRecPipeline.from_pretrained(tiny_pipeline)
    history = [str(i) for i in pipe.tokenizer.item_ids[:2]]
    assert cli(["recommend", "--model", str(tiny_pipeline), "--history", *history, "--k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    top = pipe.recommend(pipe.tokenizer.item_ids[:2], k=3).item_ids[0]
    assert (
        lines[1]
        .rstrip()
        .endswith(pipe.tokenizer.catalog.describe(top)["title"] + " - " + pipe.tokenizer.catalog.describe(top)["brand"])
    )
