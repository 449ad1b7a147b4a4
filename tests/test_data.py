import json
from dataclasses import replace

import numpy as np
import pytest

from genrec.data import load_dataset_dir
from genrec.data.synth import SynthConfig, generate, write_synthetic_dataset
from genrec.errors import DataError

from conftest import genrec_cli, run_genrec


def write_dir(path, items=None, sequences=None, csv=None, **arrays):
    path.mkdir(parents=True, exist_ok=True)
    items = items if items is not None else [{"item_id": i, "title": f"t{i}"} for i in range(5)]
    (path / "items.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    if sequences is not None:
        (path / "sequences.jsonl").write_text("".join(json.dumps(s) + "\n" for s in sequences))
    if csv is not None:
        (path / "interactions.csv").write_text(csv)
    for name, arr in arrays.items():
        np.save(path / f"{name}.npy", arr)
    return path


SEQS = [
    {"user_id": "a", "items": [0, 1, 2, 3, 4]},
    {"user_id": "b", "items": [4, 3, 2]},
    {"user_id": "c", "items": [1, 2]},  # too short: dropped
]


def test_leave_one_out_splits(tmp_path):
    data = load_dataset_dir(write_dir(tmp_path / "d", sequences=SEQS), max_history=2)
    assert data.dropped_users == 1
    test, valid, train = (data.splits[s] for s in ("test", "valid", "train"))
    assert test["target"] == [4, 2] and test["history"] == [[2, 3], [4, 3]]
    assert valid["target"] == [3, 3] and valid["history"] == [[1, 2], [4]]
    # train: prefixes of seq[:-2] with >= 1 history item, truncated to the last 2
    assert train["history"] == [[0], [0, 1]] and train["target"] == [1, 2]
    s = data.summary()
    assert (s["users"], s["items"], s["train_rows"], s["valid_rows"], s["test_rows"]) == (2, 5, 2, 2, 2)
    assert "dropped 1 users" in data.summary_line()


def test_interactions_csv_sorted_by_timestamp(tmp_path):
    csv = "user_id,item_id,timestamp\nu,3,30\nu,1,10\nu,2,20\nu,4,40\n"
    data = load_dataset_dir(write_dir(tmp_path / "d", csv=csv))
    assert data.sequences == {"u": [1, 2, 3, 4]}
    assert data.splits["test"]["target"] == [4]


def test_string_item_ids_and_lookup(tmp_path):
    items = [{"item_id": f"B00{i}"} for i in range(4)]
    seqs = [{"user_id": 1, "items": ["B000", "B002", "B003"]}]
    data = load_dataset_dir(write_dir(tmp_path / "d", items=items, sequences=seqs))
    assert data.item_index("B002") == 2
    with pytest.raises(DataError, match="unknown item id 'nope'"):
        data.item_index("nope")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sequences": [{"user_id": 1, "items": [0, 1, 99]}]}, r"sequences.jsonl:1: field 'items': unknown item_id 99"),
        (
            {"items": [{"item_id": 1}, {"item_id": 2}, {"item_id": 1}], "sequences": []},
            r"items.jsonl:3: duplicate item_id 1 \(first seen on line 1\)",
        ),
        ({"items": [{"title": "x"}], "sequences": []}, r"items.jsonl:1: missing field 'item_id'"),
        ({"sequences": [{"user_id": 1}]}, r"sequences.jsonl:1: missing field 'items'"),
        ({"csv": "user_id,item_id,timestamp\nu,1,5\nu,2\n"}, r"interactions.csv:3: expected 3 fields, got 2"),
        ({"csv": "user_id,item_id,timestamp\nu,1,x\n"}, r"interactions.csv:2: field 'timestamp' is not a number"),
        ({"csv": "user,item_id,timestamp\n"}, r"interactions.csv:1: header lacks column\(s\) user_id"),
        ({"csv": "user_id,item_id,timestamp\nu,77,1\n"}, r"interactions.csv:2: field 'item_id': unknown item_id '77'"),
        (
            {"sequences": SEQS, "text_emb": np.zeros((4, 3), np.float32)},
            r"text_emb.npy: has 4 rows but items.jsonl has 5",
        ),
        ({"sequences": SEQS, "image_emb": np.zeros((5,), np.float32)}, r"image_emb.npy: expected a 2-D array"),
        (
            {"sequences": SEQS, "text_emb": np.array([[0, 1]] * 4 + [[np.nan, 1]], np.float32)},
            r"text_emb.npy: row 4 has some NaN values but not all",
        ),
        ({"sequences": SEQS, "sid_text": np.zeros((5, 4), np.float32)}, r"sid_text.npy: expected integer codes"),
        ({"sequences": SEQS, "sid_text": np.zeros((3, 4), np.int64)}, r"sid_text.npy: expected shape \[5, levels\]"),
    ],
)
def test_bad_input_errors(tmp_path, kwargs, match):
    with pytest.raises(DataError, match=match):
        load_dataset_dir(write_dir(tmp_path / "d", **kwargs))


def test_malformed_json_names_file_and_line(tmp_path):
    d = write_dir(tmp_path / "d", sequences=SEQS)
    (d / "sequences.jsonl").write_text('{"user_id": 1, "items": [0, 1, 2]}\n{"user_id": 2, "items": [0, \n')
    with pytest.raises(DataError, match=r"sequences.jsonl:2: malformed JSON"):
        load_dataset_dir(d)


def test_missing_files(tmp_path):
    with pytest.raises(DataError, match="dataset directory does not exist"):
        load_dataset_dir(tmp_path / "nope")
    with pytest.raises(DataError, match="items.jsonl: missing file"):
        load_dataset_dir(tmp_path)
    write_dir(tmp_path / "d")
    with pytest.raises(DataError, match="needs sequences.jsonl or interactions.csv"):
        load_dataset_dir(tmp_path / "d")


def test_nan_rows_mark_missing_modality(tmp_path):
    emb = np.ones((5, 3), np.float32)
    emb[2] = np.nan
    data = load_dataset_dir(write_dir(tmp_path / "d", sequences=SEQS, image_emb=emb))
    assert data.missing_rows("image").tolist() == [2]
    assert data.summary()["modalities"]["missing_rows"] == {"image": 1}


def test_synth_is_deterministic_and_partially_informative():
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_mutual_info_score

    cfg = SynthConfig(n_items=400, n_users=200, seed=3)
    a, b = generate(cfg), generate(cfg)
    assert a["sequences"] == b["sequences"] and np.array_equal(a["text_emb"], b["text_emb"])
    assert generate(SynthConfig(n_items=400, n_users=200, seed=4))["sequences"] != a["sequences"]
    types = [it["latent_type"] for it in a["items"]]
    brands = [it["latent_brand"] for it in a["items"]]
    ami = {}
    for m in ("text", "image"):
        lab = KMeans(24, n_init=2, random_state=0).fit_predict(a[f"{m}_emb"])
        ami[m] = (adjusted_mutual_info_score(types, lab), adjusted_mutual_info_score(brands, lab))
    # each view resolves what the other blurs
    assert ami["image"][0] > ami["text"][0] + 0.2  # product type: image
    assert ami["text"][1] > ami["image"][1] + 0.2  # brand: text


def test_synth_twin_texts_are_near_duplicates_with_distinct_images():
    def relative_distances(emb):
        d = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        return d / np.median(d[np.isfinite(d)])

    cfg = SynthConfig(n_items=400, n_users=50, noise=0.05, seed=3)
    for rate, expect_twins in ((0.0, False), (0.5, True)):
        cat = generate(replace(cfg, twin_text_rate=rate))
        text, image = relative_distances(cat["text_emb"]), relative_distances(cat["image_emb"])
        nearest = text.argmin(1)
        twin = text[np.arange(400), nearest] < 0.2
        assert (twin.mean() > 0.4) == expect_twins, twin.mean()
        if expect_twins:  # the photos of near-duplicate titles still differ
            assert np.median(image[np.flatnonzero(twin), nearest[twin]]) > 0.5


def test_synth_writes_loadable_dir(tmp_path):
    out = write_synthetic_dataset(tmp_path / "s", SynthConfig(n_items=100, n_users=50, missing_image_rate=0.1))
    data = load_dataset_dir(out)
    assert data.n_items == 100 and len(data.sequences) == 50
    assert data.embeddings["text"].shape == (100, 128)
    assert 0 < len(data.missing_rows("image")) < 30
    assert "NOT real data" in (out / "README.md").read_text()


def test_instruments_counts(instruments_dir):
    for source in ("sequences", "csv"):
        s = load_dataset_dir(instruments_dir, interactions=source).summary()
        assert (s["users"], s["items"], s["train_rows"], s["interactions"]) == (17112, 6250, 84890, 136226)
        assert s["modalities"]["semantic_ids"] == {"text": [6250, 4], "image": [6250, 4]}


def test_cli_inspect_json(synth_dir):
    out = genrec_cli("inspect", synth_dir, "--json")
    s = json.loads(out.stdout)
    for key in (
        "users",
        "items",
        "interactions",
        "train_rows",
        "valid_rows",
        "test_rows",
        "dropped_users",
        "modalities",
    ):
        assert key in s
    assert s["items"] == 300 and s["users"] == 400


@pytest.mark.slow
def test_cli_from_the_source_checkout(synth_dir, tmp_path):
    """From the repository root `python -m genrec` imports the source folder genrec/, whose mapped
    sub-packages (tokenizer/, trainers/, eval/, hub_cards/) sit beside it."""
    import subprocess
    import sys
    import sysconfig
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    # -S: no .pth processing, so an editable install's import hooks cannot do the finding for us.
    code = (
        f"import sys; sys.path.append({sysconfig.get_paths()['purelib']!r}); "
        "import genrec, genrec.trainers, genrec.eval, genrec.tokenizer, genrec.hub_cards as h; "
        "print(genrec.__file__); print(genrec.trainers.__file__); print(h.__file__)"
    )
    files = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    assert files == [
        str(root / "genrec" / "__init__.py"),
        str(root / "trainers" / "__init__.py"),
        str(root / "hub_cards" / "__init__.py"),
    ]
    run_genrec(
        "quantize",
        "--data",
        synth_dir,
        "--out",
        tmp_path / "q",
        "--levels",
        "2",
        "--codebook-size",
        "16",
        "--latent-dim",
        "8",
        "--hidden-dims",
        "32",
        "--epochs",
        "1",
        "--n-clusters",
        "16",
        cwd=root,
    )
    assert (tmp_path / "q" / "sid_text.npy").is_file()


def test_cli_errors_without_traceback(tmp_path):
    out = genrec_cli("inspect", tmp_path / "x", check=False)
    assert out.returncode == 2
    assert "dataset directory does not exist" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "content, match",
    [
        ('{"user_id": "a", "history": [1]}\n{"history": [2]}\n', r"h.jsonl:2: missing field 'user_id'"),
        ('{"user_id": "a", "history": 3}\n', r"h.jsonl:1: field 'history' must be a list"),
        ('{"user_id": "a", "history": [1]}\n[1, 2]\n', r"h.jsonl:2: expected a JSON object"),
        ('{"user_id": "a", "history": [1\n', r"h.jsonl:1: malformed JSON"),
        ("\n\n", r"h.jsonl: no histories"),
    ],
)
def test_histories_file_errors_name_file_and_line(tmp_path, content, match):
    from genrec.data.loading import read_histories

    path = tmp_path / "h.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=match):
        read_histories(path)
    with pytest.raises(DataError, match="missing file"):
        read_histories(tmp_path / "none.jsonl")


def test_histories_file_keeps_line_numbers_and_ids_as_given(tmp_path):
    from genrec.data.loading import read_histories

    path = tmp_path / "h.jsonl"
    path.write_text('{"user_id": 7, "history": [1, "x"]}\n\n{"user_id": "b", "history": []}\n')
    assert read_histories(path) == [(1, "7", [1, "x"]), (3, "b", [])]
