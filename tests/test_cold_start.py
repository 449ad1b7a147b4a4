"""Items added to a trained model (add-items): IDs from its quantizer, the cold-start slots, bad input refused."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from genrec.errors import GenRecError
from genrec.pipeline import GenRecPipeline

from conftest import genrec_cli

# a quantizer small enough for 300 items and seconds of training
TINY_QUANTIZER = ("--profile", "tiny")  # trainers/profile_files/quantizer/tiny.yaml
pytestmark = pytest.mark.slow  # the module's fixture trains a quantizer and a model

HELD_OUT = 6  # the last items of the synthetic catalogue, unknown to the trained model


@pytest.fixture(scope="module")
def trained(synth_dir, tmp_path_factory):
    """A tiny model (with its own quantizer) trained on the catalogue minus its last HELD_OUT items, and
    those items' rows (items.jsonl lines and embeddings) as a new-items batch."""
    root = tmp_path_factory.mktemp("cold")
    data, new = root / "data", root / "new"
    data.mkdir(), new.mkdir()
    items = (synth_dir / "items.jsonl").read_text().splitlines()
    keep, held = items[:-HELD_OUT], items[-HELD_OUT:]
    held_ids = {json.loads(line)["item_id"] for line in held}
    (data / "items.jsonl").write_text("\n".join(keep) + "\n")
    (new / "items.jsonl").write_text("\n".join(held) + "\n")
    seqs = [json.loads(line) for line in (synth_dir / "sequences.jsonl").read_text().splitlines()]
    (data / "sequences.jsonl").write_text(
        "".join(json.dumps({**s, "items": [i for i in s["items"] if i not in held_ids]}) + "\n" for s in seqs)
    )
    for m in ("text", "image"):
        emb = np.load(synth_dir / f"{m}_emb.npy")
        np.save(data / f"{m}_emb.npy", emb[:-HELD_OUT])
        np.save(new / f"{m}_emb.npy", emb[-HELD_OUT:])
    genrec_cli("quantize", "--data", data, "--out", root / "q", *TINY_QUANTIZER)
    genrec_cli("train", "--data", data, "--quantizer", root / "q", "--out", root / "m", "--profile", "tiny")
    return root, [json.loads(line) for line in held], [json.loads(line) for line in keep]


def new_items_flags(root) -> tuple:
    """`genrec add-items` flags for the held-out items: their items.jsonl lines and both embeddings."""
    new = root / "new"
    return ("--items", new / "items.jsonl", "--text-emb", new / "text_emb.npy", "--image-emb", new / "image_emb.npy")


def folder_digest(path):
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_added_items_get_unique_ids_from_the_models_quantizer(trained):
    root, held, keep = trained
    proc = genrec_cli("add-items", "--model", root / "m", *new_items_flags(root), "--out", root / "m2")
    assert f"added {HELD_OUT} items" in proc.stdout
    pipe = GenRecPipeline.from_pretrained(root / "m2")  # the trained part of the catalogue still matches
    assert pipe.trained_rows == len(keep) and len(pipe.tokenizer.catalog) == len(keep) + HELD_OUT
    for m in ("text", "image"):
        codes = pipe.tokenizer.catalog.codes[m]
        assert len(np.unique(codes, axis=0)) == len(codes)  # collision-free against the catalogue
    assert GenRecPipeline.from_pretrained(root / "m").trained_rows == len(keep)  # the original folder: untouched


def test_cold_start_slots_bring_a_new_item_to_the_history_of_its_siblings(trained):
    """A new item whose IDs continue its siblings' (same latent type and brand) deepest shared prefix."""
    root, held, keep = trained
    pipe = GenRecPipeline.from_pretrained(root / "m")
    catalog = pipe.tokenizer.catalog
    item = held[0]
    siblings = [
        it["item_id"]
        for it in keep
        if it["latent_type"] == item["latent_type"] and it["latent_brand"] == item["latent_brand"]
    ][:4]
    assert siblings
    ids = {}
    for m in ("text", "image"):  # the last sibling's ID with the first free last-level code
        prefix = catalog.codes[m][catalog.row(siblings[-1])][:-1].tolist()
        taken = {tuple(r) for r in catalog.codes[m].tolist()}
        ids[m] = [
            prefix + [next(c for c in range(pipe.tokenizer.codebook_size(m)) if tuple(prefix + [c]) not in taken)]
        ]
    pipe.add_items([item["item_id"]], semantic_ids={m: np.asarray(v) for m, v in ids.items()})
    on = pipe.recommend(siblings, k=10)
    assert item["item_id"] in on.item_ids
    assert on.sources[on.item_ids.index(item["item_id"])] == ["cold_start"] and on.item_ids.index(item["item_id"]) == 9
    off = pipe.rank([catalog.rows(siblings)], cold_start_share=0.0, exclude_history=True)
    new_row = catalog.row(item["item_id"])
    assert new_row not in off.rows[0] and not off.cold_start[0]
    three = pipe.rank([catalog.rows(siblings)], cold_start_share=0.3)
    assert len(three.rows[0]) == 10 and three.cold_start[0] == [new_row]  # one candidate: the rest stays generated


@pytest.mark.parametrize("added", [False, True])
def test_a_catalogue_edited_on_trained_items_saves_and_loads_again(trained, tmp_path, added):
    root, held, keep = trained
    pipe = GenRecPipeline.from_pretrained(root / "m")
    trained_on = dict(pipe.train_config["fingerprint"])
    if added:  # items added after training: the fingerprint covers the trained rows only
        pipe.add_items(
            [held[0]["item_id"]], embeddings={m: np.load(root / "new" / f"{m}_emb.npy")[:1] for m in ("text", "image")}
        )
        pipe.drop_ids("image", [held[0]["item_id"]])  # an added item's edit leaves the trained rows' record
        assert "ids_edited" not in pipe.train_config["fingerprint"]
    edited = [keep[0]["item_id"], keep[1]["item_id"]]
    pipe.drop_ids("image", edited)
    filled = pipe.fill_missing_ids("image")
    assert set(edited) <= set(filled) and (held[0]["item_id"] in filled) == added
    codes = pipe.tokenizer.catalog.codes["image"].copy()
    pipe.save_pretrained(tmp_path / "edited")
    again = GenRecPipeline.from_pretrained(tmp_path / "edited")
    assert (again.tokenizer.catalog.codes["image"] == codes).all()
    assert again.train_config["fingerprint"]["ids_edited"] == {"trained_catalogue": trained_on["catalogue"]}
    # the unedited model's folder still refuses the edited tokenizer: the check is not switched off
    GenRecPipeline.from_pretrained(root / "m").save_pretrained(tmp_path / "orig")
    pipe.tokenizer.save_pretrained(tmp_path / "orig")
    with pytest.raises(GenRecError, match="trained with tokenizer"):
        GenRecPipeline.from_pretrained(tmp_path / "orig")


@pytest.mark.parametrize("bad", ["duplicate", "width", "range", "taken"])
def test_bad_new_items_leave_the_model_folder_byte_identical(trained, tmp_path, bad):
    root, held, keep = trained
    before = folder_digest(root / "m")
    args = ["--items", root / "new" / "items.jsonl"]
    if bad == "duplicate":  # an item id the catalogue already has
        (tmp_path / "items.jsonl").write_text(json.dumps({"item_id": keep[0]["item_id"]}) + "\n")
        levels = GenRecPipeline.from_pretrained(root / "m").tokenizer.num_levels("text")
        args = [
            "--items",
            tmp_path / "items.jsonl",
            "--sid-text",
            _save(tmp_path, "t", [[31] * levels]),
            "--sid-image",
            _save(tmp_path, "i", [[30] * levels]),
        ]
        expect = "already in the catalogue"
    elif bad == "width":
        args += [
            "--text-emb",
            _save(tmp_path, "t", np.zeros((HELD_OUT, 7), np.float32) + 0.1),
            "--image-emb",
            root / "new" / "image_emb.npy",
        ]
        expect = "expects"
    elif bad == "range":
        levels = GenRecPipeline.from_pretrained(root / "m").tokenizer.num_levels("text")
        args += [
            "--sid-text",
            _save(tmp_path, "t", [[99] + [0] * (levels - 1)] * HELD_OUT),
            "--sid-image",
            _save(tmp_path, "i", [[0] * levels] * HELD_OUT),
        ]
        expect = "outside 0..31"
    else:
        taken = GenRecPipeline.from_pretrained(root / "m").tokenizer.catalog.codes["text"][0].tolist()
        args += [
            "--sid-text",
            _save(tmp_path, "t", [taken] * HELD_OUT),
            "--sid-image",
            _save(tmp_path, "i", [[0] * len(taken)] * HELD_OUT),
        ]
        expect = "already taken"
    proc = genrec_cli("add-items", "--model", root / "m", "--out", tmp_path / "out", *args, check=False)
    assert proc.returncode == 2 and expect in proc.stderr, proc.stderr
    assert folder_digest(root / "m") == before and not (tmp_path / "out").exists()


def _save(tmp_path, name, rows):
    path = tmp_path / f"{name}.npy"
    np.save(path, np.asarray(rows))
    return path


def test_a_swapped_quantizer_of_the_same_shape_is_refused(trained, tmp_path):
    """Issue 37 item 10: add-items encoded with whatever quantizer sat in the model folder."""
    root, held, keep = trained
    shutil.copytree(root / "m", tmp_path / "m")
    shutil.rmtree(tmp_path / "m" / "quantizer")
    genrec_cli(
        "quantize",
        "--data",
        root / "data",
        "--out",
        tmp_path / "m" / "quantizer",
        *TINY_QUANTIZER,
        "--epochs",
        "2",
        "--seed",
        "1",
    )
    before = folder_digest(tmp_path / "m")
    proc = genrec_cli(
        "add-items", "--model", tmp_path / "m", *new_items_flags(root), "--out", tmp_path / "m2", check=False
    )
    assert proc.returncode == 2 and "is not the IDs this model was trained on" in proc.stderr, proc.stderr
    assert folder_digest(tmp_path / "m") == before and not (tmp_path / "m2").exists()
